"""The serving layer: read-only gold access, data scopes, the aggregate language, noise, budget and k.

Everything the MCP server answers is computed here, without MCP: :class:`GoldReader` (a pool of
locked-down, read-only DuckDB connections over the lake's catalog, whose :meth:`~GoldReader.run`
is the only way to query and always applies :func:`scope_query`), :class:`DataScope` (what one
client may see), the aggregate language (:mod:`~fhirlake.serving.grammar`), the plans every
question becomes (:mod:`~fhirlake.serving.plan`), the one place answers are released with noise,
budget and k (:mod:`~fhirlake.serving.release`, :class:`PrivacyPolicy`, the ledger), and
:class:`CohortService`, which puts them together.
"""

from __future__ import annotations

from fhirlake.serving.errors import (
    BudgetExhausted,
    QueryRefused,
    QueryTimeout,
    ServingError,
    UnknownCohortError,
)
from fhirlake.serving.reader import GoldReader, QueryResult
from fhirlake.serving.release import PrivacyPolicy
from fhirlake.serving.scope import DataScope
from fhirlake.serving.scoping import PATIENT_KEY, scope_query
from fhirlake.serving.service import CohortService, Trace
from fhirlake.serving.suppression import K_DEFAULT, K_FLOOR, Count, SuppressionPolicy

__all__ = [
    "K_DEFAULT", "K_FLOOR", "PATIENT_KEY", "BudgetExhausted", "CohortService", "Count", "DataScope", "GoldReader",
    "PrivacyPolicy", "QueryRefused",
    "QueryResult", "QueryTimeout", "ServingError", "SuppressionPolicy", "Trace", "UnknownCohortError", "scope_query",
]
