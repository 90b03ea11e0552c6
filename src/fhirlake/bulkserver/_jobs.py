"""Export jobs of the embedded server: reading kick-off parameters and building the output files."""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhirlake.bulkserver._store import DataFolder, Slice, SourceFile, parse_instant

__all__ = ["Job", "KickoffParams", "KickoffRejected", "OutputEntry", "build_job", "parse_kickoff"]

_OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
_SUPPORTED = frozenset({"_outputFormat", "_since", "_type", "_elements"})
_KNOWN_UNSUPPORTED = frozenset({"_typeFilter", "includeAssociatedData", "patient"})
_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_PATIENT_FIELDS = ("subject", "patient", "beneficiary")
_SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
_BUNDLE_ENTRIES = 500


class KickoffRejected(Exception):
    """The kick-off is refused: ``status`` and a one-line diagnostic for the OperationOutcome."""

    def __init__(self, status: int, message: str, code: str = "invalid") -> None:
        self.status = status
        self.message = message
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class KickoffParams:
    """The parameters the server acts on; ``ignored`` are unsupported ones skipped leniently."""

    level: str
    group_id: str | None = None
    types: tuple[str, ...] | None = None
    since: float | None = None
    elements: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()


def parse_kickoff(
    *, level: str, group_id: str | None, values: Mapping[str, list[str]], method: str, lenient: bool
) -> KickoffParams:
    """Check and read the kick-off parameters (query or Parameters body, already gathered)."""
    if "patient" in values and method != "POST":
        raise KickoffRejected(400, "the patient parameter is only allowed in a POST body")
    if "patient" in values and level == "system":
        raise KickoffRejected(400, "the patient parameter is not allowed on a system-level export")
    ignored = []
    for name in values:
        if name in _SUPPORTED:
            continue
        if not lenient:
            what = "not supported by this server" if name in _KNOWN_UNSUPPORTED else "unknown"
            raise KickoffRejected(400, f"parameter {name} is {what}", code="not-supported")
        ignored.append(name)
    for fmt in _comma(values.get("_outputFormat", [])):
        if fmt not in _OUTPUT_FORMATS:
            raise KickoffRejected(
                400, f"_outputFormat {fmt!r} is not supported (use application/fhir+ndjson)"
            )
    since = None
    if values.get("_since"):
        text = values["_since"][-1]
        try:
            since = parse_instant(text)
        except ValueError:
            raise KickoffRejected(400, f"_since {text!r} is not a FHIR instant") from None
    types = tuple(_comma(values.get("_type", []))) or None
    for name in types or ():
        if not _TYPE_NAME.match(name):
            raise KickoffRejected(400, f"_type {name!r} is not a resource type name")
    elements = tuple(_comma(values.get("_elements", [])))
    return KickoffParams(level, group_id, types, since, elements, tuple(ignored))


def parameters_from_body(body: bytes) -> dict[str, list[str]]:
    """The values of a FHIR ``Parameters`` kick-off body, as lists of strings per name."""
    try:
        data = json.loads(body)
    except ValueError:
        raise KickoffRejected(400, "the POST body is not JSON") from None
    if not isinstance(data, dict) or data.get("resourceType") != "Parameters":
        raise KickoffRejected(400, "the POST body must be a FHIR Parameters resource")
    values: dict[str, list[str]] = {}
    for parameter in data.get("parameter") or []:
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            raise KickoffRejected(400, "each Parameters.parameter needs a name")
        value = next((v for k, v in parameter.items() if k.startswith("value")), None)
        if isinstance(value, dict):
            value = value.get("reference")
        if not isinstance(value, str):
            raise KickoffRejected(400, f"parameter {parameter['name']} has no usable value")
        values.setdefault(parameter["name"], []).append(value)
    return values


