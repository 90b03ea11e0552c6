"""The guarded SQL escape hatch: one aggregate SELECT over the gold views, checked as a tree.

:func:`prepare` parses the text with sqlglot and refuses, with the rule broken:

* anything but exactly one plain ``SELECT`` (several statements, ``WITH``, ``UNION``, ``COPY``,
  ``ATTACH``, ``INSTALL``/``LOAD``, ``PRAGMA``, ``SET``... do not parse to one SELECT);
* a FROM item that is not a gold view (files, globs, table functions, other schemas, derived
  tables), window functions, subqueries outside WHERE / JOIN ... ON;
* any function not on the allow-list (so nothing reads files or the network) and aggregates
  other than count, sum, avg, median, quartiles, stddev and variance (min, max, list and the
  like return one person's value); aggregate arguments must be plain columns, so a condition
  cannot single one person out inside a large group;
* key columns (``patient_id``, ``*_id``) shown, grouped or ordered by: they may only be counted
  or used in filters and joins; ``SELECT *``.

Comments are dropped (the tree is regenerated). The prepared tree gets one
``count(DISTINCT <table>.__fl_pk)`` column per table of its FROM, which the server checks
against k for every row: the query's text cannot vouch for its own aggregation.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from fhirlake.serving.catalog import GoldCatalog, is_key_column
from fhirlake.serving.errors import QueryRefused
from fhirlake.serving.scoping import PATIENT_KEY

__all__ = ["K_COLUMN_PREFIX", "MAX_SQL_LENGTH", "PreparedQuery", "prepare"]

MAX_SQL_LENGTH = 20_000
K_COLUMN_PREFIX = "__fl_k"

_AGGREGATES = {"Count", "Sum", "Avg", "Median", "Quantile", "QuantileCont", "PercentileCont", "Stddev", "StddevSamp",
               "StddevPop", "Variance", "VariancePop", "CountIf"} - {"CountIf"}
_SCALARS = {
    "Abs", "Round", "Floor", "Ceil", "Cast", "TryCast", "Coalesce", "Lower", "Upper", "Length", "Substring", "Left",
    "Right", "Trim", "Concat", "Year", "Month", "Quarter", "Day", "DateTrunc", "TimestampTrunc", "Extract", "Date",
    "DateDiff", "If", "Nullif", "Greatest", "Least", "StrPosition", "Contains", "StartsWith", "Div", "Sign",
    "Ln", "Log", "Sqrt", "Pow", "CurrentDate", "ToDays", "DayOfWeek", "StrToDate", "TsOrDsToDate", "DateFromParts",
}
_ANONYMOUS = {"date_part", "datepart", "quantile_cont", "contains", "starts_with", "left", "right", "year", "month",
              "isodow", "date_trunc", "strftime", "try_cast", "epoch", "age", "regexp_matches", "list_contains",
              "array_contains", "len", "array_length", "floor"}
_QUANTILE_RANGE = (0.05, 0.95)


@dataclass(frozen=True)
class PreparedQuery:
    """A checked query, with ``k_columns`` (distinct patients per table) added to its SELECT."""

    tree: exp.Select
    k_columns: tuple[str, ...]
    grouped: bool


def prepare(sql: str, catalog: GoldCatalog) -> PreparedQuery:
    """Check ``sql`` and add the k columns; QueryRefused (with the rule) when it breaks one."""
    if len(sql) > MAX_SQL_LENGTH:
        raise QueryRefused(f"the query is longer than {MAX_SQL_LENGTH} characters")
    try:
        statements = [s for s in sqlglot.parse(sql, dialect="duckdb") if s is not None]
    except (ParseError, TokenError) as exc:
        raise QueryRefused(f"the query does not parse as DuckDB SQL: {str(exc).splitlines()[0][:200]}") from exc
    if len(statements) != 1:
        raise QueryRefused(f"exactly one SELECT statement is allowed, not {len(statements)}")
    select = statements[0]
    if not isinstance(select, exp.Select):
        raise QueryRefused(f"only a SELECT is allowed, not {select.key.upper()}")
    _check(select, catalog)
    return _with_k_columns(select)


def _check(select: exp.Select, catalog: GoldCatalog) -> None:
    for node in select.walk():
        if isinstance(node, exp.With | exp.SetOperation | exp.Window | exp.Lateral | exp.Unnest | exp.Pivot):
            raise QueryRefused(f"{node.key.upper()} is not allowed in run_aggregate_sql")
        if isinstance(node, exp.Identifier) and node.name.lower().startswith("__fl"):
            raise QueryRefused(f"{node.name!r} is reserved")
        if isinstance(node, exp.Table):
            _check_table(node, catalog)
        elif isinstance(node, exp.Subquery | exp.Select) and node is not select:
            if not _in_filter(node, select):
                raise QueryRefused("subqueries are allowed only in WHERE and JOIN ... ON (as filters)")
        elif isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
            raise QueryRefused("SELECT * is not allowed: name the columns and aggregate them")
        elif isinstance(node, exp.Func):
            _check_function(node)
        elif isinstance(node, exp.Column):
            _check_column(node, select)


def _check_table(table: exp.Table, catalog: GoldCatalog) -> None:
    if not isinstance(table.this, exp.Identifier):
        raise QueryRefused(f"only the gold views can be read, not {table.this.sql(dialect='duckdb')[:60]!r}")
    if table.text("db").lower() not in ("", "gold") or table.text("catalog").lower() not in ("", "lake"):
        raise QueryRefused(f"only the gold views can be read, not {table.sql(dialect='duckdb')[:60]!r}")
    if catalog.view(table.name) is None:
        raise QueryRefused(f"unknown view {table.name!r}: list_views shows the views you can query")


def _check_function(func: exp.Func) -> None:
    name = type(func).__name__
    if isinstance(func, exp.Anonymous):
        lowered = func.name.lower()
        if lowered not in _ANONYMOUS:
            raise QueryRefused(f"function {func.name}() is not allowed in run_aggregate_sql")
        if lowered == "quantile_cont":
            _check_aggregate(func)
        return
    if isinstance(func, exp.AggFunc):
        if name not in _AGGREGATES:
            raise QueryRefused(f"aggregate {func.sql_name().lower()}() is not allowed: it can return one person's value")
        _check_aggregate(func)
        return
    if name not in _SCALARS and not isinstance(func, exp.Binary | exp.Unary | exp.Paren):
        raise QueryRefused(f"function {func.sql_name().lower()}() is not allowed in run_aggregate_sql")


def _check_aggregate(func: exp.Func) -> None:
    """An aggregate's argument must be a plain column (or ``*``): no condition inside it."""
    argument = func.this
    if isinstance(argument, exp.Distinct):
        argument = argument.expressions[0] if len(argument.expressions) == 1 else None
    if not isinstance(argument, exp.Column | exp.Star):
        raise QueryRefused(f"the argument of {func.sql(dialect='duckdb')[:60]} must be a plain column "
                           "(put conditions in WHERE, groupings in GROUP BY)")
    if func.parent is not None and isinstance(func.parent, exp.Filter):
        raise QueryRefused("FILTER clauses are not allowed: put conditions in WHERE")
    extra = [e for e in func.args.get("expressions") or [] if e is not argument]
    extra += [func.args[k] for k in ("quantile", "expression") if isinstance(func.args.get(k), exp.Expr)]
    for value in extra:
        number = float(value.this) if isinstance(value, exp.Literal) and value.is_number else None
        if number is None or not _QUANTILE_RANGE[0] <= number <= _QUANTILE_RANGE[1]:
            raise QueryRefused(f"quantiles must be literal fractions between {_QUANTILE_RANGE[0]} and {_QUANTILE_RANGE[1]}")


