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
  or used in filters and joins; ``SELECT *``;
* joins other than inner joins with ON or USING (outer, cross, comma, natural, semi/anti,
  asof, positional); ROLLUP, CUBE and GROUPING SETS; a LIMIT or OFFSET that is not a number.

Comments are dropped (the tree is regenerated). The prepared tree gets one
``count(DISTINCT <table>.__fl_pk)`` column per table of its FROM, and one
``count(DISTINCT CASE WHEN <column> IS NOT NULL THEN <table>.__fl_pk END)`` per aggregate over
a column, which the server checks against k for every row: the query's text cannot vouch for
its own aggregation. It also gets one ``__fl_g<i>`` column per GROUP BY expression, the
dimensions the server keys cells by for secondary suppression, and loses its LIMIT/OFFSET,
which the server applies to the rows left after suppression.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from fhirlake.serving.catalog import GoldCatalog, is_key_column
from fhirlake.serving.errors import QueryRefused
from fhirlake.serving.scoping import PATIENT_KEY

__all__ = ["DIMENSION_PREFIX", "K_COLUMN_PREFIX", "MAX_SQL_LENGTH", "PreparedQuery", "prepare"]

MAX_SQL_LENGTH = 20_000
K_COLUMN_PREFIX = "__fl_k"
DIMENSION_PREFIX = "__fl_g"

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
    """A checked query, with ``k_columns`` (distinct patients per table and per aggregate) and
    ``dimensions`` (one per GROUP BY expression) added to its SELECT; ``tables`` are the aliases
    of its FROM and JOINs; ``limit`` and ``offset`` are applied by the server after suppression."""

    tree: exp.Select
    k_columns: tuple[str, ...]
    grouped: bool
    dimensions: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    limit: int | None = None
    offset: int | None = None


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
    return _with_k_columns(select, catalog)


def _check(select: exp.Select, catalog: GoldCatalog) -> None:
    for node in select.walk():
        if isinstance(node, exp.With | exp.SetOperation | exp.Window | exp.Lateral | exp.Unnest | exp.Pivot):
            raise QueryRefused(f"{node.key.upper()} is not allowed in run_aggregate_sql")
        if isinstance(node, exp.Rollup | exp.Cube | exp.GroupingSets):
            raise QueryRefused("ROLLUP, CUBE and GROUPING SETS are not allowed: their subtotal rows give away small cells "
                               "by subtraction; use a plain GROUP BY")
        if isinstance(node, exp.Join):
            _check_join(node)
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


def _check_join(join: exp.Join) -> None:
    """Only inner joins with ON or USING: an outer join keeps unmatched rows (a patient can
    change one table's set without changing the others'), a cross join pairs every row."""
    side, kind, method = join.side.upper(), join.kind.upper(), join.method.upper()
    if side in ("LEFT", "RIGHT", "FULL") or kind == "OUTER":
        raise QueryRefused(f"{side or kind} JOIN is not allowed: outer joins can change one table's patients unnoticed; "
                           "use an inner JOIN ... ON (or USING)")
    if kind == "CROSS" or (not kind and not method and not join.args.get("on") and not join.args.get("using")):
        raise QueryRefused("CROSS joins (and comma-separated FROM lists) are not allowed: use an inner JOIN ... ON (or USING)")
    if kind not in ("", "INNER") or method:
        raise QueryRefused(f"{method or kind} JOIN is not allowed: use an inner JOIN ... ON (or USING)")


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


def _with_k_columns(select: exp.Select, catalog: GoldCatalog) -> PreparedQuery:
    """Add the k columns (patients per table, and per aggregate) and the grouping dimensions;
    take LIMIT/OFFSET off the tree (the server applies them after suppression)."""
    from_ = select.args.get("from_") or select.args.get("from")
    if not isinstance(from_, exp.From):
        raise QueryRefused("the query must read from a gold view")
    tables = [from_.this, *(join.this for join in select.args.get("joins") or [])]
    if not all(isinstance(table, exp.Table) for table in tables):
        raise QueryRefused("only gold views can be joined")
    views = {table.alias_or_name: table.name for table in tables}
    limit, offset = _literal_count(select, "limit"), _literal_count(select, "offset")
    prepared = select.copy()
    prepared.set("limit", None)
    prepared.set("offset", None)
    counted: list[exp.Expr] = [exp.column(PATIENT_KEY, table=alias) for alias in views]
    counted += _aggregate_patients(select, views, catalog)
    names: list[str] = []
    seen: set[str] = set()
    for expression in counted:
        text = expression.sql(dialect="duckdb")
        if text in seen:
            continue
        seen.add(text)
        name = f"{K_COLUMN_PREFIX}{len(names)}"
        prepared.select(exp.alias_(exp.Count(this=exp.Distinct(expressions=[expression])), name), copy=False)
        names.append(name)
    dimensions: list[str] = []
    for position, expression in enumerate(_grouping(select, views, catalog)):
        name = f"{DIMENSION_PREFIX}{position}"
        prepared.select(exp.alias_(expression, name), copy=False)
        dimensions.append(name)
    return PreparedQuery(prepared, tuple(names), bool(select.args.get("group")), tuple(dimensions), tuple(views),
                         limit, offset)


