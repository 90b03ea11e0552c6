"""Errors of the pseudonymisation area.

::

    FhirlakeError
    ├── ConfigurationError
    │   ├── PolicyError           the policy or analyzer file is invalid (file, JSON pointer, reason)
    │   └── PseudonymKeyError     the key is missing, unreadable or too short (never shows the key)
    └── PseudonymizeError         the run cannot go on (unreadable input folder, no model installed)

A single bad resource is not an error of the run: it is quarantined (see
:class:`RecordError`, which never leaves the worker that raised it).
"""

from __future__ import annotations

from fhirlake.errors import ConfigFileError, ConfigurationError, FhirlakeError

__all__ = ["PolicyError", "PseudonymKeyError", "PseudonymizeError", "RecordError"]


class PolicyError(ConfigFileError):
    """A policy (or its Presidio analyzer file) is invalid.

    The message names the file, the JSON pointer of the offending entry (with the rule's name
    when it has one) and the reason, e.g.
    ``anonymization/policy.yaml: /rules/4 (birth date)/method: unknown method 'hash'``.
    """


class PseudonymKeyError(ConfigurationError):
    """The pseudonymisation key is missing or unusable. The message never contains the key."""


class PseudonymizeError(FhirlakeError):
    """The run as a whole cannot go on (input not found, output not writable, model missing)."""


class RecordError(Exception):
    """One resource cannot be pseudonymised; it goes to quarantine.

    ``parts`` is the JSON path from the resource root, filled in as the error travels up the
    walk, so the quarantine line can name a JSON pointer such as ``/period/start``.
    """

    def __init__(self, reason: str, parts: list[str | int] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.parts: list[str | int] = parts if parts is not None else []

    @property
    def pointer(self) -> str:
        """The JSON pointer (RFC 6901) of the offending element."""
        escaped = (str(p).replace("~", "~0").replace("/", "~1") for p in reversed(self.parts))
        return "/" + "/".join(escaped) if self.parts else ""
