"""A batch: what one export (or one dropped folder) brings, read once for every stage of the chain.

Export, pseudonymisation, the leak scan and the lake all take a :class:`Batch`. It is read from
any of the layouts a batch comes in, without copies or links:

* a bronze export of :mod:`fhirlake.bulk`: ``<export id>/`` with ``state.jsonl``, the server's
  ``manifest.json``, ``output/<Type>/NNNN.ndjson``, ``deleted/NNNN.ndjson`` (Bundles of DELETE
  entries) and ``error/`` (never read as data);
* a folder with a Bulk Data ``manifest.json`` naming its files (a pseudonymised batch, a
  server's export copied by hand);
* a plain folder of ``<Type>.ndjson`` files (``Patient.ndjson``, ``Observation.001.ndjson.gz``,
  ``Encounter-2.ndjson.zst``) and JSON Bundles (``*.json``), or one such file.

Reading checks what would otherwise lose data silently, each with a one-line reason naming the
file: a data file whose name is not a FHIR resource type, a file the manifest names that is not
there, and an empty file the manifest says holds resources.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from fhirlake.errors import FhirlakeError

__all__ = [
    "BLOCKED",
    "PRIVACY_REPORT",
    "Batch",
    "BatchError",
    "batch_of_export",
    "block",
    "blocked_reason",
    "count_lines",
    "count_problem",
    "pseudonymisation_problem",
    "read_batch",
    "resource_type_of",
]

PRIVACY_REPORT = "privacy-report.json"  # written by fhirlake.pseudonymize into its output
BLOCKED = ".blocked"  # in a pseudonymised batch a blocking check failed on
MANIFEST = "manifest.json"
DROP_MARKER = "_drop.json"  # a bronze folder imported from a drop folder
NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz", ".ndjson.zst", ".jsonl", ".jsonl.gz", ".jsonl.zst")
# files of a batch folder that are never resources
_NOT_DATA = frozenset({MANIFEST, PRIVACY_REPORT, DROP_MARKER, "_READY", "truth.json", "quarantine.jsonl",
                       "state.jsonl", BLOCKED, "README", "README.md", "README.txt"})
_TYPE_PREFIX = re.compile(r"^([A-Za-z]+)")


class BatchError(FhirlakeError):
    """A batch cannot be read as it is: names the file and the reason."""


@dataclass(frozen=True)
class Batch:
    """One export's worth of FHIR data, and what its manifest announced.

    ``files`` maps each resource type to its NDJSON files; ``bundles`` are JSON files holding a
    Bundle or a single resource; ``deleted`` are NDJSON files of Bundles whose DELETE entries
    name removed resources. ``manifest_counts`` are the resources per type the manifest
    announced, where it gave counts; ``lines`` those measured when the files were saved (bronze
    exports), where known.
    """

    path: Path
    export_id: str
    files: Mapping[str, tuple[Path, ...]]
    source: str | None = None
    bundles: tuple[Path, ...] = ()
    deleted: tuple[Path, ...] = ()
    transaction_time: str | None = None
    manifest_counts: Mapping[str, int] = field(default_factory=dict)
    lines: Mapping[str, int] = field(default_factory=dict)

    @property
    def pseudonymised(self) -> bool:
        """Whether the batch claims to be ``fhirlake pseudonymize``'s output (it holds a privacy
        report); :func:`pseudonymisation_problem` checks the claim byte for byte."""
        return self.path.is_dir() and (self.path / PRIVACY_REPORT).is_file()

    @property
    def types(self) -> list[str]:
        """The resource types the batch has files of, sorted."""
        return sorted(self.files)

    @property
    def resources(self) -> int:
        """Resources measured in the batch's files (bronze exports), else 0."""
        return sum(self.lines.values())

    @property
    def is_empty(self) -> bool:
        """Nothing to do: no resources and no deletions (an incremental export without changes)."""
        return not (self.files or self.bundles or self.deleted)

    def label(self, path: Path) -> str:
        """How ``path`` is named in messages: relative to the batch (``output/Patient/0001.ndjson``)."""
        try:
            return str(path.relative_to(self.path)) if self.path.is_dir() else path.name
        except ValueError:
            return path.name


