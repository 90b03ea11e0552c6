"""Errors of cohort compilation: a definition that cannot be compiled (one line, the reason)."""

from __future__ import annotations

from fhirlake.errors import FhirlakeError

__all__ = ["CohortError"]


class CohortError(FhirlakeError):
    """A cohort definition the compiler refuses (unknown dimension, nesting too deep, a cycle)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
