"""Reading the input: a Bulk Data folder of ``<Type>.ndjson`` files (plain or gzip), or Bundles.

Each input resource is handed on as raw JSON bytes with its location (file and line, or file
and Bundle entry), so that parsing happens in the worker processes and a bad record can be
quarantined with a precise location. Nothing here looks inside the resources except the
first pass, which collects the Patients (and, for Bundles, what each ``fullUrl`` names).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import orjson

from fhirlake.pseudonymize.errors import PseudonymizeError

__all__ = [
    "Location",
    "Source",
    "discover",
    "is_fhir_json",
    "open_input",
    "read_context",
    "read_patients",
    "read_records",
]

_NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz")


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

    @property
    def name(self) -> str:
        return self.path.name


def _expected_type(path: Path) -> str | None:
    """``Patient.ndjson`` and ``Patient.001.ndjson.gz`` hold Patients; other names say nothing."""
    first = path.name.split(".")[0]
    return first if first[:1].isupper() and first.isalpha() else None


def discover(input_path: Path) -> list[Source]:
    """The input files under ``input_path`` (a file or a folder), in a stable order."""
    if input_path.is_file():
        paths = [input_path]
    elif input_path.is_dir():
        # In a folder, .json files that are not FHIR (a Bulk manifest, a truth file) are not input.
        paths = sorted(
            p
            for p in input_path.iterdir()
            if p.is_file()
            and (
                p.name.endswith(_NDJSON_SUFFIXES) or (p.name.endswith(".json") and is_fhir_json(p))
            )
        )
    else:
        raise PseudonymizeError(f"{input_path}: no such file or folder")
    sources = []
    for path in paths:
        if path.name.endswith(_NDJSON_SUFFIXES):
            sources.append(Source(path, "ndjson", _expected_type(path)))
        elif path.name.endswith(".json"):
            sources.append(Source(path, "bundle"))
        else:
            raise PseudonymizeError(f"{path}: expected .ndjson, .ndjson.gz or a .json Bundle")
    if not sources:
        raise PseudonymizeError(f"{input_path}: no .ndjson, .ndjson.gz or .json files")
    return sources


def open_input(path: Path) -> IO[bytes]:
    """An input file opened for reading bytes, gunzipped when its name ends in .gz."""
    try:
        return (
            cast(IO[bytes], gzip.open(path, "rb")) if path.name.endswith(".gz") else path.open("rb")
        )
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


def is_fhir_json(path: Path) -> bool:
    """Whether a .json file holds a FHIR resource or Bundle (not a manifest or a truth file)."""
    with open_input(path) as handle:
        head = handle.read(1 << 16)
    return b'"resourceType"' in head or (
        len(head) == 1 << 16 and b'"resourceType"' in path.read_bytes()
    )


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
