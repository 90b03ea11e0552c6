"""The audit log: an append-only JSONL file whose entries form a hash chain.

Appends are safe under concurrency: a thread lock inside the process and an exclusive
``flock`` across processes, each entry written with one ``write`` on an ``O_APPEND``
descriptor (and ``fsync``-ed unless told otherwise). The first entry is a genesis entry naming
the log (``log_id``); a small ``<log>.head`` file, replaced atomically after each append,
anchors the last entry, so cutting entries from the end is detected too. Entries hold who
called what and how it was decided, never the result values.

>>> import tempfile, pathlib
>>> log = AuditLog(pathlib.Path(tempfile.mkdtemp()) / "audit.jsonl", fsync=False)
>>> log.append({"event": "call", "tool": "list_views"})["seq"]
1
>>> verify_log(log.path).entries
2
"""

from __future__ import annotations

import fcntl
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from fhirlake.audit.chain import GENESIS_PREV, audit_key, check_entry, seal
from fhirlake.audit.errors import AuditError, AuditKeyError, AuditTamperedError

__all__ = ["AuditLog", "LogCheck", "head_path", "read_entries", "verify_log"]

_RESERVED = frozenset({"seq", "ts", "prev", "hash"})
_CHUNK = 65536


def head_path(path: Path) -> Path:
    """Where the head anchor of a log lives: ``<log>.head``."""
    return path.with_name(path.name + ".head")


def _dumps(entry: Mapping[str, Any]) -> bytes:
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class AuditLog:
    """Appends chained entries to one JSONL file (created with its genesis entry if absent)."""

    def __init__(self, path: str | Path, *, key: bytes | None = None, fsync: bool = True) -> None:
        self.path = Path(path)
        self.key = key if key is not None else audit_key()
        self.fsync = fsync
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._size = -1
        self._seq = -1
        self._hash = GENESIS_PREV
        self._log_id = ""

    def append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Chain ``record`` to the log and return the written entry (with seq, ts, prev, hash)."""
        body = {name: value for name, value in record.items() if name not in _RESERVED}
        with self._lock:
            fd = self._open()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                self._catch_up(fd)
                return self._write(fd, {**body, "seq": self._seq + 1, "ts": _now()})
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the file (appending again reopens it)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                self._size = -1

    def _open(self) -> int:
        if self._fd is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            except OSError as exc:
                raise AuditError(f"{self.path}: cannot open the audit log: {exc.strerror}") from exc
        return self._fd

    def _catch_up(self, fd: int) -> None:
        """Re-read the chain's tail when another process appended since our last write."""
        size = os.fstat(fd).st_size
        if size == self._size:
            return
        if size == 0:
            self._seq, self._hash = -1, GENESIS_PREV
            self._log_id = uuid.uuid4().hex
            self._write(fd, {"event": "genesis", "seq": 0, "ts": _now(), "log_id": self._log_id, "keyed": self.key is not None})
            return
        first = orjson.loads(_first_line(fd))
        if bool(first.get("keyed")) != (self.key is not None):
            raise AuditKeyError(f"{self.path}: the log was started {'with' if first.get('keyed') else 'without'} FHIRLAKE_AUDIT_KEY; set it the same way")
        last = _last_line(fd, size)
        try:
            entry = orjson.loads(last)
        except orjson.JSONDecodeError as exc:
            raise AuditError(f"{self.path}: the last entry is not complete JSON; run `fhirlake audit verify`") from exc
        self._seq, self._hash, self._size = int(entry["seq"]), str(entry["hash"]), size
        self._log_id = str(first.get("log_id", ""))

    def _write(self, fd: int, entry: dict[str, Any]) -> dict[str, Any]:
        sealed = seal(entry, self._hash, self.key)
        line = _dumps(sealed) + b"\n"
        try:
            os.write(fd, line)
            if self.fsync:
                os.fsync(fd)
            self._size = os.fstat(fd).st_size
            self._seq, self._hash = int(sealed["seq"]), str(sealed["hash"])
            self._write_head()
        except OSError as exc:
            raise AuditError(f"{self.path}: cannot append to the audit log: {exc.strerror}") from exc
        return sealed

    def _write_head(self) -> None:
        head = head_path(self.path)
        temporary = head.with_name(head.name + ".tmp")
        temporary.write_bytes(_dumps({"log_id": self._log_id, "seq": self._seq, "hash": self._hash}))
        os.replace(temporary, head)