def _comma(values: Iterable[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


@dataclass(frozen=True)
class OutputEntry:
    """A file listed in the manifest: its name in the job, type, and where its bytes are."""

    name: str
    type: str
    slice: Slice


@dataclass
class Job:
    """One export job and its progress; mutated only by the server's event loop and its builder."""

    id: str
    index: int
    params: KickoffParams
    request_url: str
    transaction_time: str
    created: float
    directory: Path
    owner: str | None = None
    outputs: list[OutputEntry] = field(default_factory=list)
    errors: list[OutputEntry] = field(default_factory=list)
    deleted: list[OutputEntry] = field(default_factory=list)
    built: bool = False
    build_error: str | None = None
    removed: bool = False
    polls: int = 0
    file_attempts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def entry(self, name: str) -> OutputEntry | None:
        """The output, error or deleted file called ``name``."""
        for entry in (*self.outputs, *self.errors, *self.deleted):
            if entry.name == name:
                return entry
        return None

    def remove_files(self) -> None:
        """Drop the files the job wrote (not the served folder's own)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def group_members(folder: DataFolder, group_id: str) -> frozenset[str] | None:
    """The Patient ids of Group ``group_id`` in the folder, or None when there is no such group."""
    for source in folder.files().get("Group", []):
        with open(source.path, "rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                group = json.loads(line)
                if group.get("id") != group_id:
                    continue
                ids = set()
                for member in group.get("member") or []:
                    reference = (member.get("entity") or {}).get("reference", "")
                    if reference.startswith("Patient/"):
                        ids.add(reference.split("/", 1)[1])
                return frozenset(ids)
    return None


def build_job(
    job: Job,
    folder: DataFolder,
    *,
    members: frozenset[str] | None,
    lines_per_file: int | None,
    error_entries: int,
) -> None:
    """Fill ``job.outputs``, ``errors`` and ``deleted`` (runs in a worker thread)."""
    params = job.params
    files = folder.files()
    deletions = folder.deletions()
    deleted_keys = {(d.type, d.id) for d in deletions}
    types = (
        params.types
        if params.types is not None
        else tuple(sorted(t for t in files if t != "Group"))
    )
    filtering = params.since is not None or params.elements or members is not None or deleted_keys
    job.directory.mkdir(parents=True, exist_ok=True)
    outputs: list[OutputEntry] = []
    for type_name in types:
        sources = files.get(type_name, [])
        if not filtering:
            slices = [s for source in sources for s in folder.slices(source.path, lines_per_file)]
        else:
            slices = _filtered(
                job, type_name, sources, params, members, deleted_keys, lines_per_file
            )
        outputs.extend(
            OutputEntry(f"{type_name}.{n}.ndjson", type_name, s)
            for n, s in enumerate(slices, 1)
            if s.count
        )
    outcomes = [
        _outcome(
            "information",
            "not-supported",
            f"parameter {name} was ignored (Prefer: handling=lenient)",
        )
        for name in params.ignored
    ]
    outcomes += [
        _outcome("error", "processing", f"injected fault {n}: a resource could not be exported")
        for n in range(1, error_entries + 1)
    ]
    job.errors = _write_lines(job.directory / "error.1.ndjson", "OperationOutcome", outcomes)
    if params.since is not None:
        wanted = [
            d
            for d in deletions
            if d.when > params.since and (params.types is None or d.type in params.types)
        ]
        bundles = [
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {"request": {"method": "DELETE", "url": f"{d.type}/{d.id}"}} for d in chunk
                ],
            }
            for chunk in (
                wanted[i : i + _BUNDLE_ENTRIES] for i in range(0, len(wanted), _BUNDLE_ENTRIES)
            )
        ]
        job.deleted = _write_lines(job.directory / "deleted.1.ndjson", "Bundle", bundles)
    job.outputs = outputs


def _filtered(
    job: Job,
    type_name: str,
    sources: list[SourceFile],
    params: KickoffParams,
    members: frozenset[str] | None,
    deleted_keys: set[tuple[str, str]],
    lines_per_file: int | None,
) -> list[Slice]:
    """Write the resources of ``type_name`` that pass the filters into the job's own files."""
    element_names = _elements_for(type_name, params.elements)
    writer = _SplitWriter(job.directory, type_name, lines_per_file)
    for source in sources:
        with open(source.path, "rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                resource = json.loads(line)
                if (type_name, str(resource.get("id"))) in deleted_keys:
                    continue
                if (
                    params.since is not None
                    and _last_updated(resource, source.mtime) <= params.since
                ):
                    continue
                if members is not None and not _in_group(resource, members):
                    continue
                if element_names:
                    resource = _subset(resource, element_names)
                    line = json.dumps(resource, separators=(",", ":")).encode() + b"\n"
                writer.write(line if line.endswith(b"\n") else line + b"\n")
    return writer.close()


class _SplitWriter:
    def __init__(self, directory: Path, type_name: str, lines_per_file: int | None) -> None:
        self.directory, self.type_name, self.limit = directory, type_name, lines_per_file
        self.slices: list[Slice] = []
        self._fh: Any = None
        self._count = 0
        self._path: Path | None = None

    def write(self, line: bytes) -> None:
        if self._fh is None:
            self._path = self.directory / f"{self.type_name}.part{len(self.slices) + 1}.ndjson"
            self._fh = open(self._path, "wb")  # noqa: SIM115 - closed in _finish
        self._fh.write(line)
        self._count += 1
        if self.limit is not None and self._count >= self.limit:
            self._finish()

    def _finish(self) -> None:
        if self._fh is None or self._path is None:
            return
        size = self._fh.tell()
        self._fh.close()
        self.slices.append(Slice(self._path, 0, size, self._count))
        self._fh, self._count = None, 0

    def close(self) -> list[Slice]:
        self._finish()
        return self.slices


def _write_lines(path: Path, kind: str, items: list[dict[str, Any]]) -> list[OutputEntry]:
    if not items:
        return []
    with open(path, "wb") as fh:
        for item in items:
            fh.write(json.dumps(item, separators=(",", ":")).encode() + b"\n")
        size = fh.tell()
    return [OutputEntry(path.name, kind, Slice(path, 0, size, len(items)))]


def _outcome(severity: str, code: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": text}],
    }


def _last_updated(resource: Mapping[str, Any], default: float) -> float:
    meta = resource.get("meta")
    text = meta.get("lastUpdated") if isinstance(meta, dict) else None
    if not isinstance(text, str):
        return default
    try:
        return parse_instant(text)
    except ValueError:
        return default


def _in_group(resource: Mapping[str, Any], members: frozenset[str]) -> bool:
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id")) in members
    found_reference = False
    for name in _PATIENT_FIELDS:
        value = resource.get(name)
        reference = value.get("reference") if isinstance(value, dict) else None
        if isinstance(reference, str) and reference.startswith("Patient/"):
            found_reference = True
            if reference.split("/", 1)[1] in members:
                return True
    return not found_reference  # resources outside the patient compartment come along


def _elements_for(type_name: str, elements: tuple[str, ...]) -> frozenset[str]:
    names = set()
    for element in elements:
        prefix, _, rest = element.partition(".")
        if not rest:
            names.add(prefix)
        elif prefix == type_name:
            names.add(rest)
    return frozenset(names)


def _subset(resource: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    kept = {k: v for k, v in resource.items() if k in names or k in ("resourceType", "id", "meta")}
    meta = dict(kept.get("meta") or {})
    meta["tag"] = [*(meta.get("tag") or []), _SUBSETTED]
    kept["meta"] = meta
    return kept
