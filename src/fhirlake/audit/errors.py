"""Errors of the audit area.

::

    FhirlakeError
    ├── ConfigurationError
    │   └── AuditKeyError        FHIRLAKE_AUDIT_KEY is needed (keyed log) or too short
    └── AuditError               the audit log cannot be written or read
        └── AuditTamperedError   the hash chain is broken (line, reason)
"""

from __future__ import annotations

from fhirlake.errors import ConfigurationError, FhirlakeError

__all__ = ["AuditError", "AuditKeyError", "AuditTamperedError"]


class AuditError(FhirlakeError):
    """The audit log or table cannot be written or read."""


class AuditKeyError(ConfigurationError):
    """The audit key is missing or unusable. The message never contains the key."""


class AuditTamperedError(AuditError):
    """The chain is broken at ``line`` (1-based): an entry was edited, removed, reordered or cut."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{path}:{line}: {reason}")
