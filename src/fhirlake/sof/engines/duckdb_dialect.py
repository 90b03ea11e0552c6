"""DuckDB's spelling of compiled views: sqlglot's DuckDB dialect, nearly as it is.

The compiler's trees are written with DuckDB's list semantics (NULL lists count as empty,
1-based transform indexes) and :class:`~fhirlake.sof.compiler.sql.RaiseError` defaults to
DuckDB's ``error``, so sqlglot's stock DuckDB dialect spells them right too (the lake's gold
build renders :func:`fhirlake.sof.runner.view_query` with it); the table below only pins the
spellings the runner relies on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from sqlglot import exp
from sqlglot.dialects.dialect import rename_func
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.generators.duckdb import DuckDBGenerator

from fhirlake.sof.compiler.sql import RaiseError

__all__ = ["DIALECT", "DuckDBEngine"]


class DuckDBEngine(DuckDB):
    """DuckDB as fhirlake spells it."""

    class Generator(DuckDBGenerator):
        TRANSFORMS: ClassVar[dict[type[exp.Expr], Callable[..., str]]] = {
            **DuckDBGenerator.TRANSFORMS,
            RaiseError: rename_func("ERROR"),
            exp.ArraySize: rename_func("LEN"),
        }


DIALECT = DuckDBEngine
