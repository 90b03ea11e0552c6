"""The steps of the chain as plain functions over the lake's folders (no Dagster here).

The Dagster assets and ``fhirlake run`` call these; each is idempotent, so re-running a
partition redoes nothing that is done, and each leaves nothing half-written (work happens in a
hidden folder renamed at the end)::

    <lake>/bronze/<source>/<export id>/        a Bulk export (fhirlake.bulk) or an imported drop batch
    <lake>/pseudonymised/<source>/<export id>/  Bulk-shaped output, privacy-report.json, quarantine.jsonl
    <lake>/silver, gold, catalog.duckdb         fhirlake.lake (Lake.ingest merges silver and gold)

A batch dropped by a file source is a folder ``<drop dir>/<source>/<batch>/`` of
``<Type>.ndjson[.gz|.zst]`` files, ready once it holds ``manifest.json`` or an empty ``_READY``
file (written last, so a half-copied batch is never taken). Every stage reads a batch where it
is, as a :class:`fhirlake.batch.Batch`: nothing is staged, copied or linked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import fhirlake
from fhirlake.batch import (
    DROP_MARKER,
    Batch,
    BatchError,
    batch_of_export,
    block,
    blocked_reason,
    count_lines,
    read_batch,
)
from fhirlake.bulk import ExportOptions, ExportResult, Source, WatermarkStore, export, list_exports
from fhirlake.errors import ConfigurationError, FhirlakeError
from fhirlake.lake import IngestReport, LakeNotFoundError
from fhirlake.pseudonymize import Policy, PrivacyReport, PseudonymKey, pseudonymize

__all__ = [
    "BlockedBatchError",
    "DropError",
    "Pseudonymised",
    "block",
    "blocked_reason",
    "bronze_batches",
    "import_drops",
    "ingest_pending",
    "ingested_exports",
    "not_ingested",
    "pseudonymise_pending",
    "pseudonymised_batches",
    "pseudonymised_dir",
    "ready_drops",
    "run_export",
]

READY_FILES = ("manifest.json", "_READY")


class DropError(FhirlakeError):
    """A dropped batch cannot be imported (names the file and the reason)."""


class BlockedBatchError(FhirlakeError):
    """A pseudonymised batch failed a blocking check and is kept out of the lake."""


def run_export(lake: Path, source: Source, *, incremental: bool) -> ExportResult:
    """Export ``source`` into ``<lake>/bronze/<source>/``: everything, or changes since the watermark."""
    since = WatermarkStore(lake).get(source.name) if incremental else None
    auth = source.auth.build(source.request.base_url)
    options = ExportOptions(parallel=source.parallel or 4, delete_after=source.delete_after is not False)
    return export(source=source.name, request=source.with_since(since).request, lake=lake, auth=auth,
                  options=options)


def bronze_batches(lake: Path, source: str) -> list[Batch]:
    """The completed batches of ``source`` in bronze (exports and imported drops), oldest first."""
    batches = [batch_of_export(state, source=source) for state in list_exports(lake, source)
               if state.status == "completed"]
    root = lake / "bronze" / source
    for marker in sorted(root.glob(f"*/{DROP_MARKER}")) if root.is_dir() else []:
        batches.append(read_batch(marker.parent, source=source))
    return sorted(batches, key=lambda b: b.export_id)


# ------------------------------------------------------------------------------- drop folder


def ready_drops(drop_dir: Path, source: str) -> list[Path]:
    """The batch folders of ``source`` in the drop folder that are complete, by name."""
    folder = drop_dir / source
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and any((p / name).is_file() for name in READY_FILES))


def import_drops(lake: Path, drop_dir: Path, source: str) -> list[Batch]:
    """Copy every ready, not yet imported batch of ``source`` into bronze; return the new ones.

    A batch becomes ``<lake>/bronze/<source>/<UTC time>-drop-<batch>/``; its name is remembered
    in ``<drop dir>/<source>/.imported`` so it is imported once even after bronze is pruned.
    """
    ledger = drop_dir / source / ".imported"
    done = set(ledger.read_text(encoding="utf-8").split()) if ledger.is_file() else set()
    imported = []
    for batch in ready_drops(drop_dir, source):
        if batch.name in done:
            continue
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"
        target = lake / "bronze" / source / f"{stamp}-drop-{_safe(batch.name)}"
        with _work_folder(target) as work:
            info = _copy_batch(batch, work)
            (work / DROP_MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        with ledger.open("a", encoding="utf-8") as handle:
            handle.write(batch.name + "\n")
        imported.append(target.name)
    return [b for b in bronze_batches(lake, source) if b.export_id in imported]


def _copy_batch(folder: Path, work: Path) -> dict[str, object]:
    """Copy a dropped batch's data files into ``work``; what the drop marker records of it."""
    try:
        batch = read_batch(folder)
    except BatchError as exc:
        raise DropError(str(exc)) from None
    if not batch.files:
        raise DropError(f"{folder}: the batch holds no <Type>.ndjson files")
    files: dict[str, list[str]] = {}
    lines: dict[str, int] = {}
    for resource_type, paths in batch.files.items():
        for path in paths:
            shutil.copyfile(path, work / path.name)
            files.setdefault(resource_type, []).append(path.name)
            lines[resource_type] = lines.get(resource_type, 0) + count_lines(work / path.name)
    return {"batch": folder.name, "files": files, "lines": lines, "manifest_counts": dict(batch.manifest_counts),
            "transactionTime": batch.transaction_time}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "-", name)[:40] or "batch"


