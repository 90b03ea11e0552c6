"""The one error root of fhirlake, and the errors shared by every area.

Every error fhirlake raises on purpose derives from :class:`FhirlakeError`, so a caller can
catch one class at the edge (the CLI does, and prints the message on one line). Each area
adds its own subclasses in its own package and maps lower-level errors at its boundary with
``raise ... from exc``::

    FhirlakeError
    ├── ConfigurationError          a configuration file or setting is wrong
    │   └── ConfigFileError         ... at a place in a file (names the file and the JSON pointer or key)
    ├── InputDataError              an input file holds a line that cannot be used
    └── (per area)
        ├── fhirlake.sof.errors.SofError
        │   ├── ViewDefinitionError   the view is invalid (names a JSON pointer)
        │   ├── FhirPathSyntaxError   a FHIRPath expression does not parse (names a position)
        │   └── ViewEvaluationError   the view failed on the data (e.g. several values for a column)
        └── ...

Messages are written for the person who has to fix the problem: one line that names the
file, line or JSON pointer, and the reason.
"""

from __future__ import annotations

__all__ = ["ConfigFileError", "ConfigurationError", "FhirlakeError", "InputDataError"]


class FhirlakeError(Exception):
    """Root of every error fhirlake raises on purpose."""


class ConfigurationError(FhirlakeError):
    """A configuration file or setting is missing or invalid."""


class ConfigFileError(ConfigurationError):
    """A configuration file holds an invalid entry.

    ``path`` names the file, ``pointer`` the entry (a JSON pointer, or a dotted key; empty for
    the whole file) and ``reason`` what is wrong: ``<file>: <pointer>: <reason>``.
    """

    def __init__(self, path: str, pointer: str, reason: str) -> None:
        self.path = path
        self.pointer = pointer
        self.reason = reason
        where = f"{path}: {pointer}" if pointer else path
        super().__init__(f"{where}: {reason}")


class InputDataError(FhirlakeError):
    """A line of an input file cannot be used (not JSON, not an object, wrong resource type).

    ``path`` and ``line`` (1-based) locate the line; ``reason`` says what is wrong with it.
    """

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{path}:{line}: {reason}")
