"""Errors of the access-control area.

::

    FhirlakeError
    ├── ConfigurationError
    │   └── AccessPolicyError     the access policy is invalid (file, JSON pointer, reason)
    └── AccessDenied              a client asked for something its policy does not grant

Denials are ordinary outcomes of a request, not bugs: the serving layer turns them into a
refused tool call (and an audit entry), the HTTP layer into a 401 or 403.
"""

from __future__ import annotations

from fhirlake.errors import ConfigFileError, FhirlakeError

__all__ = ["AccessDenied", "AccessPolicyError"]


class AccessPolicyError(ConfigFileError):
    """The access policy file is invalid.

    The message names the file, the JSON pointer of the offending entry and the reason, e.g.
    ``access-policy.yaml: /clients/2/networks/0: '10.0.0.300/8' is not a CIDR network``.
    """


class AccessDenied(FhirlakeError):
    """A client asked for a tool, view or column its policy does not grant.

    ``level`` names the control that refused (``network``, ``identity``, ``scope``, ``cohort``,
    ``attribute``, ``tenant``), so the audit trail can say which one did.
    """

    def __init__(self, level: str, reason: str) -> None:
        self.level = level
        self.reason = reason
        super().__init__(f"access denied ({level}): {reason}")
