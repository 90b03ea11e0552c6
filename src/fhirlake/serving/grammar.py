"""The aggregate language of ``run_aggregate_sql``: an allow-list checked on the sqlglot tree.

A query is taken apart into what the language allows and rebuilt from scratch as an
:class:`~fhirlake.serving.plan.AggregatePlan`; nothing of the client's tree is run. What may
be asked::

    SELECT item, ... FROM view [AS a] [JOIN view [AS b] ON a.patient_id = b.patient_id | USING (patient_id)] ...
           [WHERE condition] [GROUP BY dimension, ... | GROUP BY ALL] [ORDER BY name|position [ASC|DESC], ...] [LIMIT n]
    item      := dimension [AS name] | aggregate [AS name]
    dimension := a dimension column | year(d) | month(d)            (d: a date column)
    aggregate := count(*) | count(DISTINCT patient_id) | count(m) | sum(m) | avg(m) | median(m) | stddev(m)
               | quantile_cont(m, q)                                 (m: a measure column; q in [0.05, 0.95])
    condition := column op literal | column [NOT] IN (literal, ...) | column [NOT] BETWEEN literal AND literal
               | column IS [NOT] NULL | condition AND|OR condition | NOT condition | (condition)

Columns are used only as their role (declared in the ViewDefinitions, :mod:`fhirlake.sof.roles`)
allows: keys never (but ``count(DISTINCT patient_id)`` and the join), quasi-identifiers and
free text never. A literal must have its column's type, so no comparison can fail on some rows
only. Anything else (subqueries, HAVING, WITH, set operations, windows, CASE, casts,
arithmetic, other functions, ``*``, DISTINCT, outer or non-key joins, files) is refused with
the rule it broke and what to write instead. Before parsing, the text's size, token count and
nesting depth are limited, so no query can exhaust the parser.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import TokenType, exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Tokenizer

from fhirlake.serving.catalog import GoldCatalog, ViewInfo
from fhirlake.serving.errors import QueryRefused
from fhirlake.serving.plan import (
    DIMENSION,
    MEASURE_COUNT,
    MEASURE_VALUE,
    PK,
    ROWS,
    AggregatePlan,
    Statistic,
)
from fhirlake.sof.roles import ColumnRole

__all__ = ["MAX_DEPTH", "MAX_SQL_LENGTH", "MAX_TOKENS", "PER_PATIENT_VIEWS", "compile_sql"]

MAX_SQL_LENGTH = 20_000
MAX_TOKENS = 2_000
MAX_DEPTH = 32
MAX_TABLES = 4
#: Views with one row per patient: a dimension of theirs puts each patient in one cell.
PER_PATIENT_VIEWS = frozenset({"patient"})
PATIENT_COLUMN = "patient_id"
_QUANTILES = (0.05, 0.95)
_ISO_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?)?)?$")
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "DOUBLE", "FLOAT", "REAL", "DECIMAL", "UBIGINT",
            "UINTEGER", "USMALLINT", "UTINYINT")
_ALLOWED_SELECT_ARGS = {"expressions", "from_", "from", "joins", "where", "group", "order", "limit"}
_COMPARISONS: dict[type[exp.Expr], str] = {exp.EQ: "=", exp.NEQ: "<>", exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<="}
_FLIPPED = {"=": "=", "<>": "<>", ">": "<", ">=": "<=", "<": ">", "<=": ">="}
_OPERATORS: dict[str, type[exp.Binary]] = {"=": exp.EQ, "<>": exp.NEQ, ">": exp.GT, ">=": exp.GTE, "<": exp.LT, "<=": exp.LTE}
_SIMPLE_AGGREGATES: dict[type[exp.Expr], str] = {exp.Sum: "sum", exp.Avg: "mean", exp.Median: "median",
                                                exp.Stddev: "stddev", exp.StddevSamp: "stddev"}


@dataclass(frozen=True)
class _Column:
    """A resolved column: the table alias it belongs to, its view and its role."""

    alias: str
    view: ViewInfo
    name: str
    type: str
    role: ColumnRole

    def ref(self) -> exp.Column:
        return exp.column(self.name, table=self.alias, quoted=True)

    @property
    def canonical(self) -> str:
        return f"{self.view.name}.{self.name}"


@dataclass
class _Query:
    """What the checker has learnt of the query so far."""

    catalog: GoldCatalog
    tables: dict[str, ViewInfo] = field(default_factory=dict)   # alias -> view
    order: list[str] = field(default_factory=list)               # aliases in FROM/JOIN order
    dimensions: list[tuple[str, exp.Expr, str, bool]] = field(default_factory=list)  # name, expr, canonical, per patient
    statistics: list[Statistic] = field(default_factory=list)
    measures: list[_Column] = field(default_factory=list)
    output: list[str] = field(default_factory=list)


def compile_sql(sql: str, catalog: GoldCatalog, *, allowed_views: frozenset[str] | None = None) -> AggregatePlan:
    """Check ``sql`` against the aggregate language and compile it to a plan; QueryRefused
    naming the rule otherwise."""
    select = _parse(sql)
    unknown = sorted(k for k, v in select.args.items() if v and k not in _ALLOWED_SELECT_ARGS)
    if unknown:
        raise QueryRefused(f"{_clause(unknown[0])} is not part of the aggregate language: "
                           "write SELECT dimensions and aggregates FROM views [JOIN ... ON patient_id] [WHERE] [GROUP BY] [ORDER BY] [LIMIT]")
    query = _Query(catalog)
    _tables(select, query, allowed_views)
    for item in select.expressions:
        _item(item, query)
    if not query.statistics:
        raise QueryRefused("the query must aggregate: add count(DISTINCT patient_id), count(*) or an aggregate of a measure")
    where = select.args.get("where")
    condition = _condition(where.this, query) if where is not None else None
    _check_grouping(select, query)
    return _plan(select, query, condition)


# ----------------------------------------------------------------------------------- parsing


def _parse(sql: str) -> exp.Select:
    if len(sql) > MAX_SQL_LENGTH:
        raise QueryRefused(f"the query is longer than {MAX_SQL_LENGTH} characters")
    try:
        tokens = Tokenizer(dialect="duckdb").tokenize(sql)
    except (TokenError, RecursionError, ValueError) as exc:
        raise QueryRefused(f"the query cannot be read: {str(exc).splitlines()[0][:120]}") from exc
    if len(tokens) > MAX_TOKENS:
        raise QueryRefused(f"the query has more than {MAX_TOKENS} tokens: ask a smaller question")
    depth = deepest = 0
    for token in tokens:
        depth += 1 if token.token_type == TokenType.L_PAREN else -1 if token.token_type == TokenType.R_PAREN else 0
        deepest = max(deepest, depth)
    if deepest > MAX_DEPTH:
        raise QueryRefused(f"the query nests parentheses {deepest} deep (at most {MAX_DEPTH})")
    try:
        statements = [s for s in sqlglot.parse(sql, dialect="duckdb") if s is not None]
    except (ParseError, TokenError) as exc:
        raise QueryRefused(f"the query does not parse: {str(exc).splitlines()[0][:200]}") from exc
    except RecursionError as exc:
        raise QueryRefused("the query nests too deep to read") from exc
    if len(statements) != 1:
        raise QueryRefused(f"exactly one SELECT statement is allowed, not {len(statements)}")
    statement = statements[0]
    if not isinstance(statement, exp.Select):
        raise QueryRefused(f"only a SELECT is allowed, not {statement.key.upper()}")
    return statement


def _clause(name: str) -> str:
    names = {"having": "HAVING", "with": "WITH", "with_": "WITH", "distinct": "DISTINCT", "qualify": "QUALIFY",
             "windows": "WINDOW", "offset": "OFFSET", "laterals": "LATERAL", "pivots": "PIVOT", "sample": "SAMPLE",
             "into": "INTO", "kind": "SELECT modifiers", "settings": "SETTINGS", "prewhere": "PREWHERE"}
    return names.get(name, name.upper())


# ----------------------------------------------------------------------------------- tables


def _tables(select: exp.Select, query: _Query, allowed: frozenset[str] | None) -> None:
    source = select.args.get("from_") or select.args.get("from")
    if not isinstance(source, exp.From) or not isinstance(source.this, exp.Table):
        raise QueryRefused("the query must read FROM a gold view (list_views shows them)")
    _table(source.this, query, allowed)
    joins = select.args.get("joins") or []
    if len(joins) + 1 > MAX_TABLES:
        raise QueryRefused(f"at most {MAX_TABLES} views may be joined")
    for join in joins:
        _join(join, query, allowed)


def _table(table: exp.Table, query: _Query, allowed: frozenset[str] | None) -> str:
    extra = sorted(k for k, v in table.args.items() if v and k not in ("this", "db", "catalog", "alias"))
    if not isinstance(table.this, exp.Identifier) or extra:
        raise QueryRefused("FROM and JOIN take gold view names only (no files, functions, subqueries or samples)")
    if table.text("db").lower() not in ("", "gold") or table.text("catalog").lower() not in ("", "lake"):
        raise QueryRefused(f"only the gold views can be read, not {table.sql(dialect='duckdb')[:60]!r}")
    view = query.catalog.view(table.name)
    if view is None or not view.has_patient or (allowed is not None and table.name not in allowed):
        raise QueryRefused(f"unknown view {table.name!r}: list_views shows the views you can query")
    alias_node = table.args.get("alias")
    if alias_node is not None and (alias_node.args.get("columns") or not isinstance(alias_node.this, exp.Identifier)):
        raise QueryRefused("a table alias is a plain name (no column list)")
    alias = (table.alias or table.name).lower()
    if alias in query.tables:
        raise QueryRefused(f"the alias {alias!r} is used twice: give each view its own alias")
    query.tables[alias] = view
    query.order.append(alias)
    return alias


def _join(join: exp.Join, query: _Query, allowed: frozenset[str] | None) -> None:
    side, kind, method = join.side.upper(), join.kind.upper(), join.method.upper()
    extra = sorted(k for k, v in join.args.items() if v and k not in ("this", "on", "using", "kind", "side", "method"))
    if side or kind not in ("", "INNER") or method or extra:
        raise QueryRefused(f"{' '.join(p for p in (method, side, kind) if p) or 'this'} JOIN is not allowed: "
                           "join views with an inner JOIN ... ON a.patient_id = b.patient_id (or USING (patient_id))")
    if not isinstance(join.this, exp.Table):
        raise QueryRefused("JOIN takes a gold view name (no subqueries or functions)")
    alias = _table(join.this, query, allowed)
    using = join.args.get("using")
    on = join.args.get("on")
    if using:
        names = [u.name.lower() if isinstance(u, exp.Identifier | exp.Column) else None for u in using]
        if names != [PATIENT_COLUMN]:
            raise QueryRefused("joins are on the patient key only: USING (patient_id)")
        return
    if not isinstance(on, exp.EQ) or not all(isinstance(side_, exp.Column) for side_ in (on.this, on.expression)):
        raise QueryRefused("joins are on the patient key only: ON a.patient_id = b.patient_id")
    sides = [_join_side(side_, query) for side_ in (on.this, on.expression)]
    if alias not in sides or len(set(sides)) != 2:
        raise QueryRefused("the join must compare the joined view's patient_id with an earlier view's patient_id")


def _join_side(column: exp.Column, query: _Query) -> str:
    if column.name.lower() != PATIENT_COLUMN or not column.table or column.table.lower() not in query.tables:
        raise QueryRefused("joins are on the patient key only: ON a.patient_id = b.patient_id (qualified by the aliases)")
    if any(column.args.get(k) for k in ("db", "catalog")):
        raise QueryRefused("qualify join columns by the view's alias only")
    return column.table.lower()


# ----------------------------------------------------------------------------------- columns


def _resolve(column: exp.Column, query: _Query) -> _Column:
    """The table column ``column`` names (qualified or unambiguous), with its declared role."""
    if any(column.args.get(k) for k in ("db", "catalog")) or not isinstance(column.this, exp.Identifier):
        raise QueryRefused(f"{column.sql(dialect='duckdb')[:60]!r}: name columns as column or alias.column")
    name = column.name
    if column.table:
        alias = column.table.lower()
        if alias not in query.tables:
            raise QueryRefused(f"unknown table alias {column.table!r}")
        owners = [alias] if query.tables[alias].column(name) is not None else []
    else:
        owners = [a for a in query.order if query.tables[a].column(name) is not None]
    if not owners:
        raise QueryRefused(f"unknown column {name!r}: describe_view shows each view's columns and roles")
    if len(owners) > 1:
        raise QueryRefused(f"column {name!r} is in several joined views: qualify it (alias.{name})")
    view = query.tables[owners[0]]
    info = view.column(name)
    assert info is not None
    if info.role is None:
        raise QueryRefused(f"column {view.name}.{name} declares no role, so it cannot be used here")
    return _Column(owners[0], view, name, info.type, info.role)


def _refuse_role(column: _Column, use: str) -> QueryRefused:
    hints = {
        "key": "keys are never shown or compared; count patients with count(DISTINCT patient_id) and join on patient_id",
        "quasi-identifier": "it could single a patient out; use a generalised column (e.g. birth_year, age) instead",
        "text": "free text is never used; use a coded column",
        "measure": "a measure is aggregated (avg, median, quantile_cont, sum, count) or compared in WHERE",
        "date": "a date is compared in WHERE or grouped by year(column) or month(column)",
        "dimension": "a dimension is grouped by or compared in WHERE",
    }
    return QueryRefused(f"column {column.canonical} is a {column.role.role} and cannot be {use}: {hints[column.role.role]}")


# ----------------------------------------------------------------------------------- SELECT items


def _item(item: exp.Expr, query: _Query) -> None:
    name = None
    if isinstance(item, exp.Alias):
        name = item.alias
        item = item.this
    if isinstance(item, exp.Star) or (isinstance(item, exp.Column) and isinstance(item.this, exp.Star)):
        raise QueryRefused("SELECT * is not allowed: select dimensions and aggregates")
    aggregate = _aggregate(item, query)
    if aggregate is not None:
        kind, measure, alpha = aggregate
        label = name or _default_name(kind, measure, alpha)
        index = None
        if measure is not None:
            known = [m.canonical == measure.canonical and m.alias == measure.alias for m in query.measures]
            index = known.index(True) if any(known) else len(query.measures)
            if not any(known):
                query.measures.append(measure)
        query.statistics.append(Statistic(label, kind, index, measure.role.bounds if measure else None, alpha))  # type: ignore[arg-type]
    else:
        expression, canonical, per_patient, default = _dimension(item, query)
        label = name or default
        query.dimensions.append((label, expression, canonical, per_patient))
    if label.lower() in (o.lower() for o in query.output):
        raise QueryRefused(f"two output columns are named {label!r}: give them different aliases")
    query.output.append(label)


def _default_name(kind: str, measure: _Column | None, alpha: float | None) -> str:
    if measure is None:
        return {"patients": "patients", "rows": "count"}[kind]
    if kind == "quantile":
        return f"p{round((alpha or 0) * 100):02d}_{measure.name}"
    return f"{kind}_{measure.name}"


def _aggregate(node: exp.Expr, query: _Query) -> tuple[str, _Column | None, float | None] | None:
    """``(kind, measure, alpha)`` when ``node`` is an allowed aggregate, None when it is no
    aggregate at all; QueryRefused for any other aggregate or function."""
    if type(node) is exp.Count:
        argument = node.this
        if isinstance(argument, exp.Star):
            return "rows", None, None
        if isinstance(argument, exp.Distinct):
            parts = argument.expressions
            if len(parts) == 1 and isinstance(parts[0], exp.Column) and parts[0].name.lower() == PATIENT_COLUMN:
                column = _resolve(parts[0], query)
                if column.role.role == "key":
                    return "patients", None, None
            raise QueryRefused("count(DISTINCT ...) counts patients only: count(DISTINCT patient_id)")
        if isinstance(argument, exp.Column):
            return "values", _measure(argument, query, "counted"), None
        raise QueryRefused("count() takes *, DISTINCT patient_id or a measure column")
    for kind_type, kind in _SIMPLE_AGGREGATES.items():
        if type(node) is kind_type:
            if set(k for k, v in node.args.items() if v) - {"this"}:
                raise QueryRefused(f"{kind}() takes one measure column")
            return kind, _measure(node.this, query, "aggregated"), None
    if type(node) is exp.PercentileCont or (type(node) is exp.Anonymous and node.name.lower() == "quantile_cont"):
        arguments = node.expressions if isinstance(node, exp.Anonymous) else [node.this, node.args.get("quantile") or node.args.get("expression")]
        if len(arguments) != 2:
            raise QueryRefused("quantile_cont(measure, q) takes a measure column and a fraction")
        alpha = _number(arguments[1])
        if alpha is None or not _QUANTILES[0] <= alpha <= _QUANTILES[1]:
            raise QueryRefused(f"quantiles must be literal fractions between {_QUANTILES[0]} and {_QUANTILES[1]}")
        return "quantile", _measure(arguments[0], query, "aggregated"), alpha
    if isinstance(node, exp.AggFunc) or (isinstance(node, exp.Anonymous) and node.name.lower() in ("quantile", "percentile_cont")):
        raise QueryRefused(f"aggregate {_name(node)}() is not offered: use count, sum, avg, median, stddev or quantile_cont "
                           "(min, max and the like can return one patient's value)")
    return None


def _measure(node: exp.Expr | None, query: _Query, use: str) -> _Column:
    if not isinstance(node, exp.Column):
        raise QueryRefused("an aggregate takes a plain measure column (no expressions, CASE or casts inside): "
                           "put conditions in WHERE")
    column = _resolve(node, query)
    if column.role.role != "measure":
        raise _refuse_role(column, use)
    return column


def _dimension(node: exp.Expr, query: _Query) -> tuple[exp.Expr, str, bool, str]:
    """``(expression, canonical, per patient, default name)`` of a dimension item."""
    if isinstance(node, exp.Column):
        column = _resolve(node, query)
        if column.role.role != "dimension":
            raise _refuse_role(column, "grouped by")
        return column.ref(), column.canonical, column.view.name in PER_PATIENT_VIEWS, column.name
    part = _date_part(node)
    if part is not None:
        column = _resolve(part[1], query)
        if column.role.role != "date":
            raise QueryRefused(f"{part[0]}() takes a date column, and {column.canonical} is a {column.role.role}")
        return _date_expression(part[0], column), f"{part[0]}({column.canonical})", column.view.name in PER_PATIENT_VIEWS, \
            f"{part[0]}_{column.name}"
    raise QueryRefused(f"{_construct(node)} is not allowed in SELECT: select dimension columns, "
                       "year(date) or month(date), and aggregates (no functions, CASE, casts or arithmetic)")


def _date_part(node: exp.Expr) -> tuple[str, exp.Column] | None:
    if isinstance(node, exp.Year | exp.Month) and isinstance(node.this, exp.Column):
        return ("year" if isinstance(node, exp.Year) else "month"), node.this
    if isinstance(node, exp.Anonymous) and node.name.lower() in ("year", "month") and len(node.expressions) == 1 \
            and isinstance(node.expressions[0], exp.Column):
        return node.name.lower(), node.expressions[0]
    return None


def _date_expression(part: str, column: _Column) -> exp.Expr:
    """The year (integer) or month (``YYYY-MM``) of a date column, ISO text or timestamp."""
    ref = column.ref()
    if column.type.upper() == "VARCHAR":
        if part == "year":
            return exp.TryCast(this=exp.Left(this=ref, expression=exp.Literal.number(4)), to=exp.DataType.build("INTEGER"))
        return exp.Left(this=ref, expression=exp.Literal.number(7))
    if part == "year":
        return exp.Year(this=ref)
    return exp.Anonymous(this="strftime", expressions=[ref, exp.Literal.string("%Y-%m")])


# ----------------------------------------------------------------------------------- WHERE


def _condition(node: exp.Expr, query: _Query) -> exp.Expr:
    """``node`` rebuilt from checked parts: comparisons of filterable columns with literals of
    their type, combined by AND, OR, NOT and parentheses."""
    if isinstance(node, exp.Paren):
        return _condition(node.this, query)
    if isinstance(node, exp.And | exp.Or):
        left, right = _condition(node.this, query), _condition(node.expression, query)
        return (exp.and_ if isinstance(node, exp.And) else exp.or_)(exp.paren(left), exp.paren(right), copy=False)
    if isinstance(node, exp.Not):
        return exp.not_(exp.paren(_condition(node.this, query)), copy=False)
    if type(node) in _COMPARISONS:
        assert isinstance(node, exp.Binary)
        op = _COMPARISONS[type(node)]
        if isinstance(node.expression, exp.Column) and not isinstance(node.this, exp.Column):
            column_node, literal_node, op = node.expression, node.this, _FLIPPED[op]
        else:
            column_node, literal_node = node.this, node.expression
        column = _filter_column(column_node, query)
        return _OPERATORS[op](this=column.ref(), expression=_literal(literal_node, column))
    if isinstance(node, exp.In):
        if node.args.get("query") or node.args.get("unnest") or node.args.get("field") or not node.expressions:
            raise QueryRefused("IN takes a list of literals, never a subquery")
        column = _filter_column(node.this, query)
        return exp.In(this=column.ref(), expressions=[_literal(v, column) for v in node.expressions])
    if isinstance(node, exp.Between):
        column = _filter_column(node.this, query)
        return exp.Between(this=column.ref(), low=_literal(node.args["low"], column), high=_literal(node.args["high"], column))
    if isinstance(node, exp.Is):
        column = _filter_column(node.this, query)
        if not isinstance(node.expression, exp.Null):
            raise QueryRefused("IS takes NULL only (IS NULL, IS NOT NULL)")
        return exp.Is(this=column.ref(), expression=exp.null())
    raise QueryRefused(f"{_construct(node)} is not allowed in WHERE: compare a column with a literal "
                       "(=, <>, <, <=, >, >=, IN, BETWEEN, IS NULL) and combine with AND, OR, NOT")


def _filter_column(node: exp.Expr, query: _Query) -> _Column:
    if not isinstance(node, exp.Column):
        raise QueryRefused(f"{_construct(node)} cannot be compared: WHERE compares a plain column with literals "
                           "(no subqueries, functions, casts or arithmetic)")
    column = _resolve(node, query)
    if column.role.role not in ("dimension", "measure", "date"):
        raise _refuse_role(column, "filtered on")
    return column


def _literal(node: exp.Expr, column: _Column) -> exp.Expr:
    """A literal of ``column``'s type (a fresh node), or QueryRefused: a literal of another type
    would make DuckDB convert the column, which can fail on some rows only (an oracle)."""
    kind = column.type.upper()
    if kind == "BOOLEAN":
        if isinstance(node, exp.Boolean):
            return exp.Boolean(this=bool(node.this))
        raise QueryRefused(f"{column.canonical} is true or false: compare it with TRUE or FALSE")
    if kind.startswith(_NUMERIC):
        number = _number(node)
        if number is None:
            raise QueryRefused(f"{column.canonical} is a number: compare it with a number literal")
        return exp.Literal.number(repr(number) if not float(number).is_integer() else int(number))
    text = node.this if isinstance(node, exp.Literal) and node.is_string else None
    if text is None:
        raise QueryRefused(f"{column.canonical} is text: compare it with a quoted string literal")
    if column.role.role == "date" and not _ISO_DATE.match(text):
        raise QueryRefused(f"{column.canonical} is a date: compare it with an ISO date such as '2024-01-31'")
    if len(text) > 200:
        raise QueryRefused("string literals are at most 200 characters")
    return exp.Literal.string(text)


def _number(node: exp.Expr | None) -> float | None:
    if isinstance(node, exp.Neg):
        inner = _number(node.this)
        return None if inner is None else -inner
    if isinstance(node, exp.Literal) and node.is_number:
        try:
            return float(node.this)
        except ValueError:
            return None
    return None


def _construct(node: exp.Expr) -> str:
    """What ``node`` is, in words (never its text: a refusal must not echo literals back)."""
    if isinstance(node, exp.Subquery | exp.Select | exp.Exists) or node.find(exp.Select) is not None:
        return "a subquery"
    if isinstance(node, exp.Anonymous):
        return f"function {node.name}()"
    if isinstance(node, exp.Func):
        return f"{node.key.upper()}()"
    return f"an expression of kind {node.key.upper()}"


def _name(node: exp.Expr) -> str:
    return node.name if isinstance(node, exp.Anonymous) else node.key


# ----------------------------------------------------------------------------------- GROUP BY, ORDER BY, LIMIT


def _check_grouping(select: exp.Select, query: _Query) -> None:
    group = select.args.get("group")
    if group is None:
        if query.dimensions:
            raise QueryRefused("dimensions need GROUP BY: group by every selected dimension (or GROUP BY ALL)")
        return
    if group.args.get("all"):
        return
    extra = sorted(k for k, v in group.args.items() if v and k != "expressions")
    if extra:
        raise QueryRefused("ROLLUP, CUBE and GROUPING SETS are not offered: use a plain GROUP BY")
    grouped: set[str] = set()
    for item in group.expressions:
        grouped.add(_output_of(item, query, "GROUP BY"))
    selected = {name for name, *_ in query.dimensions}
    if grouped != selected:
        raise QueryRefused("GROUP BY must list exactly the selected dimensions (or write GROUP BY ALL)")


def _output_of(node: exp.Expr, query: _Query, clause: str) -> str:
    """The output column ``node`` refers to: a position, an output name, or a selected dimension."""
    if isinstance(node, exp.Literal) and node.is_int and 1 <= int(node.this) <= len(query.output):
        return query.output[int(node.this) - 1]
    if isinstance(node, exp.Column) and not node.table:
        for name in query.output:
            if name.lower() == node.name.lower():
                return name
    try:
        _, canonical, _, _ = _dimension(node, query)
    except QueryRefused as exc:
        raise QueryRefused(f"{clause} takes output names, positions or selected dimensions: {exc.reason}") from exc
    for name, _expr, known, _ in query.dimensions:
        if known == canonical:
            return name
    raise QueryRefused(f"{clause} names a dimension that is not selected: select it, or group by what you select")


def _order(select: exp.Select, query: _Query) -> tuple[tuple[str, bool], ...]:
    order = select.args.get("order")
    if order is None:
        return ()
    return tuple((_output_of(o.this, query, "ORDER BY"), bool(o.args.get("desc"))) for o in order.expressions)


def _limit(select: exp.Select) -> int | None:
    limit = select.args.get("limit")
    if limit is None:
        return None
    value = limit.args.get("expression")
    if not (isinstance(value, exp.Literal) and value.is_int) or int(value.this) < 0 or limit.args.get("offset"):
        raise QueryRefused("LIMIT takes a whole number")
    return int(value.this)


# ----------------------------------------------------------------------------------- the plan


def _plan(select: exp.Select, query: _Query, condition: exp.Expr | None) -> AggregatePlan:
    """The per-(patient, cell) query of the checked question, built from fresh nodes."""
    first = query.order[0]
    rows = exp.select(exp.alias_(exp.column(PK, table=first, quoted=True), PK))
    source = exp.table_(query.tables[first].name, db="gold", alias=first, quoted=True)
    rows = rows.from_(source, copy=False)
    for alias in query.order[1:]:
        table = exp.table_(query.tables[alias].name, db="gold", alias=alias, quoted=True)
        on = exp.EQ(this=exp.column(PK, table=alias, quoted=True), expression=exp.column(PK, table=first, quoted=True))
        rows = rows.join(table, on=on, join_type="INNER", copy=False)
    for i, (_, expression, _, _) in enumerate(query.dimensions):
        rows = rows.select(exp.alias_(expression, DIMENSION.format(i)), copy=False)
    rows = rows.select(exp.alias_(exp.Count(this=exp.Star()), ROWS), copy=False)
    for i, measure in enumerate(query.measures):
        low, high = measure.role.bounds or (0.0, 0.0)
        clamped = exp.Greatest(this=exp.Literal.number(low), expressions=[
            exp.Least(this=exp.cast(measure.ref(), "DOUBLE"), expressions=[exp.Literal.number(high)])])
        rows = rows.select(exp.alias_(exp.Avg(this=clamped), MEASURE_VALUE.format(i)),
                           exp.alias_(exp.Count(this=measure.ref()), MEASURE_COUNT.format(i)), copy=False)
    if condition is not None:
        rows = rows.where(condition, copy=False)
    rows = rows.group_by(exp.column(PK, table=first, quoted=True),
                         *[exp.column(DIMENSION.format(i)) for i in range(len(query.dimensions))], copy=False)
    return AggregatePlan(
        query=rows, dimensions=tuple(name for name, *_ in query.dimensions), statistics=tuple(query.statistics),
        canonical=_canonical(query, condition), cells_per_patient=_cells_per_patient(query, condition),
        rows_per_patient=1 if all(view.name in PER_PATIENT_VIEWS for view in query.tables.values()) else None,
        order=_order(select, query), limit=_limit(select))


def _cells_per_patient(query: _Query, condition: exp.Expr | None) -> int:
    """How many cells one patient can fall in: 1 when every dimension is a property of the
    patient; else the product of the values a top-level ``col IN (...)`` / ``col = ...`` allows
    for the other dimensions (large when unrestricted; the release bounds it)."""
    restricted: dict[str, int] = {}
    conjuncts = list(condition.flatten()) if isinstance(condition, exp.And) else [condition] if condition is not None else []
    for part in conjuncts:
        part = part.unnest()
        if isinstance(part, exp.EQ) and isinstance(part.this, exp.Column):
            restricted[part.this.sql()] = 1
        elif isinstance(part, exp.In) and isinstance(part.this, exp.Column):
            restricted[part.this.sql()] = min(restricted.get(part.this.sql(), 1_000_000), len(part.expressions))
    cells = 1
    for _, expression, _, per_patient in query.dimensions:
        if not per_patient:
            cells *= restricted.get(expression.sql(), 1_000_000) if isinstance(expression, exp.Column) else 1_000_000
    return min(cells, 1_000_000)


def _canonical(query: _Query, condition: exp.Expr | None) -> str:
    """The question in a normal form: views, dimensions, statistics, and the condition with its
    AND/OR operands and IN lists sorted and aliases replaced by view names."""
    return json.dumps({
        "views": sorted(query.tables[a].name for a in query.order),
        "dimensions": [canonical for _, _, canonical, _ in query.dimensions],
        "statistics": [[s.kind, query.measures[s.measure].canonical if s.measure is not None else None, s.alpha]
                       for s in query.statistics],
        "where": _canonical_condition(condition, query) if condition is not None else None,
    }, sort_keys=True)


def _canonical_condition(node: exp.Expr, query: _Query) -> object:
    node = node.unnest()
    if isinstance(node, exp.And | exp.Or):
        parts = [_canonical_condition(p, query) for p in node.flatten()]
        return ["and" if isinstance(node, exp.And) else "or", sorted(parts, key=json.dumps)]
    if isinstance(node, exp.Not):
        return ["not", _canonical_condition(node.this, query)]
    columns = {alias: view.name for alias, view in query.tables.items()}
    renamed = node.copy()
    for column in renamed.find_all(exp.Column):
        column.set("table", exp.to_identifier(columns.get(column.table, column.table)))
    if isinstance(renamed, exp.In):
        renamed.set("expressions", sorted(renamed.expressions, key=lambda e: e.sql()))
    return renamed.sql(dialect="duckdb")

