"""``fhirlake lake vacuum``: free the files no snapshot of the lake can read.

A lake never deletes a data file when it writes: a merge or ``optimize`` removes files from a
table's current version, but earlier snapshots (``connect(as_of=...)``) still read them, and a
run that was interrupted leaves files it wrote but never committed, a scratch folder and
temporary catalog files. Vacuum keeps every file that any snapshot of the log, or the current
version of any table, refers to, and removes the rest:

* Parquet files under ``silver/``, ``gold/`` and the tombstones that no snapshot's table version
  and no current table version lists (written by an interrupted run, or by a table no snapshot
  recorded);
* the scratch folder of killed runs (``_fhirlake/work``) and temporary catalogs
  (``.catalog-*.duckdb``, ``.tmp-*``) at the root.

It holds the write lock, so it never races a writer. ``dry_run`` only lists what would go.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

import pyarrow.fs as pafs

from fhirlake.lake._delta import DeltaFolder
from fhirlake.lake._log import SnapshotLog
from fhirlake.lake._storage import Storage

__all__ = ["VacuumReport", "vacuum"]

_LAYERS = ("silver", "gold")
_TOMBSTONES = "_fhirlake/tombstones"
_ROOT_TEMPORARIES = (".catalog-", ".tmp-")


@dataclass(frozen=True)
class VacuumReport:
    """What vacuum removed (or would remove, with ``dry_run``): paths relative to the root."""

    removed: tuple[str, ...]
    bytes: int
    kept: int
    snapshots: int
    dry_run: bool
    seconds: float

    def lines(self) -> list[str]:
        """What ``fhirlake lake vacuum`` prints."""
        verb = "would remove" if self.dry_run else "removed"
        head = (f"{verb} {len(self.removed)} files ({self.bytes / 1e6:,.1f} MB) no snapshot reads; kept "
                f"{self.kept:,} files that the {self.snapshots} snapshots read, in {self.seconds:.1f} s")
        return [head, *(f"  {path}" for path in self.removed[:20])] + (
            [f"  ... and {len(self.removed) - 20} more"] if len(self.removed) > 20 else [])


def vacuum(storage: Storage, *, dry_run: bool = False) -> VacuumReport:
    """Remove the files no snapshot and no current table version reads (see the module docstring)."""
    started = time.perf_counter()
    log = SnapshotLog(storage)
    with storage.lock():
        snapshots = log.snapshots()
        tables = _table_folders(storage)
        needed = _needed(storage, tables, ((name, version) for s in snapshots for name, version in s.tables.items()))
        removed: list[tuple[str, int]] = []
        kept = 0
        for name in tables:
            for path, size in _parquet_files(storage, name):
                if path in needed.get(name, set()):
                    kept += 1
                else:
                    removed.append((f"{name}/{path}", size))
        removed += _scratch(storage)
        if not dry_run:
            for path, _size in removed:
                _delete(storage, path)
    return VacuumReport(tuple(p for p, _ in removed), sum(s for _, s in removed), kept, len(snapshots), dry_run,
                        time.perf_counter() - started)


def _table_folders(storage: Storage) -> list[str]:
    names = [_TOMBSTONES] if storage.exists(*_TOMBSTONES.split("/")) else []
    for layer in _LAYERS:
        selector = pafs.FileSelector(storage.path(layer), allow_not_found=True)
        names += sorted(f"{layer}/{info.base_name}" for info in storage.fs.get_file_info(selector)
                        if info.type == pafs.FileType.Directory)
    return names


def _needed(storage: Storage, tables: list[str], versions: Iterable[tuple[str, int]]) -> dict[str, set[str]]:
    """Per table folder, the files (relative to it) some snapshot or the current version reads."""
    wanted: set[tuple[str, int | None]] = {(name, None) for name in tables} | set(versions)
    needed: dict[str, set[str]] = {}
    for name, version in sorted(wanted, key=lambda item: (item[0], -1 if item[1] is None else item[1])):
        table = DeltaFolder(storage, name).open(version)
        needed.setdefault(name, set()).update(unquote(f.path) for f in DeltaFolder.files(table))
    return needed


def _parquet_files(storage: Storage, name: str) -> list[tuple[str, int]]:
    base = storage.path(*name.split("/"))
    selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
    found = []
    for info in storage.fs.get_file_info(selector):
        relative = info.path[len(base) + 1:]
        if info.type == pafs.FileType.File and info.base_name.endswith(".parquet") \
                and not relative.startswith("_delta_log/"):
            found.append((relative, int(info.size or 0)))
    return sorted(found)


def _scratch(storage: Storage) -> list[tuple[str, int]]:
    """Leftovers of interrupted runs: the work folder's files and temporary catalogs at the root."""
    found = []
    work = pafs.FileSelector(storage.path("_fhirlake", "work"), recursive=True, allow_not_found=True)
    found += [(info.path[len(storage.path()) + 1:], int(info.size or 0))
              for info in storage.fs.get_file_info(work) if info.type == pafs.FileType.File]
    root = pafs.FileSelector(storage.path(), allow_not_found=True)
    found += [(info.base_name, int(info.size or 0)) for info in storage.fs.get_file_info(root)
              if info.type == pafs.FileType.File and info.base_name.startswith(_ROOT_TEMPORARIES)]
    return sorted(found)


def _delete(storage: Storage, relative: str) -> None:
    storage.fs.delete_file(storage.path(*relative.split("/")))
