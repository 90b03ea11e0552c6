"""The audit trail a server writes to: the chained log, mirrored to the audit table in batches.

:meth:`AuditTrail.record` appends synchronously (the call is not answered before its entry is
on disk); a background thread syncs the table at most every ``flush_seconds``, and
:meth:`AuditTrail.close` syncs what is left. Default places, under the lake:
``<lake>/_fhirlake/audit.jsonl`` (+ ``.head``) and the Delta table ``<lake>/_fhirlake/audit/``;
``$FHIRLAKE_AUDIT_LOG`` moves the log.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhirlake.audit.errors import AuditError
from fhirlake.audit.log import AuditLog
from fhirlake.audit.table import AuditTable

if TYPE_CHECKING:
    from fhirlake.mcp_server.context import CallRecord

__all__ = ["LOG_ENV", "AuditTrail", "audit_trusted_sql", "call_entry", "default_log_path", "default_table_path", "lake_root"]

LOG_ENV = "FHIRLAKE_AUDIT_LOG"
_log = logging.getLogger(__name__)


def lake_root(lake: str | Path | None = None) -> Path:
    """The lake folder: ``lake``, else ``$FHIRLAKE_LAKE``, else ``./.fhirlake``."""
    return Path(lake if lake is not None else os.environ.get("FHIRLAKE_LAKE") or ".fhirlake")


def default_log_path(lake: str | Path | None = None) -> Path:
    """``$FHIRLAKE_AUDIT_LOG``, else ``<lake>/_fhirlake/audit.jsonl``."""
    configured = os.environ.get(LOG_ENV)
    return Path(configured) if configured else lake_root(lake) / "_fhirlake" / "audit.jsonl"


def default_table_path(lake: str | Path | None = None) -> Path:
    """``<lake>/_fhirlake/audit`` (a Delta table)."""
    return lake_root(lake) / "_fhirlake" / "audit"


def call_entry(record: CallRecord, transport: str, *, policy: str | None) -> dict[str, Any]:
    """The audit entry of one MCP tool call: who, what, the SQL, the decision, the privacy
    budget spent; never a value. ``policy``: the access policy's hash prefix (None without one)."""
    return {
        "event": "call",
        "transport": transport,
        "client": record.client,
        "tool": record.tool,
        "arguments": dict(record.arguments),
        "sql": list(record.sql),
        "decision": record.decision,
        "reason": record.reason,
        "suppressed_cells": record.suppressed,
        "rows": record.rows,
        "epsilon": record.epsilon,
        "duration_ms": round(record.duration_ms, 3),
        "policy": policy,
    }


def audit_trusted_sql(lake_path: str | Path, query: str, *, rows: int | None, error: str | None) -> None:
    """One audit entry for an exact query of a trusted user (``fhirlake sql``): who (the OS
    user), the SQL, the rows returned or the error kind; never a value. Appended to the lake's
    audit log (``$FHIRLAKE_AUDIT_LOG``, else ``<lake>/_fhirlake/audit.jsonl``)."""
    import getpass

    log = AuditLog(default_log_path(lake_path))
    try:
        log.append({"event": "sql", "transport": "cli", "client": getpass.getuser(), "sql": [query],
                    "decision": "error" if error else "allowed", "reason": error, "rows": rows})
    finally:
        log.close()


class AuditTrail:
    """Chained log + audit table; use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        log: AuditLog,
        table: AuditTable | None = None,
        *,
        flush_seconds: float = 2.0,
    ) -> None:
        self.log = log
        self.table = table
        self.flush_seconds = flush_seconds
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if table is not None:
            self._thread = threading.Thread(target=self._flusher, name="fhirlake-audit-table", daemon=True)
            self._thread.start()

    @classmethod
    def for_lake(cls, lake: str | Path | None = None, *, log_path: str | Path | None = None, fsync: bool = True) -> AuditTrail:
        """The trail at the lake's default places (``log_path`` overrides the log's)."""
        path = Path(log_path) if log_path is not None else default_log_path(lake)
        return cls(AuditLog(path, fsync=fsync), AuditTable(default_table_path(lake), path))

    def record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Append one entry; returns it as written (seq, ts, prev, hash added)."""
        entry = self.log.append(record)
        self._dirty.set()
        return entry

    def flush(self) -> int:
        """Bring the audit table up to date now; returns the rows appended."""
        return self.table.sync() if self.table is not None else 0

    def close(self) -> None:
        """Stop the flusher, sync the table one last time and close the log."""
        self._stop.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()
        self.log.close()

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _flusher(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.wait(self.flush_seconds):
                return
            self._dirty.clear()
            try:
                self.flush()
            except AuditError:
                _log.exception("the audit table could not be synced; the log is intact, it will be retried")