def _first_line(fd: int) -> bytes:
    data = b""
    offset = 0
    while b"\n" not in data:
        chunk = os.pread(fd, _CHUNK, offset)
        if not chunk:
            break
        data += chunk
        offset += len(chunk)
    return data.split(b"\n", 1)[0]


def _last_line(fd: int, size: int) -> bytes:
    """The last line of the file (without its newline), read backwards in chunks."""
    end = size
    data = b""
    while end > 0:
        start = max(0, end - _CHUNK)
        data = os.pread(fd, end - start, start) + data
        end = start
        body = data[:-1] if data.endswith(b"\n") else data
        if b"\n" in body:
            return body.rsplit(b"\n", 1)[1]
    return data.rstrip(b"\n")


@dataclass(frozen=True, slots=True)
class LogCheck:
    """The outcome of a successful :func:`verify_log`: how many entries, and the last hash."""

    entries: int
    last_hash: str
    log_id: str
    head_checked: bool


def read_entries(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed entry or None when the line is not JSON) for each line of a log."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                yield number, orjson.loads(line)
            except orjson.JSONDecodeError:
                yield number, None


def verify_log(path: str | Path, *, key: bytes | None = None, require_head: bool = True) -> LogCheck:
    """Walk the chain; raise :class:`AuditTamperedError` at the first broken link.

    Detected: an edited entry (its hash), a removed, inserted or moved entry (seq and prev), a
    cut tail (the head anchor records a later entry), and a log swapped for another (log id).
    """
    path = Path(path)
    key = key if key is not None else audit_key()
    if not path.is_file():
        raise AuditError(f"{path}: no such audit log")
    prev, seq, log_id, hashes = GENESIS_PREV, -1, "", {}
    for number, entry in read_entries(path):
        if entry is None:
            raise AuditTamperedError(str(path), number, "not valid JSON (edited or cut mid-entry)")
        if number == 1:
            if entry.get("event") != "genesis":
                raise AuditTamperedError(str(path), 1, "the first entry is not the genesis entry")
            if bool(entry.get("keyed")) and key is None:
                raise AuditKeyError(f"{path}: the log is keyed; set FHIRLAKE_AUDIT_KEY to verify it")
            log_id = str(entry.get("log_id", ""))
        reason = check_entry(entry, prev, seq + 1, key)
        if reason is not None:
            raise AuditTamperedError(str(path), number, reason)
        prev, seq = entry["hash"], seq + 1
        hashes[seq] = prev
        if len(hashes) > 2:
            hashes.pop(seq - 2)
    if seq < 0:
        raise AuditTamperedError(str(path), 1, "the log is empty (the genesis entry is gone)")
    head_checked = _check_head(path, seq, log_id, hashes, require_head)
    return LogCheck(entries=seq + 1, last_hash=prev, log_id=log_id, head_checked=head_checked)


def _check_head(path: Path, seq: int, log_id: str, recent: Mapping[int, str], required: bool) -> bool:
    head_file = head_path(path)
    line = seq + 2  # the line a missing entry would be on
    if not head_file.is_file():
        if required:
            raise AuditTamperedError(str(path), line, f"the head anchor {head_file.name} is missing")
        return False
    try:
        head = orjson.loads(head_file.read_bytes())
        head_seq, head_hash, head_id = int(head["seq"]), str(head["hash"]), str(head["log_id"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise AuditTamperedError(str(path), line, f"the head anchor {head_file.name} is unreadable") from exc
    if head_id != log_id:
        raise AuditTamperedError(str(path), 1, "the head anchor belongs to another log (log_id differs)")
    if head_seq > seq:
        raise AuditTamperedError(str(path), line, f"the log ends at seq {seq} but its head records seq {head_seq}: entries were cut from the end")
    # A crash between an append and the head update leaves the head one entry behind.
    if seq - head_seq > 1 or recent.get(head_seq) != head_hash:
        raise AuditTamperedError(str(path), head_seq + 1, "the entry the head anchor records was changed")
    return True
