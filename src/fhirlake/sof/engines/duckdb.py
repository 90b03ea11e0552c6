"""DuckDB's spelling of compiled views (sqlglot's DuckDB dialect, nearly as it is) and its way
of reading resource JSON with the view's read schema (``read_json`` over files, ``json_transform``
of a column of JSON text).

The compiler's trees are written with DuckDB's list semantics (NULL lists count as empty,
1-based transform indexes) and :class:`~fhirlake.sof.compiler.sql.RaiseError` defaults to
DuckDB's ``error``, so sqlglot's stock DuckDB dialect spells them right too (the lake's gold
build renders :func:`fhirlake.sof.runner.view_query` with it); the table below only pins the
spellings the compiler's output had before it was engine-neutral, so DuckDB's plans are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import orjson
from sqlglot import exp
from sqlglot.dialects.dialect import rename_func
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.generators.duckdb import DuckDBGenerator

from fhirlake.sof.compiler.sql import RaiseError
from fhirlake.sof.schema import Structure

__all__ = ["DIALECT", "DuckDBEngine", "parse_json", "read_ndjson"]


def _list_extract_sql(self: DuckDBGenerator, expression: exp.Bracket) -> str:
    if not expression.args.get("safe"):
        return self.bracket_sql(expression)
    values = expression.this.this if isinstance(expression.this, exp.Paren) else expression.this
    return self.func("LIST_EXTRACT", values, *expression.expressions)


class DuckDBEngine(DuckDB):
    """DuckDB as fhirlake spells it."""

    class Generator(DuckDBGenerator):
        TRANSFORMS: ClassVar[dict[type[exp.Expr], Callable[..., str]]] = {
            **DuckDBGenerator.TRANSFORMS,
            RaiseError: rename_func("ERROR"),
            exp.ArraySize: rename_func("LEN"),
            # Aliases of what DuckDB binds x[i] and substring() to; they keep plans as they were.
            exp.Bracket: _list_extract_sql,
            exp.Substring: rename_func("SUBSTR"),
        }


DIALECT = DuckDBEngine


def parse_json(text: exp.Expression, structure: Mapping[str, Structure]) -> exp.Expression:
    """``json_transform(text, structure)``: resource JSON text as a STRUCT of only the fields in
    ``structure`` (:attr:`~fhirlake.sof.compiler.CompiledView.read_structure`), unnested by the caller."""
    return exp.Anonymous(this="json_transform", expressions=[text, exp.Literal.string(orjson.dumps(structure).decode())])


def read_ndjson(files: Sequence[Path], columns: Mapping[str, str], *, max_object_size: int | None = None) -> exp.Expression:
    """``read_json([...files], format := 'newline_delimited', columns := {...})``: NDJSON files
    read with exactly ``columns`` (name → DuckDB type); ``max_object_size`` for huge resources."""
    typed = exp.Struct(expressions=[
        exp.PropertyEQ(this=exp.Literal.string(name), expression=exp.Literal.string(sql_type)) for name, sql_type in columns.items()
    ])
    arguments: list[exp.Expression] = [
        exp.Array(expressions=[exp.Literal.string(str(f)) for f in files]),
        exp.PropertyEQ(this=exp.to_identifier("format"), expression=exp.Literal.string("newline_delimited")),
        exp.PropertyEQ(this=exp.to_identifier("columns"), expression=typed),
    ]
    if max_object_size is not None:
        arguments.append(exp.PropertyEQ(this=exp.to_identifier("maximum_object_size"), expression=exp.Literal.number(max_object_size)))
    return exp.Anonymous(this="read_json", expressions=arguments)