def resource_type_of(path: Path) -> str:
    """The resource type a file's name declares (``Observation.002.ndjson.gz`` → Observation).

    Raises :class:`BatchError` when the name does not start with a FHIR R4 resource type, with
    the nearest type when one is close (``Observations.ndjson``: did you mean Observation?).
    """
    from fhirlake.sof import registry

    match = _TYPE_PREFIX.match(path.name)
    word = match.group(1) if match else ""
    if registry.is_resource(word):
        return word
    close = difflib.get_close_matches(word, registry.resource_types(), n=1, cutoff=0.75) if word else []
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise BatchError(f"{path}: {word or path.name!r} is not a FHIR R4 resource type{hint}; name data files "
                     "<Type>.ndjson, or list them in a manifest.json")


def read_batch(path: str | Path, *, source: str | None = None, export_id: str | None = None) -> Batch:
    """The batch at ``path``: a bronze export, a folder with a manifest, a plain folder or one file."""
    path = Path(path)
    if path.is_file():
        batch = _single_file(path)
    elif not path.is_dir():
        raise BatchError(f"{path}: no such file or folder")
    elif (path / "state.jsonl").is_file():
        batch = _bronze_export(path)
    elif (path / DROP_MARKER).is_file():
        batch = _dropped(path)
    elif (path / MANIFEST).is_file():
        batch = _with_manifest(path)
    else:
        batch = _by_name(path)
    _check_not_empty(batch)
    return replace(batch, source=source, export_id=export_id or batch.export_id)


def batch_of_export(state: Any, *, source: str | None = None) -> Batch:
    """The batch of a completed bronze export, from its journal (a :class:`fhirlake.bulk.ExportState`)."""
    files: dict[str, list[Path]] = {}
    lines: dict[str, int] = {}
    deleted = []
    for record in sorted(state.files.values(), key=lambda r: r.name):
        if record.kind != "error" and not (state.path / record.name).is_file():
            raise BatchError(f"{state.path / record.name}: missing, but the export's journal saved it "
                             f"({record.lines} {record.type} resources)")
        if record.kind == "output":
            files.setdefault(record.type, []).append(state.path / record.name)
            lines[record.type] = lines.get(record.type, 0) + record.lines
        elif record.kind == "deleted":
            deleted.append(state.path / record.name)
    manifest = _load_manifest(state.path / MANIFEST)
    return Batch(state.path, state.export_id, {t: tuple(p) for t, p in sorted(files.items())}, source,
                 deleted=tuple(deleted), transaction_time=state.transaction_time,
                 manifest_counts=_counts(manifest), lines=lines)


# ------------------------------------------------------------------------------- layouts


def _single_file(path: Path) -> Batch:
    if path.name.endswith(".json"):
        if _bundle_file(path) is None:
            raise BatchError(f"{path}: not a FHIR Bundle or resource (no resourceType)")
        return Batch(path, path.stem, {}, bundles=(path,))
    if not path.name.endswith(NDJSON_SUFFIXES):
        raise BatchError(f"{path}: expected an .ndjson (.gz, .zst) file or a .json Bundle")
    return Batch(path, path.name.split(".")[0], {resource_type_of(path): (path,)})


def _bronze_export(path: Path) -> Batch:
    from fhirlake.bulk import read_export

    state = read_export(path)
    if state.status != "completed":
        raise BatchError(f"{path}: the export is {state.status}, not completed (resume it with fhirlake export)")
    return batch_of_export(state)


def _dropped(path: Path) -> Batch:
    info = json.loads((path / DROP_MARKER).read_text(encoding="utf-8"))
    files = {t: tuple(path / name for name in names) for t, names in info["files"].items()}
    return Batch(path, path.name, files, transaction_time=info.get("transactionTime"),
                 manifest_counts=info.get("manifest_counts", {}), lines=info.get("lines", {}))


def _with_manifest(path: Path) -> Batch:
    manifest = _load_manifest(path / MANIFEST)
    files: dict[str, list[Path]] = {}
    for pointer, entry in _entries(manifest, "output", path):
        files.setdefault(entry["type"], []).append(_listed_file(path, entry, pointer))
    deleted = tuple(_listed_file(path, entry, pointer) for pointer, entry in _entries(manifest, "deleted", path))
    listed = {p for paths in files.values() for p in paths} | set(deleted)
    bundles: list[Path] = []
    for file in sorted(path.iterdir()):
        if file in listed or file.name in _NOT_DATA or file.name.startswith(".") or not file.is_file():
            continue
        if file.name.endswith(".json"):
            if (bundle := _bundle_file(file)) is not None:
                bundles.append(bundle)
        else:
            raise BatchError(f"{file}: not listed in {path / MANIFEST} (a file the manifest does not name "
                             "would be left out)")
    time = manifest.get("transactionTime")
    return Batch(path, path.name, {t: tuple(sorted(p)) for t, p in sorted(files.items())}, bundles=tuple(bundles),
                 deleted=deleted, transaction_time=time if isinstance(time, str) else None,
                 manifest_counts=_counts(manifest))