# ---------------------------------------------------------------------------- pseudonymise


def pseudonymised_dir(lake: Path, source: str, export_id: str | None = None) -> Path:
    """``<lake>/pseudonymised/<source>[/<export id>]``."""
    folder = lake / "pseudonymised" / source
    return folder / export_id if export_id else folder


@dataclass(frozen=True)
class Pseudonymised:
    """A batch pseudonymised by this run, and its report."""

    batch: Batch
    folder: Path
    report: PrivacyReport


def pseudonymise_pending(
    lake: Path, source: str, *, policy: Policy, key: PseudonymKey, text: bool = True, workers: int | None = None
) -> list[Pseudonymised]:
    """Pseudonymise every bronze batch of ``source`` that has no pseudonymised folder yet.

    An empty batch (an incremental export with no changes) has nothing to pseudonymise or
    ingest, and is left out.
    """
    done = []
    for batch in bronze_batches(lake, source):
        target = pseudonymised_dir(lake, source, batch.export_id)
        if target.is_dir() or batch.is_empty:
            continue
        with _work_folder(target) as work:
            output = work / "output"
            report = pseudonymize(batch, output, policy, key, text=text, workers=workers)
            for item in output.iterdir():
                item.rename(work / item.name)
            output.rmdir()
        done.append(Pseudonymised(batch, target, report))
    return done


# -------------------------------------------------------------------------------- ingest


def pseudonymised_batches(lake: Path, source: str) -> list[Path]:
    """The pseudonymised batch folders of ``source``, oldest first."""
    folder = pseudonymised_dir(lake, source)
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if folder.is_dir() else []


def ingested_exports(lake: Path, source: str) -> set[str]:
    """The export ids of ``source`` the lake's log has recorded."""
    try:
        with fhirlake.connect(lake) as opened:
            return {s.export_id for s in opened.log.snapshots() if s.source == source and s.export_id}
    except LakeNotFoundError:
        return set()


def not_ingested(lake: Path, source: str) -> list[Path]:
    """The pseudonymised batches of ``source`` that are not in the lake yet (blocked ones too)."""
    done = ingested_exports(lake, source)
    return [p for p in pseudonymised_batches(lake, source) if p.name not in done]


def ingest_pending(lake: Path, source: str, *, views: Path | None = None) -> list[IngestReport]:
    """Merge every pseudonymised batch of ``source`` into silver and gold, oldest first.

    Batches already in the lake are recognised by the lake's log and change nothing. A blocked
    batch stops the merge there (later batches would otherwise overtake it): the error says why.
    """
    batches = pseudonymised_batches(lake, source)
    if not batches:
        return []
    reports = []
    with fhirlake.connect(lake, read_only=False, views=views) as opened:
        for batch in batches:
            reason = blocked_reason(batch)
            if reason is not None:
                raise BlockedBatchError(f"{batch}: kept out of the lake: {reason}")
            reports.append(opened.ingest(batch, source=source))
    return reports


# -------------------------------------------------------------------------------- helpers


@contextmanager
def _work_folder(target: Path) -> Iterator[Path]:
    """A hidden folder beside ``target``, renamed to it on success and removed on failure."""
    if target.exists():
        raise ConfigurationError(f"{target}: already exists")
    work = target.with_name(f".{target.name}.work-{os.getpid()}-{time.monotonic_ns()}")
    work.mkdir(parents=True)
    try:
        yield work
        work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
