"""The bronze layout of a lake, the append-only state journal, and the watermark store.

One export lives in ``<lake>/bronze/<source>/<export id>/``::

    manifest.json           the completion manifest, byte for byte as the server sent it
    state.jsonl             the state journal: one JSON event per line, only ever appended
    output/<Type>/0001.ndjson   the resources, one folder per type, numbered in manifest order
    error/0001.ndjson       the error[] files (OperationOutcome lines)
    deleted/0001.ndjson     the deleted[] files (transaction Bundles of DELETE entries)

Nothing in it is rewritten: the manifest is written once, each data file appears once by an
atomic rename, and the journal only grows. An export is finished when its journal holds a
``completed`` event; readers (the lake) must use only such exports. ``<lake>/watermarks.json``
keeps, per source, the ``transactionTime`` of the last completed export (the next ``_since``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fhirlake.bulk._exceptions import BulkError, SourceConfigError
from fhirlake.bulk._models import Manifest, ManifestFile

__all__ = ["ExportState", "FileRecord", "list_exports", "read_export"]

FileKind = Literal["output", "error", "deleted"]
ExportStatus = Literal["started", "kicked_off", "manifest", "completed", "cancelled", "abandoned"]
_TERMINAL = frozenset({"completed", "cancelled", "abandoned"})
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
JOURNAL = "state.jsonl"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class FileRecord:
    """A file of the export saved under its final name (as recorded in the journal)."""

    name: str
    kind: FileKind
    type: str
    url: str
    lines: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class ExportState:
    """What the journal of one export says: how far it got, and which files are saved.

    ``status`` is the last milestone: ``started`` (folder made), ``kicked_off`` (the server gave
    a status URL), ``manifest`` (saved, downloading), or one of the terminal ``completed``,
    ``cancelled``, ``abandoned``.
    """

    export_id: str
    path: Path
    status: ExportStatus
    request: Mapping[str, Any] | None = None
    fingerprint: str | None = None
    status_url: str | None = None
    transaction_time: str | None = None
    files: Mapping[str, FileRecord] = field(default_factory=dict)
    job_deleted: bool = False

    @property
    def finished(self) -> bool:
        """True once the export is completed, cancelled or abandoned (it will not be resumed)."""
        return self.status in _TERMINAL


def validate_source_name(name: str) -> str:
    """A source name is used as a folder name: letters, digits, ``_ . -``, at most 64."""
    if not _SOURCE_NAME.match(name):
        raise SourceConfigError(
            "source name", name, "use letters, digits, '_', '.' or '-' (at most 64, no leading '.')"
        )
    return name


class Journal:
    """The append-only state file of one export (JSON Lines).

    A crash may leave a torn last line; reading skips lines that are not JSON, so a torn event
    is simply absent (its effect is redone on resume), and appending starts a fresh line.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, event: str, **fields: Any) -> None:
        """Append one event and flush it to disk."""
        line = json.dumps({"event": event, **fields}, separators=(",", ":")) + "\n"
        try:
            with open(self.path, "ab") as fh:
                if fh.tell() > 0 and not _ends_with_newline(self.path):
                    fh.write(b"\n")
                fh.write(line.encode())
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise BulkError(f"{self.path}: cannot be written ({exc.strerror})") from exc

    def events(self) -> Iterator[dict[str, Any]]:
        """The events in order; torn or foreign lines are skipped."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        for line in raw.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and isinstance(event.get("event"), str):
                yield event


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


class ExportDir:
    """The folder of one export, its journal and the names of its files."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.export_id = path.name
        self.journal = Journal(path / JOURNAL)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def state(self) -> ExportState:
        """Fold the journal into an :class:`ExportState`."""
        return _fold(self.export_id, self.path, self.journal.events())

    def save_manifest(self, raw: bytes) -> None:
        """Write the manifest once (temp file, then rename); an existing one is never replaced."""
        if self.manifest_path.exists():
            if self.manifest_path.read_bytes() == raw:
                return
            raise BulkError(f"{self.manifest_path}: a different manifest is already saved")
        tmp = self.manifest_path.with_name(MANIFEST + ".part")
        try:
            with open(tmp, "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, self.manifest_path)  # fails instead of replacing if it appeared meanwhile
            tmp.unlink()
        except OSError as exc:
            raise BulkError(f"{self.manifest_path}: cannot be saved ({exc.strerror})") from exc

    def load_manifest(self) -> Manifest:
        """Read the saved manifest back."""
        try:
            data = json.loads(self.manifest_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise BulkError(f"{self.manifest_path}: cannot be read back ({exc})") from exc
        return Manifest.from_json(data, url=str(self.manifest_path))

    def planned_files(self, manifest: Manifest) -> list[tuple[str, FileKind, ManifestFile]]:
        """Every file of the manifest with its relative name in the bronze folder, in manifest order."""
        planned: list[tuple[str, FileKind, ManifestFile]] = []
        per_type: dict[str, int] = {}
        for file in manifest.output:
            per_type[file.type] = per_type.get(file.type, 0) + 1
            planned.append(
                (f"output/{_safe(file.type)}/{per_type[file.type]:04d}.ndjson", "output", file)
            )
        for index, file in enumerate(manifest.error, start=1):
            planned.append((f"error/{index:04d}.ndjson", "error", file))
        for index, file in enumerate(manifest.deleted, start=1):
            planned.append((f"deleted/{index:04d}.ndjson", "deleted", file))
        return planned

    def remove_partials(self) -> None:
        """Delete ``.part`` files a crashed run left behind (they are never complete)."""
        for part in self.path.rglob("*.part"):
            part.unlink(missing_ok=True)


def _safe(type_name: str) -> str:
    """A type name as a folder name (manifest types are server input: keep them harmless)."""
    cleaned = re.sub(r"[^A-Za-z0-9]", "_", type_name)
    return cleaned or "_"


def _fold(export_id: str, path: Path, events: Iterator[dict[str, Any]]) -> ExportState:
    status: ExportStatus = "started"
    values: dict[str, Any] = {}
    files: dict[str, FileRecord] = {}
    job_deleted = False
    for event in events:
        kind = event["event"]
        if kind == "created":
            values["request"] = event.get("request")
            values["fingerprint"] = event.get("fingerprint")
        elif kind == "kicked_off":
            status = "kicked_off"
            values["status_url"] = event.get("status_url")
        elif kind == "manifest":
            status = "manifest"
            values["transaction_time"] = event.get("transaction_time")
        elif kind == "file":
            record = FileRecord(
                name=event["name"], kind=event["kind"], type=event["type"], url=event["url"],
                lines=event["lines"], bytes=event["bytes"], sha256=event["sha256"],
            )  # fmt: skip
            files[record.name] = record
        elif kind in _TERMINAL:
            status = kind
        elif kind == "job_deleted":
            job_deleted = bool(event.get("ok"))
    return ExportState(export_id, path, status, files=files, job_deleted=job_deleted, **values)


class BronzeLayout:
    """The exports of one source: ``<lake>/bronze/<source>/``."""

    def __init__(self, lake: Path, source: str) -> None:
        self.lake = lake
        self.source = validate_source_name(source)
        self.root = lake / "bronze" / source

    def exports(self) -> list[ExportDir]:
        """The source's export folders, oldest first (ids sort by time)."""
        if not self.root.is_dir():
            return []
        return [ExportDir(p) for p in sorted(self.root.iterdir()) if (p / JOURNAL).is_file()]

    def latest_unfinished(self) -> ExportDir | None:
        """The newest export that is neither completed, cancelled nor abandoned."""
        for export_dir in reversed(self.exports()):
            if not export_dir.state().finished:
                return export_dir
        return None

    def create(self, *, now: float) -> ExportDir:
        """A new, empty export folder named ``<UTC time to the millisecond>-<random>``, so that
        names sort in creation order."""
        moment = datetime.fromtimestamp(now, UTC)
        stamp = moment.strftime("%Y%m%dT%H%M%S") + f".{moment.microsecond // 1000:03d}Z"
        path = self.root / f"{stamp}-{secrets.token_hex(3)}"
        try:
            path.mkdir(parents=True)
        except OSError as exc:
            raise BulkError(f"{path}: cannot be created ({exc.strerror})") from exc
        return ExportDir(path)


def read_export(path: Path) -> ExportState:
    """The state of the export in ``path`` (a folder ``<lake>/bronze/<source>/<export id>``)."""
    if not (path / JOURNAL).is_file():
        raise BulkError(f"{path}: not an export folder (no {JOURNAL})")
    return ExportDir(path).state()


def list_exports(lake: Path, source: str) -> list[ExportState]:
    """The states of every export of ``source`` in the lake, oldest first."""
    return [d.state() for d in BronzeLayout(lake, source).exports()]


class WatermarkStore:
    """``<lake>/watermarks.json``: per source, the transactionTime to use as the next ``_since``.

    Writes replace the file atomically under an exclusive lock, so concurrent exports of
    different sources do not lose each other's watermark.
    """

    def __init__(self, lake: Path) -> None:
        self.path = lake / "watermarks.json"

    def get(self, source: str) -> str | None:
        """The stored transactionTime of ``source``, or None."""
        entry = self._read().get(source)
        value = entry.get("transactionTime") if isinstance(entry, dict) else None
        return value if isinstance(value, str) else None

    def set(self, source: str, *, transaction_time: str, export_id: str) -> None:
        """Record the transactionTime of a completed export of ``source``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            data = self._read()
            data[source] = {"transactionTime": transaction_time, "exportId": export_id}
            tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2, sort_keys=True)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise BulkError(f"{self.path}: cannot be read ({exc})") from exc
        if not isinstance(data, dict):
            raise BulkError(f"{self.path}: expected a JSON object of sources")
        return data

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
