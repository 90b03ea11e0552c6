"""What an export brings to the lake: NDJSON files per type, deleted keys per type, and when.

The files come from a :class:`fhirlake.batch.Batch` (any layout it reads); the deletions from
its ``deleted[]`` files, NDJSON of Bundles listing deleted resources (entries with
``request.method = DELETE`` and ``request.url = "Type/id"``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from fhirlake.batch import Batch, read_batch
from fhirlake.lake.errors import ExportFolderError
from fhirlake.sof import registry
from fhirlake.sof.inputs import open_text

__all__ = ["ExportFolder", "parse_time", "read_export"]


@dataclass(frozen=True)
class ExportFolder:
    """What one export brings: files per resource type, deleted keys per type, its time."""

    folder: Path
    export_id: str
    files: dict[str, tuple[Path, ...]]
    deleted: dict[str, frozenset[str]]
    transaction_time: datetime | None
    pseudonymised: bool = False  # made by fhirlake pseudonymize (it holds a privacy report)

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
    if not files and not removed:
        raise ExportFolderError(f"{batch.path}: no NDJSON files of FHIR resources and nothing deleted")
    try:
        transaction_time = parse_time(batch.transaction_time) if batch.transaction_time else None
    except ValueError as exc:
        raise ExportFolderError(
            f"{batch.path / 'manifest.json'}: transactionTime {batch.transaction_time!r} is not an ISO instant"
        ) from exc
    return ExportFolder(
        folder=batch.path, export_id=export_id or batch.export_id, files=dict(files),
        deleted={t: frozenset(keys) for t, keys in removed.items()}, transaction_time=transaction_time,
        pseudonymised=batch.pseudonymised,
    )


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
