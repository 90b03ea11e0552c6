"""Errors of the serving layer (the guarded, aggregate-only query path)::

    FhirlakeError
    └── ServingError                 the server cannot answer (no lake, bad configuration)
        ├── QueryRefused             a request breaks a rule (the aggregate grammar, scope, limits)
        │   ├── QueryTimeout         the query ran past its time limit
        │   └── BudgetExhausted      the client's privacy budget for the period is spent
        └── UnknownCohortError       a named cohort that was never saved

A refusal's message is written for the model that sent the request: one line, the rule it broke.
"""

from __future__ import annotations

from fhirlake.errors import FhirlakeError

__all__ = ["BudgetExhausted", "QueryRefused", "QueryTimeout", "ServingError", "UnknownCohortError"]


class ServingError(FhirlakeError):
    """The serving layer cannot answer."""


class QueryRefused(ServingError):
    """A request breaks a privacy or safety rule; ``reason`` is the one-line why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class QueryTimeout(QueryRefused):
    """The query ran past the server's time limit and was interrupted."""


class BudgetExhausted(QueryRefused):
    """A new answer would spend more than the client's privacy budget left in the period."""


class UnknownCohortError(ServingError):
    """A cohort name that is not saved for this client."""