def _by_name(path: Path) -> Batch:
    """Every file must be a data file by its name, or one of the known companions (allow-list):
    a file skipped because of its name would be data lost without a word."""
    files: dict[str, list[Path]] = {}
    bundles = []
    for file in sorted(path.iterdir()):
        if file.name in _NOT_DATA or file.name.startswith("."):
            continue
        if file.is_dir():
            if any(p.name.endswith(NDJSON_SUFFIXES) for p in file.rglob("*")):
                raise BatchError(f"{file}: a folder of NDJSON files inside a batch folder; a batch is one flat "
                                 "folder (or a bronze export with its state.jsonl)")
            continue
        if file.name.endswith(NDJSON_SUFFIXES):
            files.setdefault(resource_type_of(file), []).append(file)
        elif file.name.endswith(".json"):
            if (bundle := _bundle_file(file)) is not None:
                bundles.append(bundle)
        else:
            raise BatchError(f"{file}: not a data file fhirlake reads (<Type>.ndjson, .ndjson.gz, .ndjson.zst, "
                             "or a .json Bundle)")
    return Batch(path, path.name, {t: tuple(p) for t, p in sorted(files.items())}, bundles=tuple(bundles))


def _bundle_file(path: Path) -> Path | None:
    """``path`` if it holds one FHIR Bundle or resource; None for a JSON file that is not FHIR
    (a tool's marker or metadata); an error for FHIR that is not one JSON document (NDJSON
    under a .json name, or a cut Bundle), which would otherwise be lost."""
    data = path.read_bytes()
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        if b'"resourceType"' not in data:
            return None
        hint = " (one resource per line: name it <Type>.ndjson)" if len(data.splitlines()) > 1 else ""
        raise BatchError(f"{path}: FHIR JSON that is not one JSON document{hint}") from None
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        return None
    return path


# ------------------------------------------------------------------------------- manifest


def _load_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BatchError(f"{path}: not a valid Bulk Data manifest ({exc})") from None
    if not isinstance(data, dict):
        raise BatchError(f"{path}: not a valid Bulk Data manifest (not a JSON object)")
    return data


def _entries(manifest: Mapping[str, Any], key: str, folder: Path) -> list[tuple[str, dict[str, Any]]]:
    listed = manifest.get(key) or []
    if not isinstance(listed, list):
        raise BatchError(f"{folder / MANIFEST}#/{key}: not an array")
    found = []
    for index, entry in enumerate(listed):
        pointer = f"{folder / MANIFEST}#/{key}/{index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str) or not entry.get("url"):
            raise BatchError(f"{pointer}: an entry needs a type and a url")
        found.append((pointer, entry))
    return found


def _listed_file(folder: Path, entry: Mapping[str, Any], pointer: str) -> Path:
    """The local file a manifest entry names: its url's last part (or a relative path)."""
    url = str(entry["url"])
    candidate = folder / url if "://" not in url else folder / url.rsplit("/", 1)[-1]
    if not candidate.is_file():
        candidate = folder / Path(url).name
    if not candidate.is_file():
        raise BatchError(f"{pointer}: the file {url!r} the manifest names is not in the folder")
    return candidate