def _check_column(column: exp.Column, select: exp.Select) -> None:
    if not is_key_column(column.name):
        return
    if _in_filter(column, select):
        return
    parent = column.parent
    if isinstance(parent, exp.Distinct):
        parent = parent.parent
    if isinstance(parent, exp.Count):
        return
    raise QueryRefused(f"key column {column.name!r} may only be counted (count(DISTINCT {column.name})) or used in filters and joins")


def _in_filter(node: exp.Expr, root: exp.Select) -> bool:
    """True when ``node`` sits in the WHERE of ``root`` or the ON of one of its joins."""
    child: exp.Expr = node
    parent = node.parent
    while parent is not None and parent is not root:
        if isinstance(parent, exp.Where) and parent.parent is root:
            return True
        if isinstance(parent, exp.Join) and child is parent.args.get("on") and parent.parent is root:
            return True
        child, parent = parent, parent.parent
    return False


def _with_k_columns(select: exp.Select) -> PreparedQuery:
    tables = []
    from_ = select.args.get("from_") or select.args.get("from")
    if not isinstance(from_, exp.From):
        raise QueryRefused("the query must read from a gold view")
    tables.append(from_.this)
    tables += [join.this for join in select.args.get("joins") or []]
    names = []
    prepared = select.copy()
    prepared.set("limit", None)
    for position, table in enumerate(tables):
        if not isinstance(table, exp.Table):
            raise QueryRefused("only gold views can be joined")
        name = f"{K_COLUMN_PREFIX}{position}"
        counted = exp.Count(this=exp.Distinct(expressions=[exp.column(PATIENT_KEY, table=table.alias_or_name)]))
        prepared = prepared.select(exp.alias_(counted, name), copy=False)
        names.append(name)
    limit = select.args.get("limit")
    if limit is not None:
        prepared.set("limit", limit.copy())
    grouped = bool(select.args.get("group"))
    return PreparedQuery(prepared, tuple(names), grouped)
