"""Compile a whole ViewDefinition: one SELECT over a relation of resources, for any engine.

The query reads from a placeholder relation (aliased ``r``) whose columns are the resource's
top-level elements typed as in :attr:`CompiledView.read_columns`; the runner supplies it
(``read_json`` over NDJSON files, or a relation of resource JSON). Rows of other resource
types are skipped, or, with ``strict``, stop the query so the runner can name the line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import sqlglot
from sqlglot import exp

from fhirlake.sof.compiler import sql
from fhirlake.sof.compiler.expressions import ExpressionCompiler
from fhirlake.sof.compiler.functions import FUNCTIONS
from fhirlake.sof.compiler.rows import OutputColumn, RowCompiler
from fhirlake.sof.compiler.values import Scope
from fhirlake.sof.engines import dialect
from fhirlake.sof.errors import ViewDefinitionError
from fhirlake.sof.fhirpath import parse as parse_fhirpath
from fhirlake.sof.model import Column, ViewDefinition, Where
from fhirlake.sof.schema import SchemaNode

__all__ = ["WRONG_TYPE_MESSAGE", "CompiledView", "compile_view"]

ROOT_ALIAS = "r"
_ROW = "__row"
WRONG_TYPE_MESSAGE = "fhirlake: resource of another type than the view's"


@dataclass(frozen=True)
class CompiledView:
    """A view compiled to one SQL tree, spelled for DuckDB or Spark by :meth:`sql`.

    ``read_columns`` maps each top-level element the view reads to its DuckDB type
    (``read_structure`` is the same as a nested structure, from which Spark's schema is made);
    ``columns`` are the output columns in order. :meth:`query` builds the SELECT over a
    given source relation.

    Columns that have one value per resource (``per_resource``) are computed as plain
    columns; the others come from ``rows``, a LIST of STRUCT rows unnested into output rows.
    """

    view: ViewDefinition
    read_columns: dict[str, str]
    read_structure: dict[str, Any]
    columns: tuple[OutputColumn, ...]
    per_resource: tuple[tuple[OutputColumn, exp.Expression], ...]
    rows: exp.Expression | None
    filters: tuple[exp.Expression, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def query(self, source: exp.Expression, *, strict: bool = False) -> exp.Select:
        """The SELECT producing the view's rows from ``source`` (a table expression).

        With ``strict``, a row of another resource type stops the query with
        :data:`WRONG_TYPE_MESSAGE` instead of being skipped.
        """
        resource_type = exp.Column(this=sql.identifier("resourceType"), table=exp.to_identifier(ROOT_ALIAS))
        is_view_type = exp.EQ(this=resource_type, expression=exp.Literal.string(self.view.resource))
        type_check: exp.Expression = is_view_type
        if strict:
            type_check = sql.case((is_view_type, exp.true()), default=sql.raise_error(WRONG_TYPE_MESSAGE))
        condition = sql.and_(type_check, *self.filters)
        if not isinstance(source, exp.Table | exp.Subquery):
            source = exp.Table(this=source)  # a table function such as read_json(...)
        from_ = exp.alias_(source, ROOT_ALIAS, table=True)
        projections = [exp.alias_(v, c.name, quoted=True) for c, v in self.per_resource]
        if self.rows is None:
            return exp.select(*projections).from_(from_).where(condition)
        projections.append(exp.alias_(exp.Explode(this=self.rows), _ROW))
        inner = exp.select(*projections).from_(from_).where(condition)
        from_rows = {c.name for c, _ in self.per_resource}
        outer = [
            exp.column(c.name, quoted=True) if c.name in from_rows
            else exp.alias_(sql.field(exp.column(_ROW), c.name), c.name, quoted=True)
            for c in self.columns
        ]
        return exp.select(*outer).from_(inner.subquery("v"))

    def carrying(self, carry: Mapping[str, str]) -> CompiledView:
        """This view with more output columns, after the view's own: ``carry`` maps each output
        name to a column of the source relation copied unchanged into every output row (a key
        to merge rows by, for instance). The source must have those columns beside the
        resource's elements."""
        extra = tuple(
            (OutputColumn(_carried_column(name), None), exp.column(source_column, table=ROOT_ALIAS, quoted=True))
            for name, source_column in carry.items()
        )
        return replace(self, columns=self.columns + tuple(c for c, _ in extra), per_resource=self.per_resource + extra)

    def sql(
        self, source: exp.Expression | None = None, *, pretty: bool = True, strict: bool = False, engine: str = "duckdb"
    ) -> str:
        """The query as SQL text for ``engine`` (``duckdb`` or ``spark``); ``source`` defaults to
        a table named ``resources``."""
        table = source if source is not None else exp.to_table("resources")
        return self.query(table, strict=strict).sql(dialect=dialect(engine), pretty=pretty)


def compile_view(view: ViewDefinition) -> CompiledView:
    """Compile ``view`` to a :class:`CompiledView`.

    Compiles twice when the first pass finds an element that must be read differently
    (a decimal whose precision a boundary function needs); the schema carries over.
    """
    schema = SchemaNode(view.resource)
    expressions = ExpressionCompiler(view.resource, schema, view.constants, FUNCTIONS, root_alias=ROOT_ALIAS)
    compiled = _compile_once(view, expressions)
    if expressions.needs_second_pass:
        expressions = ExpressionCompiler(view.resource, schema, view.constants, FUNCTIONS, root_alias=ROOT_ALIAS)
        compiled = _compile_once(view, expressions)
    return compiled


def _compile_once(view: ViewDefinition, expressions: ExpressionCompiler) -> CompiledView:
    rows = RowCompiler(expressions)
    filters = tuple(_filter(where, expressions) for where in view.where)
    scope = Scope(focus=expressions.root(), row_index=exp.Literal.number(0), pointer="", expression="")
    parts = rows.parts(view.select, scope)
    # Single parts stay plain columns; the list parts are multiplied into one list of rows.
    per_resource = tuple(
        (column, value)
        for part in parts if part.single is not None
        for column, value in zip(part.columns, part.single, strict=True)
    )
    list_parts = [p for p in parts if p.single is None]
    rows_sql = rows.product(list_parts).as_rows() if list_parts else None
    expressions.schema.adopt("resourceType", SchemaNode("code"))
    return CompiledView(
        view=view,
        read_columns=expressions.schema.read_columns(),
        read_structure=expressions.schema.read_structure(),
        columns=rows.product(parts).columns,
        per_resource=per_resource,
        rows=rows_sql,
        filters=filters,
    )


def _carried_column(name: str) -> Column:
    """The model of a column copied from the source relation, not computed from the resource."""
    return Column(name=name, path=name, expression=parse_fhirpath(name), pointer=f"/carried/{name}")


def _filter(where: Where, expressions: ExpressionCompiler) -> exp.Expression:
    """A view-level where as a SQL condition; it must be a boolean (empty counts as false)."""
    scope = Scope(focus=expressions.root(), row_index=exp.Literal.number(0), pointer=where.pointer, expression=where.path)
    value = expressions.compile(where.expression, scope)
    if value.type not in ("boolean", None) or value.root or value.choice is not None:
        raise ViewDefinitionError(where.pointer, f"a where path must be boolean, but {where.path!r} is {value.type}")
    single = expressions.single(value, scope, where.expression, "where path")
    return sql.coalesce(expressions.sql_of(single, scope, where.expression), exp.false())


def format_sql(text: str, engine: str = "duckdb") -> str:
    """Pretty-print SQL of ``engine``."""
    return sqlglot.transpile(text, read=dialect(engine), write=dialect(engine), pretty=True)[0]
