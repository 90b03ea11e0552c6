"""Small builders of sqlglot expressions, so the compiler reads as what it means.

Everything the compiler emits goes through here or through sqlglot directly: SQL is built as
trees, never by formatting strings, so names and literals are always quoted correctly. The trees
use sqlglot's typed nodes (``exp.ArrayFilter``, ``exp.Transform``, ``exp.Bracket`` …), never an
engine's function names, so one tree is spelled by each engine's dialect
(:mod:`fhirlake.sof.compiler.engines`).

Semantics every engine's spelling must keep (DuckDB's, which the compiler was written for):
a transform's second lambda parameter is the 1-based item index; concatenating or flattening
lists treats a NULL list as empty; :class:`RaiseError` aborts the query with its message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from sqlglot import exp

__all__ = [
    "RaiseError",
    "and_",
    "case",
    "cast",
    "coalesce",
    "empty_list",
    "field",
    "flatten",
    "identifier",
    "is_not_null",
    "lambda_",
    "length_or_zero",
    "list_concat",
    "list_extract",
    "list_filter",
    "list_of",
    "list_transform",
    "literal",
    "null",
    "raise_error",
    "struct",
]


def identifier(name: str) -> exp.Identifier:
    """A quoted identifier (FHIR element names such as ``class`` are SQL keywords)."""
    return exp.to_identifier(name, quoted=True)


def field(base: exp.Expression, name: str) -> exp.Expression:
    """``base."name"``: a struct field (or a table column when ``base`` is a table alias)."""
    if isinstance(base, exp.Column) and not base.table:
        return exp.Column(this=identifier(name), table=base.this)
    if isinstance(base, exp.Column | exp.Dot):
        return exp.Dot(this=base, expression=identifier(name))
    return exp.Dot(this=exp.Paren(this=base), expression=identifier(name))


class RaiseError(exp.Expression, exp.Func):
    """Abort the query with the message ``this`` when evaluated. sqlglot has no node for it;
    the default spelling is DuckDB's ``error`` (so sqlglot's stock DuckDB dialect spells it
    too), Spark's dialect says ``raise_error``."""

    arg_types: ClassVar[dict[str, bool]] = {"this": True}
    _sql_names: ClassVar[list[str]] = ["ERROR"]


def literal(value: object) -> exp.Expression:
    """A SQL literal for a Python value (str, bool, int, Decimal/float, None)."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    return exp.Literal.number(str(value))


def null() -> exp.Expression:
    return exp.null()


def cast(value: exp.Expression, sql_type: str, *, safe: bool = False) -> exp.Expression:
    """``CAST(value AS sql_type)`` (``TRY_CAST`` when ``safe``)."""
    to = exp.DataType.build(sql_type, dialect="duckdb")
    return exp.TryCast(this=value, to=to) if safe else exp.Cast(this=value, to=to)


def case(*whens: tuple[exp.Expression, exp.Expression], default: exp.Expression | None = None) -> exp.Expression:
    """``CASE WHEN c1 THEN v1 ... ELSE default END``."""
    node = exp.Case()
    for condition, value in whens:
        node = node.when(condition, value)
    if default is not None:
        node = node.else_(default)
    return node


def coalesce(*values: exp.Expression) -> exp.Expression:
    return exp.Coalesce(this=values[0], expressions=list(values[1:]))


def and_(*conditions: exp.Expression) -> exp.Expression:
    result = conditions[0]
    for condition in conditions[1:]:
        result = exp.And(this=result, expression=condition)
    return result


def is_not_null(value: exp.Expression) -> exp.Expression:
    return exp.Not(this=exp.Is(this=value, expression=exp.null()))


def lambda_(params: Sequence[str], body: exp.Expression) -> exp.Expression:
    """A lambda ``(p1, p2) -> body`` (each dialect spells it: ``LAMBDA p1, p2 : body`` in DuckDB)."""
    return exp.Lambda(this=body, expressions=[exp.to_identifier(p) for p in params])


def list_transform(values: exp.Expression, params: Sequence[str], body: exp.Expression) -> exp.Expression:
    """Map ``body`` over a list; a second parameter is the item's 1-based index."""
    return exp.Transform(this=values, expression=lambda_(params, body))


def list_filter(values: exp.Expression, param: str, condition: exp.Expression) -> exp.Expression:
    return exp.ArrayFilter(this=values, expression=lambda_([param], condition))


def list_extract(values: exp.Expression, index: exp.Expression) -> exp.Expression:
    """The item at a 1-based ``index`` (negative counts from the end), NULL when out of range."""
    if not isinstance(values, exp.Column | exp.Dot | exp.Paren):
        values = exp.Paren(this=values)
    return exp.Bracket(this=values, expressions=[index], offset=1, safe=True)


def list_concat(*lists: exp.Expression) -> exp.Expression:
    """The items of each list in turn (a NULL list counts as empty)."""
    return exp.ArrayConcat(this=lists[0], expressions=list(lists[1:]), null_propagation=False)


def flatten(lists: exp.Expression) -> exp.Expression:
    """A list of lists as one list (a NULL inner list counts as empty)."""
    return exp.Flatten(this=lists)


def list_of(*items: exp.Expression) -> exp.Expression:
    """``[item, ...]``."""
    return exp.Array(expressions=list(items))


def empty_list(item_sql_type: str | None) -> exp.Expression:
    """``[]`` typed as ``item_sql_type[]`` when the type is known."""
    if item_sql_type is None:
        return exp.Array(expressions=[])
    return cast(exp.Array(expressions=[]), f"{item_sql_type}[]")


def length_or_zero(values: exp.Expression) -> exp.Expression:
    """The length of a list, 0 for NULL."""
    return coalesce(exp.ArraySize(this=values), exp.Literal.number(0))


def struct(fields: Sequence[tuple[str, exp.Expression]]) -> exp.Expression:
    """``{'a': v1, 'b': v2}``: a struct with the given field names."""
    return exp.Struct(
        expressions=[exp.PropertyEQ(this=identifier(n), expression=v) for n, v in fields]
    )


def raise_error(message: str) -> exp.Expression:
    """Aborts the query with ``message`` when evaluated."""
    return RaiseError(this=exp.Literal.string(message))
