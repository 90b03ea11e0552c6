"""Errors of the SQL-on-FHIR engine.

::

    FhirlakeError
    └── SofError
        ├── ViewDefinitionError     the view is invalid; names the JSON pointer of the culprit
        │   └── FhirPathSyntaxError a FHIRPath expression does not parse; adds the position
        └── ViewEvaluationError     the view is valid but failed on the data
"""

from __future__ import annotations

from fhirlake.errors import FhirlakeError

__all__ = ["FhirPathSyntaxError", "SofError", "ViewDefinitionError", "ViewEvaluationError"]


class SofError(FhirlakeError):
    """Root of the SQL-on-FHIR engine's errors."""


class ViewDefinitionError(SofError):
    """A ViewDefinition is invalid. ``pointer`` is the JSON pointer of the offending element."""

    def __init__(self, pointer: str, reason: str) -> None:
        self.pointer = pointer or "/"
        self.reason = reason
        super().__init__(f"{self.pointer}: {reason}")


class FhirPathSyntaxError(ViewDefinitionError):
    """A FHIRPath expression does not parse, or names a function fhirlake does not know.

    ``position`` is the 0-based offset in ``expression``; the message shows it with a caret.
    """

    def __init__(self, expression: str, position: int, reason: str, pointer: str = "") -> None:
        self.expression = expression
        self.position = position
        shown = f"{reason} at position {position} in {expression!r}"
        super().__init__(pointer, shown)

    def at(self, pointer: str) -> FhirPathSyntaxError:
        """The same error, located at the JSON pointer of the element that holds the path."""
        reason = self.reason.split(" at position ")[0]
        return FhirPathSyntaxError(self.expression, self.position, reason, pointer)


class ViewEvaluationError(SofError):
    """A valid view failed on the data (e.g. several values for a non-collection column)."""
