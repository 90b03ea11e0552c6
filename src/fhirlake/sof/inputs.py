"""Where a view's resources come from: NDJSON files (plain, .gz, .zst) or rows of resource JSON.

For files, :func:`find_files` picks a view's files in a Bulk Data export folder, and
:func:`scan_lines` checks every line when the fast path fails or when invalid lines must be
quarantined, so errors always name the file and line.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import orjson
import zstandard

from fhirlake.errors import InputDataError

__all__ = ["LineProblem", "find_files", "open_text", "scan_lines"]

_SUFFIXES = (".ndjson", ".ndjson.gz", ".ndjson.zst", ".jsonl", ".jsonl.gz", ".jsonl.zst")


def _is_ndjson(path: Path) -> bool:
    return path.name.endswith(_SUFFIXES)


def find_files(source: str | Path | Iterable[str | Path], resource_type: str) -> list[Path]:
    """The NDJSON files to read for ``resource_type``.

    ``source`` is a file, a list of files, or a folder. In a folder, a Bulk Data
    ``manifest.json`` says which files hold which type; without one, files named after the
    type are used (``Patient.ndjson``, ``Patient.000.ndjson.gz``, ``Patient-2.ndjson``...).
    Explicitly named files are all read, whatever their name.
    """
    if isinstance(source, str | Path):
        path = Path(source)
        if path.is_dir():
            return _files_in_folder(path, resource_type)
        if not path.exists():
            raise InputDataError(str(path), 0, "no such file or folder")
        return [path]
    files = [Path(p) for p in source]
    for path in files:
        if not path.is_file():
            raise InputDataError(str(path), 0, "no such file")
    return files


def _files_in_folder(folder: Path, resource_type: str) -> list[Path]:
    manifest = folder / "manifest.json"
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            outputs = data.get("output", [])
        except (json.JSONDecodeError, AttributeError) as exc:
            raise InputDataError(str(manifest), 1, f"not a valid Bulk Data manifest: {exc}") from exc
        files = []
        for entry in outputs:
            if isinstance(entry, dict) and entry.get("type") == resource_type:
                name = Path(str(entry.get("url", ""))).name
                if (folder / name).is_file():
                    files.append(folder / name)
        if files:
            return sorted(files)
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and _is_ndjson(p)
        and (p.name.split(".")[0] == resource_type or p.name.startswith(f"{resource_type}-"))
    )


def open_text(path: Path) -> IO[bytes]:
    """Open an NDJSON file for reading bytes, decompressing .gz and .zst transparently."""
    if path.name.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    if path.name.endswith(".zst"):
        raw = path.open("rb")
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
    return path.open("rb")


@dataclass(frozen=True, slots=True)
class LineProblem:
    """A line that cannot be used: where it is, why, and its text (kept for quarantine)."""

    path: str
    line: int
    reason: str
    text: bytes

    def as_error(self) -> InputDataError:
        return InputDataError(self.path, self.line, self.reason)


def line_problem(raw: bytes, resource_type: str) -> str | None:
    """Why a non-blank line is not a usable ``resource_type`` resource, or None if it is."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return f"not valid JSON ({str(exc).split(': line ')[0]})"
    if not isinstance(value, dict):
        return f"not a JSON object but a {type(value).__name__}"
    found = value.get("resourceType")
    if found != resource_type:
        return f"resourceType is {found!r}, expected {resource_type!r}"
    return None


def scan_lines(files: Iterable[Path], resource_type: str) -> Iterator[tuple[Path, int, bytes, str | None]]:
    """Every non-blank line of ``files``: (file, 1-based line number, bytes, problem or None)."""
    for path in files:
        number = 0
        with open_text(path) as handle:
            try:
                for number, raw in enumerate(handle, start=1):
                    line = raw.strip()
                    if not line:
                        continue
                    yield path, number, line, line_problem(line, resource_type)
            except (EOFError, OSError, zstandard.ZstdError) as exc:
                # a truncated .gz raises EOFError, which click would take for Ctrl-D ("aborted")
                raise InputDataError(str(path), number + 1, f"cannot be read past this line ({exc})") from None
