"""The folder of NDJSON files the embedded server exports, read without loading files whole.

Unfiltered exports are served as byte ranges of the original files (split every
``lines_per_file`` lines), so even large folders cost one indexing pass and no copies.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fhirlake.errors import InputDataError

__all__ = ["DataFolder", "Deletion", "Slice", "SourceFile", "index_file", "parse_instant"]

_TYPE_FILE = re.compile(r"^(?P<type>[A-Z][A-Za-z]{1,63})(\.[A-Za-z0-9_\-]+)?\.ndjson(?P<gz>\.gz)?$")
DELETIONS_FILE = "deleted.ndjson"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Slice:
    """Bytes ``[start, end)`` of ``path``, holding ``count`` lines."""

    path: Path
    start: int
    end: int
    count: int


@dataclass(frozen=True)
class SourceFile:
    """A plain NDJSON file of one type; ``mtime`` is the original file's (gzipped or not)."""

    type: str
    path: Path
    mtime: float


@dataclass(frozen=True)
class Deletion:
    """A resource deleted at ``when`` (epoch seconds)."""

    type: str
    id: str
    when: float


def parse_instant(text: str) -> float:
    """Epoch seconds of a FHIR instant or dateTime with a time zone; ValueError otherwise."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return value.timestamp()


def index_file(path: Path, lines_per_part: int | None) -> list[Slice]:
    """Cut a file into slices of at most ``lines_per_part`` lines (one slice when None).

    A last line without a newline counts as a line.
    """
    slices: list[Slice] = []
    start = offset = count = 0
    ends_with_newline = True
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            pos = 0
            while True:
                in_chunk = chunk.count(b"\n", pos)
                need = None if lines_per_part is None else lines_per_part - count
                if need is None or in_chunk < need:
                    count += in_chunk
                    break
                for _ in range(need):
                    pos = chunk.index(b"\n", pos) + 1
                slices.append(Slice(path, start, offset + pos, lines_per_part or 0))
                start, count = offset + pos, 0
            offset += len(chunk)
            ends_with_newline = chunk.endswith(b"\n")
    if offset > start:
        slices.append(Slice(path, start, offset, count + (0 if ends_with_newline else 1)))
    return slices


class DataFolder:
    """The NDJSON files of a folder by resource type, plus its deletions file.

    The folder is listed again on every call, so files added between exports are picked up.
    Gzipped files are decompressed once into ``work_dir``; indexes are cached by file identity.
    """

    def __init__(self, root: Path, work_dir: Path) -> None:
        self.root = root
        self.work_dir = work_dir
        self._lock = threading.Lock()
        self._index_cache: dict[tuple[str, int, int, int | None], list[Slice]] = {}

    def files(self) -> dict[str, list[SourceFile]]:
        """The NDJSON files by type (gzipped ones decompressed), in name order."""
        by_type: dict[str, list[SourceFile]] = {}
        for path in sorted(self.root.iterdir()):
            match = _TYPE_FILE.match(path.name)
            if match is None or not path.is_file():
                continue
            plain = self._plain(path) if match["gz"] else path
            source = SourceFile(match["type"], plain, path.stat().st_mtime)
            by_type.setdefault(match["type"], []).append(source)
        return by_type

    def slices(self, path: Path, lines_per_part: int | None) -> list[Slice]:
        """The cached index of ``path``."""
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size, lines_per_part)
        with self._lock:
            cached = self._index_cache.get(key)
        if cached is None:
            cached = index_file(path, lines_per_part)
            with self._lock:
                self._index_cache[key] = cached
        return cached

    def deletions(self) -> list[Deletion]:
        """The entries of ``deleted.ndjson`` (a missing ``deleted`` time means the file's mtime)."""
        path = self.root / DELETIONS_FILE
        if not path.is_file():
            return []
        default_when = path.stat().st_mtime
        found = []
        for number, line in _lines(path):
            try:
                entry = json.loads(line)
                found.append(
                    Deletion(
                        str(entry["type"]),
                        str(entry["id"]),
                        parse_instant(entry["deleted"]) if entry.get("deleted") else default_when,
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise InputDataError(str(path), number, f"not a deletion entry ({exc})") from exc
        return found

    def _plain(self, gz_path: Path) -> Path:
        """A decompressed copy of a ``.ndjson.gz`` file, made once per file version."""
        stat = gz_path.stat()
        tag = hashlib.sha256(f"{gz_path}:{stat.st_mtime_ns}:{stat.st_size}".encode()).hexdigest()[
            :12
        ]
        target = self.work_dir / "gunzipped" / f"{gz_path.name[: -len('.gz')]}.{tag}"
        with self._lock:
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + ".tmp")
                with gzip.open(gz_path, "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
                tmp.replace(target)
        return target


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                yield number, line