def _literal_count(select: exp.Select, part: str) -> int | None:
    """The integer of ``LIMIT n`` / ``OFFSET n`` (None when absent); anything else is refused."""
    clause = select.args.get(part)
    if clause is None:
        return None
    value = clause.args.get("expression")
    if not (isinstance(value, exp.Literal) and value.is_int) or int(value.this) < 0:
        raise QueryRefused(f"{part.upper()} must be a whole number")
    return int(value.this)


def _is_aggregate(node: exp.Expr) -> bool:
    return isinstance(node, exp.AggFunc) or (isinstance(node, exp.Anonymous) and node.name.lower() == "quantile_cont")


def _aggregate_patients(select: exp.Select, views: dict[str, str], catalog: GoldCatalog) -> list[exp.Expr]:
    """For each aggregate of the outer query over a column, the patients whose values feed it:
    ``CASE WHEN <column> IS NOT NULL THEN <its table>.__fl_pk END``. A group of many patients
    can hold one patient's only non-null value (avg of a mostly-null column): k applies to these."""
    parts = [*select.expressions, select.args.get("having"), select.args.get("order")]
    found: list[exp.Expr] = []
    for part in parts:
        if part is None:
            continue
        for node in part.walk():
            if not _is_aggregate(node) or node.find_ancestor(exp.Select) is not select:
                continue
            argument = node.this
            if isinstance(argument, exp.Distinct):
                argument = argument.expressions[0] if argument.expressions else None
            if not isinstance(argument, exp.Column):
                continue
            for alias in _owners(argument, views, catalog):
                fed = exp.Not(this=exp.Is(this=argument.copy(), expression=exp.null()))
                found.append(exp.case().when(fed, exp.column(PATIENT_KEY, table=alias)))
    return found


def _owners(column: exp.Column, views: dict[str, str], catalog: GoldCatalog) -> list[str]:
    """The aliases of the FROM tables ``column`` can belong to (all of them when unsure)."""
    if column.table:
        named = [alias for alias in views if alias.lower() == column.table.lower()]
        return named or list(views)
    return [alias for alias, view in views.items() if _owns(view, column.name, catalog)] or list(views)


def _grouping(select: exp.Select, views: dict[str, str], catalog: GoldCatalog) -> list[exp.Expr]:
    """The GROUP BY expressions (ordinals and aliases resolved), one per distinct grouping: the
    dimensions a result's cells are keyed by for secondary suppression, shown or not."""
    group = select.args.get("group")
    if group is None:
        return []
    items = list(select.expressions)
    if group.args.get("all"):
        expressions = [item.unalias() for item in items if not any(_is_aggregate(n) for n in item.walk())]
    else:
        aliases = {item.alias.lower(): item.unalias() for item in items if item.alias}
        expressions = []
        for expression in group.expressions:
            if isinstance(expression, exp.Literal) and expression.is_int and 1 <= int(expression.this) <= len(items):
                expression = items[int(expression.this) - 1].unalias()
            elif (isinstance(expression, exp.Column) and not expression.table and expression.name.lower() in aliases
                  and not any(_owns(view, expression.name, catalog) for view in views.values())):
                expression = aliases[expression.name.lower()]  # DuckDB binds a column of that name first
            expressions.append(expression)
    distinct: dict[str, exp.Expr] = {}
    for expression in expressions:
        distinct.setdefault(_qualified(expression, views, catalog), expression.copy())
    return list(distinct.values())


def _owns(view: str, column: str, catalog: GoldCatalog) -> bool:
    info = catalog.view(view)
    return info is not None and column.lower() in {c.name.lower() for c in info.columns}


def _qualified(expression: exp.Expr, views: dict[str, str], catalog: GoldCatalog) -> str:
    """``expression``'s SQL with each column qualified by its one table, to compare groupings."""
    copy = expression.copy()
    for column in list(copy.find_all(exp.Column)):
        owners = _owners(column, views, catalog)
        if not column.table and len(owners) == 1:
            column.set("table", exp.to_identifier(owners[0]))
    return copy.sql(dialect="duckdb").lower()
