"""The ViewDefinition → SQL compiler (FHIRPath expressions, select trees, whole views): trees of
sqlglot's typed nodes, spelled for DuckDB or Spark by :mod:`fhirlake.sof.engines`."""

from __future__ import annotations

from fhirlake.sof.compiler.rows import OutputColumn
from fhirlake.sof.compiler.view import CompiledView, compile_view

__all__ = ["CompiledView", "OutputColumn", "compile_view"]
