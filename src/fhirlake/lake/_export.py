"""What an export brings to the lake: NDJSON files per type, deleted keys per type, and when.

The files come from a :class:`fhirlake.batch.Batch` (any layout it reads); the deletions from
its ``deleted[]`` files, NDJSON of Bundles listing deleted resources (entries with
``request.method = DELETE`` and ``request.url = "Type/id"``).
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from fhirlake.batch import (
    Batch,
    blocked_reason,
    count_problem,
    pseudonymisation_problem,
    read_batch,
)
from fhirlake.lake.errors import ExportFolderError, RawInputError
from fhirlake.sof import registry
from fhirlake.sof.inputs import open_text

__all__ = ["ExportFolder", "admit", "bundles_as_ndjson", "parse_time", "read_export"]


@dataclass(frozen=True)
class ExportFolder:
    """What one export brings: files per resource type, deleted keys per type, its time."""

    folder: Path
    export_id: str
    files: dict[str, tuple[Path, ...]]
    deleted: dict[str, frozenset[str]]
    transaction_time: datetime | None
    batch: Batch | None = None  # what it was read from

    @property
    def types(self) -> list[str]:
        """Every resource type the export has resources or deletions of, sorted."""
        return sorted(set(self.files) | set(self.deleted))


def parse_time(text: str) -> datetime:
    """An ISO date or date-time as an aware UTC datetime (a naive one is taken as UTC)."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def read_export(
    folder: str | Path | Batch, *, export_id: str | None = None, deleted: Iterable[str] | None = None
) -> ExportFolder:
    """The export a batch brings (``folder`` is read with :func:`fhirlake.batch.read_batch`);
    ``deleted`` adds ``"Type/id"`` references to its deletions.

    ``export_id`` defaults to the batch's (a bronze export's id, or the folder's name).
    """
    if isinstance(folder, Batch):
        batch = folder
    else:
        if not Path(folder).exists():
            raise ExportFolderError(f"{folder}: no such export folder")
        batch = read_batch(folder)
    removed: dict[str, set[str]] = defaultdict(set)
    for file in batch.deleted:
        for resource_type, key in _deleted_entries(file):
            removed[resource_type].add(key)
    for reference in deleted or ():
        resource_type, key = _split_reference(reference, "the deleted argument")
        removed[resource_type].add(key)
    # without a manifest, Bundle files are the pseudonymiser's deletion Bundles, not data
    listed = (batch.path / "manifest.json").is_file() or (batch.path / "state.jsonl").is_file()
    files = {t: paths for t, paths in batch.files.items() if listed or t != "Bundle"}
    if not files and not removed and not batch.bundles:
        raise ExportFolderError(f"{batch.path}: no NDJSON files of FHIR resources, no Bundles and nothing deleted")
    try:
        transaction_time = parse_time(batch.transaction_time) if batch.transaction_time else None
    except ValueError as exc:
        raise ExportFolderError(
            f"{batch.path / 'manifest.json'}: transactionTime {batch.transaction_time!r} is not an ISO instant"
        ) from exc
    return ExportFolder(
        folder=batch.path, export_id=export_id or batch.export_id, files=dict(files),
        deleted={t: frozenset(keys) for t, keys in removed.items()}, transaction_time=transaction_time,
        batch=batch,
    )


def admit(export: ExportFolder, *, allow_raw: bool) -> str | None:
    """Refuse a batch that is not, byte for byte, what ``fhirlake pseudonymize`` wrote (unless
    ``allow_raw``) or that a blocking check failed on; return why it is raw, or None.

    A raw batch let in is still held to its manifest's counts: nothing is lost without a word.
    """
    if export.batch is None:
        return None
    problem = pseudonymisation_problem(export.batch)
    if problem is None:
        return None
    if blocked_reason(export.folder) is not None:
        raise RawInputError(problem)
    if not allow_raw:
        raise RawInputError(f"{problem}: run fhirlake pseudonymize first, or pass --allow-raw (allow_raw=True) "
                            "to put raw data in this lake knowingly")
    mismatch = count_problem(export.batch)
    if mismatch is not None:
        raise ExportFolderError(mismatch)
    return problem


@contextmanager
def bundles_as_ndjson(export: ExportFolder) -> Iterator[ExportFolder]:
    """The export with the resources of its JSON Bundles written as NDJSON files per type (in a
    scratch folder removed afterwards), since the lake reads NDJSON."""
    bundles = export.batch.bundles if export.batch is not None else ()
    if not bundles:
        yield export
        return
    with tempfile.TemporaryDirectory(prefix="fhirlake-bundles-") as scratch:
        handles: dict[str, IO[bytes]] = {}
        try:
            for bundle in bundles:
                for resource in _bundle_resources(bundle):
                    resource_type = str(resource.get("resourceType"))
                    if resource_type not in handles:
                        handles[resource_type] = (Path(scratch) / f"{resource_type}.bundles.ndjson").open("wb")
                    handles[resource_type].write(orjson.dumps(resource) + b"\n")
        finally:
            for handle in handles.values():
                handle.close()
        files = dict(export.files)
        for resource_type in handles:
            files[resource_type] = (*files.get(resource_type, ()), Path(scratch) / f"{resource_type}.bundles.ndjson")
        yield replace(export, files=dict(sorted(files.items())))


def _bundle_resources(path: Path) -> Iterator[dict[str, Any]]:
    document = orjson.loads(path.read_bytes())
    if document.get("resourceType") != "Bundle":
        yield document
        return
    for index, entry in enumerate(document.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not registry.is_resource(str(resource.get("resourceType"))):
            raise ExportFolderError(f"{path}#/entry/{index}/resource: not a FHIR resource")
        yield resource


def _deleted_entries(file: Path) -> Iterable[tuple[str, str]]:
    """(type, id) of each DELETE entry of each Bundle in an NDJSON file."""
    with open_text(file) as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                bundle = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise ExportFolderError(f"{file}:{number}: not valid JSON ({exc})") from exc
            entries = bundle.get("entry", []) if isinstance(bundle, dict) else None
            if not isinstance(entries, list):
                raise ExportFolderError(f"{file}:{number}: not a Bundle of deleted resources")
            for entry in entries:
                request = entry.get("request", {}) if isinstance(entry, dict) else {}
                if isinstance(request, dict) and str(request.get("method", "")).upper() == "DELETE":
                    yield _split_reference(str(request.get("url", "")), f"{file}:{number}")


def _split_reference(reference: str, where: str) -> tuple[str, str]:
    parts = reference.strip("/").split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) < 2 or not registry.is_resource(parts[-2]) or not parts[-1]:
        raise ExportFolderError(f"{where}: {reference!r} is not a Type/id reference")
    return parts[-2], parts[-1]