def _counts(manifest: Mapping[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in manifest.get("output") or []:
        if isinstance(entry, dict) and isinstance(entry.get("count"), int) and isinstance(entry.get("type"), str):
            counts[entry["type"]] = counts.get(entry["type"], 0) + entry["count"]
    return counts


def _check_not_empty(batch: Batch) -> None:
    """An empty file of a type the manifest announces resources of is lost data, not an empty type."""
    for resource_type, announced in batch.manifest_counts.items():
        paths = batch.files.get(resource_type, ())
        if announced > 0 and paths and all(_is_empty(p) for p in paths):
            raise BatchError(f"{paths[0]}: empty, but the manifest announces {announced} {resource_type} "
                             "resources (a failed copy or download?)")


def _is_empty(path: Path) -> bool:
    if path.stat().st_size == 0:
        return True
    if path.name.endswith((".gz", ".zst")):
        from fhirlake.sof.inputs import open_text

        with open_text(path) as handle:
            return not any(line.strip() for line in handle)
    return False


# ------------------------------------------------------------------------- pseudonymisation


def block(folder: Path, reason: str) -> None:
    """Keep a pseudonymised batch out of the lake (a check found it unfit); ``reason`` holds no data."""
    (folder / BLOCKED).write_text(json.dumps({"reason": reason}) + "\n", encoding="utf-8")


def blocked_reason(folder: Path) -> str | None:
    """Why a batch was kept out of the lake, if it was."""
    marker = folder / BLOCKED
    return str(json.loads(marker.read_text(encoding="utf-8"))["reason"]) if marker.is_file() else None


def pseudonymisation_problem(batch: Batch) -> str | None:
    """Why ``batch`` is not, byte for byte, what ``fhirlake pseudonymize`` wrote; None if it is.

    The privacy report lists the SHA-256 of every file the run wrote: a file added, removed,
    swapped, cut or edited since, or a report copied from another run, does not match. A batch
    a blocking check failed on (:func:`block`) is refused too.
    """
    folder = batch.path if batch.path.is_dir() else batch.path.parent
    report = folder / PRIVACY_REPORT
    if not report.is_file():
        return f"{folder}: not pseudonymised (no {PRIVACY_REPORT})"
    reason = blocked_reason(folder)
    if reason is not None:
        return f"{folder}: kept out of the lake by a failed check: {reason}"
    try:
        written = json.loads(report.read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        written = None
    if not isinstance(written, dict):
        return f"{report}: lists no output files (an older fhirlake, or not its report): pseudonymise again"
    present = [*(p for paths in batch.files.values() for p in paths), *batch.deleted, *batch.bundles]
    names = {path: _uncompressed_name(path) for path in present}
    for path, name in names.items():
        expected = written.get(name)
        if expected is None:
            return f"{path}: not written by the pseudonymisation run of {report.name}"
        try:
            actual = _sha256(path)
        except Exception as exc:  # a truncated .gz (EOFError) or .zst (ZstdError), an unreadable file
            return f"{path}: cannot be read to the end ({type(exc).__name__})"
        if actual != expected:
            return f"{path}: changed since it was pseudonymised (its SHA-256 is not the one in {report.name})"
    missing = sorted(set(written) - set(names.values()))
    if missing:
        return f"{folder / missing[0]}: written by the pseudonymisation run but missing from the batch"
    return None


def _uncompressed_name(path: Path) -> str:
    """``Patient.ndjson.gz`` → ``Patient.ndjson``: a compressed copy holds the same bytes."""
    return path.name.removesuffix(".gz").removesuffix(".zst")


def _sha256(path: Path) -> str:
    """The SHA-256 of what the file holds (decompressed)."""
    from fhirlake.sof.inputs import open_text

    digest = hashlib.sha256()
    with open_text(path) as handle:
        for block_ in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block_)
    return digest.hexdigest()


def count_problem(batch: Batch) -> str | None:
    """Where the batch's files hold another number of resources than its manifest announces.

    Counts the lines of the files of each type the manifest gives a count for (the measured
    counts of a bronze export when it has them, without reading the files again).
    """
    for resource_type, announced in sorted(batch.manifest_counts.items()):
        held = batch.lines.get(resource_type)
        if held is None:
            held = sum(count_lines(path) for path in batch.files.get(resource_type, ()))
        if held != announced:
            where = batch.path / MANIFEST if (batch.path / MANIFEST).is_file() else batch.path
            return (f"{where}: announces {announced} {resource_type} resources, the files hold {held}"
                    f" ({', '.join(batch.label(p) for p in batch.files.get(resource_type, ())) or 'no file'})")
    return None


def count_lines(path: Path) -> int:
    """The non-blank lines of an NDJSON file (plain, gzip or zstd): its resources."""
    from fhirlake.sof.inputs import open_text

    try:
        with open_text(path) as handle:
            return sum(1 for line in handle if line.strip())
    except (OSError, EOFError) as exc:
        raise BatchError(f"{path}: cannot be read to the end ({exc})") from None
