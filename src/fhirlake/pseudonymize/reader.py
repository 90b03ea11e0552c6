"""Reading the input: a :class:`fhirlake.batch.Batch` (NDJSON plain, gzip or zstd, and Bundles).

Each input resource is handed on as raw JSON bytes with its location (file and line, or file
and Bundle entry), so that parsing happens in the worker processes and a bad record can be
quarantined with a precise location. Nothing here looks inside the resources except the
first pass, which collects the Patients (and, for Bundles, what each ``fullUrl`` names).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from fhirlake.batch import Batch, BatchError, read_batch
from fhirlake.pseudonymize.errors import PseudonymizeError
from fhirlake.sof.inputs import open_text

__all__ = [
    "Location",
    "Source",
    "discover",
    "input_batch",
    "open_input",
    "read_context",
    "read_patients",
    "read_records",
    "sources_of",
]


@dataclass(frozen=True, slots=True)
class Location:
    """Where a record comes from: a line of an NDJSON file, or an entry of a Bundle."""

    file: str
    line: int | None = None
    entry: int | None = None

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"file": self.file}
        if self.line is not None:
            found["line"] = self.line
        if self.entry is not None:
            found["pointer"] = f"/entry/{self.entry}/resource"
        return found


@dataclass(slots=True)
class Source:
    """One input file: NDJSON (its resource type is read from the name) or a JSON Bundle."""

    path: Path
    kind: str  # "ndjson" or "bundle"
    expected_type: str | None = None
    bundle_urls: dict[str, tuple[str, str]] = field(default_factory=dict)
    label: str | None = None  # how messages name it (relative to its batch)

    @property
    def name(self) -> str:
        return self.label or self.path.name


def sources_of(batch: Batch) -> list[Source]:
    """The input files of a batch, in a stable order: NDJSON per type, deleted Bundles, Bundles."""
    sources = [
        Source(path, "ndjson", resource_type, label=batch.label(path))
        for resource_type, paths in sorted(batch.files.items())
        for path in paths
    ]
    sources += [Source(path, "ndjson", "Bundle", label=batch.label(path)) for path in batch.deleted]
    sources += [Source(path, "bundle", label=batch.label(path)) for path in batch.bundles]
    return sources


def input_batch(input_path: Path | Batch) -> Batch:
    """The batch at ``input_path`` (see :mod:`fhirlake.batch`), its errors as this area's."""
    try:
        return input_path if isinstance(input_path, Batch) else read_batch(input_path)
    except BatchError as exc:
        raise PseudonymizeError(str(exc)) from None


def discover(input_path: Path | Batch) -> list[Source]:
    """The input files of a batch, or of the batch at ``input_path`` (see :mod:`fhirlake.batch`)."""
    batch = input_batch(input_path)
    if batch.is_empty:
        raise PseudonymizeError(f"{batch.path}: no NDJSON files of FHIR resources, no Bundles and nothing deleted")
    return sources_of(batch)


def open_input(path: Path) -> IO[bytes]:
    """An input file opened for reading bytes: plain, gzip or zstd (by its name)."""
    try:
        return open_text(path)
    except OSError as exc:
        raise PseudonymizeError(f"{path}: cannot read ({exc.strerror})") from None


def _ndjson(source: Source) -> Iterator[tuple[Location, bytes]]:
    with open_input(source.path) as handle:
        try:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield Location(source.name, line=number), line.rstrip(b"\r\n")
        except (OSError, EOFError) as exc:
            raise PseudonymizeError(f"{source.path}: cannot read ({exc})") from None


class _NotJson:
    """A .json input that does not parse: quarantined whole, as one record."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw


def _bundle_json(source: Source) -> Any:
    with open_input(source.path) as handle:
        raw = handle.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _NotJson(raw)


def _bundle(source: Source) -> Iterator[tuple[Location, bytes]]:
    document = _bundle_json(source)
    if isinstance(document, _NotJson):
        yield Location(source.name), document.raw  # the worker quarantines it with the reason
        return
    if isinstance(document, dict) and document.get("resourceType") != "Bundle":
        yield Location(source.name), orjson.dumps(document)  # a single resource
        return
    entries = document.get("entry") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise PseudonymizeError(f"{source.path}: expected a Bundle with an entry array")
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        # A missing resource is passed on as null so that it is quarantined with its place.
        yield Location(source.name, entry=i), orjson.dumps(resource)


def read_records(source: Source) -> Iterator[tuple[Location, bytes]]:
    """Every record of a source with its location; blank NDJSON lines are skipped."""
    return _ndjson(source) if source.kind == "ndjson" else _bundle(source)


def read_patients(source: Source) -> Iterator[dict[str, Any]]:
    """The Patient resources of a source (first pass); also fills ``source.bundle_urls``.

    Invalid lines are skipped here: the second pass quarantines them with their reason.
    """
    if source.kind == "ndjson" and source.expected_type not in (None, "Patient"):
        return
    if source.kind == "bundle":
        document = _bundle_json(source)
        if isinstance(document, dict) and document.get("resourceType") == "Patient":
            yield document
        for entry in (document.get("entry") or []) if isinstance(document, dict) else []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                continue
            rtype, rid, url = resource.get("resourceType"), resource.get("id"), entry.get("fullUrl")
            if isinstance(rtype, str) and isinstance(rid, str) and isinstance(url, str):
                source.bundle_urls[url] = (rtype, rid)
            if rtype == "Patient":
                yield resource
        return
    for _, raw in _ndjson(source):
        if b'"Patient"' not in raw:
            continue
        try:
            resource = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
            yield resource


def read_context(source: Source, types: frozenset[str]) -> Iterator[dict[str, Any]]:
    """The resources of ``types`` in a source (first pass, when free text is scrubbed).

    NDJSON files named after another type are skipped unread. Like :func:`read_patients`,
    this fills ``source.bundle_urls`` and skips invalid lines.
    """
    if source.kind == "bundle":
        document = _bundle_json(source)
        if isinstance(document, dict) and document.get("resourceType") in types:
            yield document
        for entry in (document.get("entry") or []) if isinstance(document, dict) else []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                continue
            rtype, rid, url = resource.get("resourceType"), resource.get("id"), entry.get("fullUrl")
            if isinstance(rtype, str) and isinstance(rid, str) and isinstance(url, str):
                source.bundle_urls[url] = (rtype, rid)
            if rtype in types:
                yield resource
        return
    if source.expected_type is not None and source.expected_type not in types:
        return
    for _, raw in _ndjson(source):
        try:
            resource = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(resource, dict) and resource.get("resourceType") in types:
            yield resource
