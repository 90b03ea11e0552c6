"""The audit table: the log's entries as a Delta table, for SQL over who asked what.

The JSONL log is the source of truth (it is written synchronously, one chained entry per call);
the table is a queryable copy brought up to date in batches by :meth:`AuditTable.sync`, which
appends the entries written since the last sync. Delta, rather than a DuckDB file, because a
DuckDB file can be open for writing by one process only, and the table must stay readable while
the server writes to it: any process can read it (``deltalake``, or DuckDB's
``read_parquet('<table>/*.parquet')``, since the table is append-only).

Columns: ``seq, ts, event, client, transport, tool, arguments, sql, decision, reason, level,
suppressed_cells, rows, duration_ms, details, prev, hash`` (``arguments`` and ``details`` hold
JSON text). As in the log, never a result value.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError, TableNotFoundError

from fhirlake.audit.errors import AuditError, AuditTamperedError

__all__ = ["SCHEMA", "AuditTable"]

SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("ts", pa.string()),
        ("event", pa.string()),
        ("client", pa.string()),
        ("transport", pa.string()),
        ("tool", pa.string()),
        ("arguments", pa.string()),
        ("sql", pa.string()),
        ("decision", pa.string()),
        ("reason", pa.string()),
        ("level", pa.string()),
        ("suppressed_cells", pa.int64()),
        ("rows", pa.int64()),
        ("duration_ms", pa.float64()),
        ("details", pa.string()),
        ("prev", pa.string()),
        ("hash", pa.string()),
    ]
)
_TEXT = ("ts", "event", "client", "transport", "tool", "sql", "decision", "reason", "level", "prev", "hash")
_JSON = ("arguments",)
_NUMBERS = ("seq", "suppressed_cells", "rows", "duration_ms")
_KNOWN = frozenset(_TEXT + _JSON + _NUMBERS)


def _row(entry: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {name: _text(entry.get(name)) for name in _TEXT}
    for name in _JSON:
        row[name] = None if entry.get(name) is None else orjson.dumps(entry[name], option=orjson.OPT_SORT_KEYS, default=str).decode()
    for name in _NUMBERS:
        value = entry.get(name)
        row[name] = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    extra = {k: v for k, v in entry.items() if k not in _KNOWN}
    row["details"] = orjson.dumps(extra, option=orjson.OPT_SORT_KEYS, default=str).decode() if extra else None
    return row


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class AuditTable:
    """A Delta table mirroring one audit log, appended in batches."""

    def __init__(self, folder: str | Path, log_path: str | Path) -> None:
        self.folder = Path(folder)
        self.log_path = Path(log_path)
        self._lock = threading.Lock()
        self._synced = -2  # unknown until the table is read once
        self._offset = 0

    def sync(self) -> int:
        """Append the log's entries the table does not hold yet; returns how many."""
        with self._lock:
            if self._synced == -2:
                self._synced = self.max_seq()
            entries, offset = self._pending()
            if entries:
                table = pa.Table.from_pylist([_row(e) for e in entries], schema=SCHEMA)
                try:
                    write_deltalake(str(self.folder), table, mode="append")
                except (DeltaError, OSError) as exc:
                    raise AuditError(f"{self.folder}: cannot append to the audit table: {exc}") from exc
                self._synced = int(entries[-1]["seq"])
            self._offset = offset
            return len(entries)

    def max_seq(self) -> int:
        """The last seq the table holds (-1 when it has none)."""
        seqs = self.read(columns=["seq"]).column("seq")
        return -1 if len(seqs) == 0 else int(pc.max(seqs).as_py())

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """The table's rows (empty with the table's schema when it does not exist yet)."""
        try:
            files = DeltaTable(str(self.folder)).file_uris()
        except TableNotFoundError:
            return SCHEMA.empty_table().select(columns or SCHEMA.names)
        # file by file, without pyarrow's thread pool: a small table, and that pool's teardown at
        # exit has aborted `fhirlake audit verify` after a successful check (seen in CI)
        tables = [pq.read_table(file, columns=columns, use_threads=False) for file in files]
        return pa.concat_tables(tables) if tables else SCHEMA.empty_table().select(columns or SCHEMA.names)

    def check(self) -> int:
        """Raise :class:`AuditTamperedError` if a row differs from the log's entry of that seq;
        returns the number of rows checked."""
        rows = self.read(columns=["seq", "hash"]).to_pylist()
        by_seq = {int(r["seq"]): str(r["hash"]) for r in rows}
        if len(by_seq) != len(rows):
            raise AuditTamperedError(str(self.folder), 0, "the audit table holds a seq twice")
        with self.log_path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                entry = orjson.loads(line)
                expected = by_seq.pop(int(entry["seq"]), None)
                if expected is not None and expected != entry["hash"]:
                    raise AuditTamperedError(str(self.log_path), number, "the audit table's row for this entry has another hash")
        if by_seq:
            raise AuditTamperedError(str(self.folder), 0, f"the audit table holds seq {min(by_seq)}, which the log does not")
        return len(rows)

    def _pending(self) -> tuple[list[dict[str, Any]], int]:
        entries: list[dict[str, Any]] = []
        offset = self._offset
        if not self.log_path.is_file():
            return entries, offset
        with self.log_path.open("rb") as handle:
            handle.seek(offset)
            for line in handle:
                if not line.endswith(b"\n"):
                    break  # an entry being written; the next sync takes it
                offset += len(line)
                entry = orjson.loads(line)
                if int(entry["seq"]) > self._synced:
                    entries.append(entry)
        return entries, offset
