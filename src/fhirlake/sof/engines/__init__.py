"""The engines a compiled view runs on: one sqlglot dialect each, with the few overrides it needs.

The compiler builds one tree of sqlglot's typed nodes; each engine's dialect spells it, as
sqlglot's own dialects do (a table of overrides, never ``if engine ==`` in the compiler).
DuckDB is the default; the Spark dialect is only imported when Spark is asked for.

>>> from fhirlake.sof.engines import dialect
>>> dialect("duckdb").__name__
'DuckDBEngine'
"""

from __future__ import annotations

import importlib
from typing import Literal

from sqlglot.dialects.dialect import Dialect

__all__ = ["ENGINES", "EngineName", "dialect"]

EngineName = Literal["duckdb", "spark"]
ENGINES: tuple[EngineName, ...] = ("duckdb", "spark")


def dialect(engine: str) -> type[Dialect]:
    """The sqlglot dialect that spells compiled views for ``engine`` (``duckdb`` or ``spark``)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}")
    module = importlib.import_module(f"fhirlake.sof.engines.{engine}")
    found: type[Dialect] = module.DIALECT
    return found
