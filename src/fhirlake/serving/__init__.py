"""The guarded query layer: read-only gold access, data scopes, small-cell suppression, guarded SQL.

Everything the MCP server answers is computed here, without MCP: :class:`GoldReader` (the
locked-down, read-only DuckDB over the lake's catalog, whose :meth:`~GoldReader.run` is the
only way to query and always applies :func:`scope_query`), :class:`DataScope` (what one client
may see), :class:`SuppressionPolicy` (k), the differencing guard, the guarded SQL checker, and
:class:`CohortService`, which puts them together.
"""

from __future__ import annotations

from fhirlake.serving.errors import QueryRefused, QueryTimeout, ServingError, UnknownCohortError
from fhirlake.serving.reader import GoldReader, QueryResult
from fhirlake.serving.scope import DataScope
from fhirlake.serving.scoping import PATIENT_KEY, scope_query
from fhirlake.serving.service import CohortService, Trace
from fhirlake.serving.suppression import K_DEFAULT, K_FLOOR, Count, SuppressionPolicy

__all__ = [
    "K_DEFAULT", "K_FLOOR", "PATIENT_KEY", "CohortService", "Count", "DataScope", "GoldReader", "QueryRefused",
    "QueryResult", "QueryTimeout", "ServingError", "SuppressionPolicy", "Trace", "UnknownCohortError", "scope_query",
]
