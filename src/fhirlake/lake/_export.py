"""Read an export folder: which NDJSON files hold which type, what was deleted, and when.

The folder is a (pseudonymised) Bulk Data export: ``<Type>.ndjson[.gz|.zst]`` files and an
optional ``manifest.json`` whose ``output[]`` names the files, whose ``deleted[]`` names NDJSON
files of Bundles listing deleted resources (entries with ``request.method = DELETE`` and
``request.url = "Type/id"``), and whose ``transactionTime`` is the export's point in time.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from fhirlake.lake.errors import ExportFolderError
from fhirlake.sof import registry
from fhirlake.sof.inputs import open_text

__all__ = ["ExportFolder", "parse_time", "read_export"]

_SUFFIXES = (".ndjson", ".ndjson.gz", ".ndjson.zst", ".jsonl", ".jsonl.gz", ".jsonl.zst")


@dataclass(frozen=True)
class ExportFolder:
    """What one export brings: files per resource type, deleted keys per type, its time."""

    folder: Path
    export_id: str
    files: dict[str, tuple[Path, ...]]
    deleted: dict[str, frozenset[str]]
    transaction_time: datetime | None

    @property
    def types(self) -> list[str]:
        """Every resource type the export has resources or deletions of, sorted."""
        return sorted(set(self.files) | set(self.deleted))


def parse_time(text: str) -> datetime:
    """An ISO date or date-time as an aware UTC datetime (a naive one is taken as UTC)."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def read_export(folder: str | Path, *, export_id: str | None = None, deleted: Iterable[str] | None = None) -> ExportFolder:
    """Read ``folder``; ``deleted`` adds ``"Type/id"`` references to the manifest's deletions.

    ``export_id`` defaults to the folder's name (the bronze layout names export folders by id).
    """
    path = Path(folder)
    if not path.is_dir():
        raise ExportFolderError(f"{path}: no such export folder")
    manifest = _read_manifest(path)
    files = _files_from_manifest(path, manifest) if manifest is not None else _files_by_name(path)
    removed: dict[str, set[str]] = defaultdict(set)
    listed = (manifest or {}).get("deleted") or []
    for entry in listed if isinstance(listed, list) else []:
        name = Path(str(entry.get("url", ""))).name if isinstance(entry, dict) else ""
        if not (path / name).is_file():
            raise ExportFolderError(f"{path / 'manifest.json'}: deleted file {name!r} is not in the folder")
        for resource_type, key in _deleted_entries(path / name):
            removed[resource_type].add(key)
    for reference in deleted or ():
        resource_type, key = _split_reference(reference, "the deleted argument")
        removed[resource_type].add(key)
    if not files and not removed:
        raise ExportFolderError(f"{path}: no NDJSON files of FHIR resources and nothing deleted")
    time_text = (manifest or {}).get("transactionTime")
    try:
        transaction_time = parse_time(time_text) if isinstance(time_text, str) else None
    except ValueError as exc:
        raise ExportFolderError(f"{path / 'manifest.json'}: transactionTime {time_text!r} is not an ISO instant") from exc
    return ExportFolder(
        folder=path, export_id=export_id or path.name, files=files,
        deleted={t: frozenset(keys) for t, keys in removed.items()}, transaction_time=transaction_time,
    )


def _read_manifest(folder: Path) -> dict[str, object] | None:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ExportFolderError(f"{manifest}: not a valid Bulk Data manifest ({exc})") from exc
    if not isinstance(data, dict):
        raise ExportFolderError(f"{manifest}: not a valid Bulk Data manifest (not a JSON object)")
    return data


def _files_from_manifest(folder: Path, manifest: dict[str, object]) -> dict[str, tuple[Path, ...]]:
    found: dict[str, list[Path]] = defaultdict(list)
    outputs = manifest.get("output", [])
    for entry in outputs if isinstance(outputs, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise ExportFolderError(f"{folder / 'manifest.json'}: an output entry has no type")
        name = Path(str(entry.get("url", ""))).name
        if not (folder / name).is_file():
            raise ExportFolderError(f"{folder / 'manifest.json'}: output file {name!r} is not in the folder")
        found[entry["type"]].append(folder / name)
    return {t: tuple(sorted(paths)) for t, paths in sorted(found.items())}


def _files_by_name(folder: Path) -> dict[str, tuple[Path, ...]]:
    """``Patient.ndjson``, ``Patient.000.ndjson.gz``, ``Patient-2.ndjson``: type before . or -."""
    found: dict[str, list[Path]] = defaultdict(list)
    for file in sorted(folder.iterdir()):
        if file.is_file() and file.name.endswith(_SUFFIXES):
            resource_type = file.name.split(".")[0].split("-")[0]
            if registry.is_resource(resource_type) and resource_type != "Bundle":
                found[resource_type].append(file)
    return {t: tuple(paths) for t, paths in sorted(found.items())}


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
