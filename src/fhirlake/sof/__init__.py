"""SQL-on-FHIR v2: run ViewDefinitions over FHIR resources with DuckDB (or Spark).

A ViewDefinition is parsed once into an immutable model (:func:`parse_view`, :func:`load_view`),
compiled to one SELECT built as a tree of sqlglot's typed nodes (:func:`compile_view`), spelled
by each engine's dialect, and run over NDJSON files or a relation of resources (:func:`run_view`,
``engine="duckdb"`` by default or ``"spark"``), producing an Arrow table or a Parquet file.

>>> from fhirlake.sof import compile_view, parse_view
>>> view = parse_view({"resource": "Patient", "select": [{"column": [
...     {"name": "id", "path": "getResourceKey()", "type": "id"},
...     {"name": "family", "path": "name.where(use = 'official').family.first()", "type": "string"}]}]})
>>> print(compile_view(view).sql(pretty=False))  # doctest: +ELLIPSIS
SELECT r."id" AS "id", (LIST_FILTER(...))[1] AS "family" FROM resources AS r WHERE r."resourceType" = 'Patient'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhirlake._lazy import lazy_attribute

if TYPE_CHECKING:
    from fhirlake.sof.compiler import CompiledView, OutputColumn, compile_view
    from fhirlake.sof.errors import (
        FhirPathSyntaxError,
        SofError,
        ViewDefinitionError,
        ViewEvaluationError,
    )
    from fhirlake.sof.model import (
        Column,
        Constant,
        PathExpression,
        Select,
        Tag,
        ViewDefinition,
        Where,
        load_view,
        parse_view,
    )
    from fhirlake.sof.runner import RunResult, resources_table, run_view
    from fhirlake.sof.spark_engine import spark_view_dataframe

_EXPORTS = {
    "CompiledView": "fhirlake.sof.compiler",
    "OutputColumn": "fhirlake.sof.compiler",
    "compile_view": "fhirlake.sof.compiler",
    "FhirPathSyntaxError": "fhirlake.sof.errors",
    "SofError": "fhirlake.sof.errors",
    "ViewDefinitionError": "fhirlake.sof.errors",
    "ViewEvaluationError": "fhirlake.sof.errors",
    "Column": "fhirlake.sof.model",
    "Constant": "fhirlake.sof.model",
    "PathExpression": "fhirlake.sof.model",
    "Select": "fhirlake.sof.model",
    "Tag": "fhirlake.sof.model",
    "ViewDefinition": "fhirlake.sof.model",
    "Where": "fhirlake.sof.model",
    "load_view": "fhirlake.sof.model",
    "parse_view": "fhirlake.sof.model",
    "RunResult": "fhirlake.sof.runner",
    "resources_table": "fhirlake.sof.runner",
    "run_view": "fhirlake.sof.runner",
    "spark_view_dataframe": "fhirlake.sof.spark_engine",
}


def __getattr__(name: str) -> object:
    return lazy_attribute(__name__, _EXPORTS, name)


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Column",
    "CompiledView",
    "Constant",
    "FhirPathSyntaxError",
    "OutputColumn",
    "PathExpression",
    "RunResult",
    "Select",
    "SofError",
    "Tag",
    "ViewDefinition",
    "ViewDefinitionError",
    "ViewEvaluationError",
    "Where",
    "compile_view",
    "load_view",
    "parse_view",
    "resources_table",
    "run_view",
    "spark_view_dataframe",
]
