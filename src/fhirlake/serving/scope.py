"""What one client may see of the gold tables: :class:`DataScope`.

A scope is data, not code: the allowed views, the allowed sources (tenant isolation), a cohort
restriction (only that cohort's patients), hidden columns and generalised columns per view. It
is applied in one place only, :func:`fhirlake.serving.scoping.scope_query`, which every query of
the server goes through. The default scope (``DataScope()``) is everything.

>>> DataScope(sources=frozenset({"site-a"}), hidden_columns={"patient": frozenset({"region"})})  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fhirlake.errors import ConfigurationError

if TYPE_CHECKING:
    from fhirlake.cohorts.model import CohortDefinition

__all__ = ["GENERALIZATIONS", "DataScope", "check_generalization"]

# How a generalised column is coarsened: "year" (first 4 characters of a date), "month" (first 7),
# or "prefix:N" (first N characters, e.g. a postal code to its département).
GENERALIZATIONS = ("year", "month", "prefix:N")
_PREFIX = re.compile(r"^prefix:([1-9][0-9]?)$")


def check_generalization(kind: str) -> int:
    """The number of leading characters ``kind`` keeps; ConfigurationError when it is unknown."""
    if kind == "year":
        return 4
    if kind == "month":
        return 7
    match = _PREFIX.match(kind)
    if match is None:
        raise ConfigurationError(f"unknown generalisation {kind!r} (expected one of {', '.join(GENERALIZATIONS)})")
    return int(match.group(1))


@dataclass(frozen=True)
class DataScope:
    """The part of the lake one client may query.

    ``views``: gold views allowed (None: all). ``sources``: ``_source`` values allowed (None: all).
    ``cohort``: only the patients of this cohort (a saved cohort's name, or a definition).
    ``hidden_columns``: view → columns removed. ``generalized_columns``: view → column → kind
    (see :data:`GENERALIZATIONS`).
    """

    views: frozenset[str] | None = None
    sources: frozenset[str] | None = None
    cohort: str | CohortDefinition | None = None
    hidden_columns: Mapping[str, frozenset[str]] = field(default_factory=dict)
    generalized_columns: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for columns in self.generalized_columns.values():
            for kind in columns.values():
                check_generalization(kind)

    def allows_view(self, view: str) -> bool:
        return self.views is None or view in self.views

    def hidden(self, view: str) -> frozenset[str]:
        return self.hidden_columns.get(view, frozenset())

    def generalized(self, view: str) -> Mapping[str, str]:
        return self.generalized_columns.get(view, {})

    @property
    def is_everything(self) -> bool:
        return (self.views is None and self.sources is None and self.cohort is None
                and not self.hidden_columns and not self.generalized_columns)
