"""Writing one download to disk: a temporary ``.part`` file, then an atomic rename.

A file under its final name is therefore always complete and verified: its line count matched
the manifest's ``count`` (when given) and it was flushed to disk before the rename. A crash
(even ``kill -9``) leaves at most a ``.part`` file, which the next run deletes and fetches again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

from fhirlake.bulk._exceptions import BulkError, CountMismatchError
from fhirlake.bulk._models import DownloadResult
from fhirlake.bulk._protocol import LineCounter

PART_SUFFIX = ".part"
_BUFFER = 1 << 20


class DownloadSink:
    """Receives the decoded body of one download, chunk by chunk, never holding it in memory."""

    def __init__(self, dest: Path, *, url: str) -> None:
        self.dest = dest
        self.url = url
        self.part = dest.with_name(dest.name + PART_SUFFIX)
        self.bytes = 0
        self._counter = LineCounter()
        self._sha = hashlib.sha256()
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._fh: BinaryIO | None = open(self.part, "wb", buffering=_BUFFER)  # noqa: SIM115
        except OSError as exc:
            raise BulkError(f"{self.part}: cannot be written ({exc.strerror})") from exc

    def write(self, chunk: bytes) -> None:
        """Append a chunk of the decoded body."""
        assert self._fh is not None, "write after commit or discard"
        try:
            self._fh.write(chunk)
        except OSError as exc:
            raise BulkError(f"{self.part}: cannot be written ({exc.strerror})") from exc
        self._counter.feed(chunk)
        self._sha.update(chunk)
        self.bytes += len(chunk)

    def write_many(self, chunks: list[bytes]) -> None:
        """Append several chunks at once (one write call; used from a worker thread)."""
        self.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    @property
    def lines(self) -> int:
        """Lines (resources) received so far."""
        return self._counter.lines

    def commit(self, *, expected_count: int | None) -> DownloadResult:
        """Check the count, flush to disk and rename to the final name; raise CountMismatchError."""
        assert self._fh is not None, "commit after commit or discard"
        lines = self._counter.lines
        if expected_count is not None and lines != expected_count:
            self.discard()
            raise CountMismatchError(self.url, expected=expected_count, actual=lines)
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
            os.replace(self.part, self.dest)
            _fsync_dir(self.dest.parent)
        except OSError as exc:
            self.discard()
            raise BulkError(f"{self.dest}: cannot be saved ({exc.strerror})") from exc
        return DownloadResult(self.dest, lines, self.bytes, self._sha.hexdigest())

    def discard(self) -> None:
        """Drop the partial file (after a failed attempt); safe to call twice."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.part.unlink(missing_ok=True)


def inspect_file(path: Path) -> DownloadResult:
    """Count lines, bytes and the SHA-256 of a file already on disk (used when resuming)."""
    counter, sha, size = LineCounter(), hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_BUFFER):
            counter.feed(chunk)
            sha.update(chunk)
            size += len(chunk)
    return DownloadResult(path, counter.lines, size, sha.hexdigest())


def _fsync_dir(path: Path) -> None:
    """Make a rename durable; a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
