"""The audit trail: every call to the serving layer, chained so that tampering is detected.

* :class:`AuditLog`: append-only JSONL, hash-chained (SHA-256, or HMAC with
  ``$FHIRLAKE_AUDIT_KEY``), safe under concurrent appends, anchored by a head file;
* :class:`AuditTable`: the same entries as a Delta table under the lake, for SQL;
* :class:`AuditTrail`: both, as the sink a server writes to;
* :func:`verify_log`: the check behind ``fhirlake audit verify``.

Entries record who called which tool with which arguments, the SQL run, the decision and its
reason, suppressed cells, row count and duration, never the values returned.
"""

from __future__ import annotations

from fhirlake.audit.chain import GENESIS_PREV, KEY_ENV, canonical, digest
from fhirlake.audit.errors import AuditError, AuditKeyError, AuditTamperedError
from fhirlake.audit.log import AuditLog, LogCheck, head_path, read_entries, verify_log
from fhirlake.audit.table import AuditTable
from fhirlake.audit.trail import LOG_ENV, AuditTrail, default_log_path, default_table_path

__all__ = [
    "GENESIS_PREV",
    "KEY_ENV",
    "LOG_ENV",
    "AuditError",
    "AuditKeyError",
    "AuditLog",
    "AuditTable",
    "AuditTamperedError",
    "AuditTrail",
    "LogCheck",
    "canonical",
    "default_log_path",
    "default_table_path",
    "digest",
    "head_path",
    "read_entries",
    "verify_log",
]
