"""Compile a view's select tree into row sets.

The SQL-on-FHIR processing model, per resource: a select's own columns make one row; each
nested select and its unionAll make row lists; the select's rows are the Cartesian product of
those parts; forEach / forEachOrNull / repeat run the whole select once per focus item.

A :class:`RowSet` is either *single* (exactly one row: one SQL expression per column, the
common case, which becomes plain columns) or a *list* (one SQL expression that evaluates to a
LIST of STRUCT rows, unnested at the top). Products and unions of row sets are built with
list functions, so a whole resource is processed by one expression and the input is
scanned once, whatever the shape of the view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlglot import exp

from fhirlake.sof import registry
from fhirlake.sof.compiler import sql
from fhirlake.sof.compiler.expressions import ExpressionCompiler
from fhirlake.sof.compiler.values import Scope, Value
from fhirlake.sof.errors import ViewDefinitionError
from fhirlake.sof.fhirpath import EnvVar
from fhirlake.sof.model import Column, PathExpression, Select
from fhirlake.sof.schema import SchemaNode

__all__ = ["OutputColumn", "RowCompiler", "RowSet"]

# How many levels deep a `repeat` follows its paths; deeper data is reported, never dropped.
REPEAT_DEPTH = 8
_MULTIPLE_VALUES = "Multiple values found but not expected for column"


@dataclass(frozen=True, slots=True)
class OutputColumn:
    """A column of the view's output: its model and SQL type, spelled as in DuckDB and parsed by
    sqlglot for any engine (None: as computed)."""

    column: Column
    sql_type: str | None

    @property
    def name(self) -> str:
        return self.column.name


@dataclass(frozen=True, slots=True)
class RowSet:
    """Rows made by (part of) a select: ``single`` values for exactly one row, or ``rows``, a
    LIST of STRUCT rows."""

    columns: tuple[OutputColumn, ...]
    single: tuple[exp.Expression, ...] | None = None
    rows: exp.Expression | None = None

    def as_rows(self) -> exp.Expression:
        """The rows as a LIST of STRUCT, whatever the form."""
        if self.rows is not None:
            return self.rows
        assert self.single is not None
        return sql.list_of(self.as_struct())

    def as_struct(self) -> exp.Expression:
        assert self.single is not None
        return sql.struct([(c.name, v) for c, v in zip(self.columns, self.single, strict=True)])

    def fields_of(self, row: exp.Expression) -> list[tuple[str, exp.Expression]]:
        """(name, SQL) of each column, read from this row set for one row ``row`` of it."""
        if self.single is not None:
            return [(c.name, v) for c, v in zip(self.columns, self.single, strict=True)]
        return [(c.name, sql.field(row, c.name)) for c in self.columns]


class RowCompiler:
    """Turns selects into row sets, using ``expressions`` for every FHIRPath."""

    def __init__(self, expressions: ExpressionCompiler) -> None:
        self.expressions = expressions

    # -- selects -------------------------------------------------------------------------
    def select(self, select: Select, scope: Scope) -> RowSet:
        """All rows of ``select`` for the focus of ``scope``."""
        if select.for_each is not None or select.for_each_or_null is not None:
            return self._for_each(select, scope)
        if select.repeat:
            return self._repeat(select, scope)
        return self.product(self.parts(select, scope))

    def parts(self, select: Select, scope: Scope) -> list[RowSet]:
        """The row sets whose product is ``select``'s rows: its columns, nested selects, unionAll."""
        parts: list[RowSet] = []
        if select.columns:
            compiled = [self.column(c, scope) for c in select.columns]
            parts.append(RowSet(columns=tuple(o for o, _ in compiled), single=tuple(v for _, v in compiled)))
        parts.extend(self.select(nested, scope) for nested in select.selects)
        if select.union_all:
            parts.append(self._union([self.select(b, scope) for b in select.union_all]))
        return parts

    def product(self, parts: Sequence[RowSet]) -> RowSet:
        """The Cartesian product of row sets (columns in order)."""
        result = parts[0]
        for part in parts[1:]:
            result = self._product2(result, part)
        return result

    def _product2(self, left: RowSet, right: RowSet) -> RowSet:
        columns = left.columns + right.columns
        if left.single is not None and right.single is not None:
            return RowSet(columns=columns, single=left.single + right.single)
        if left.single is not None:
            name = self.expressions.fresh_name("row")
            body = sql.struct(left.fields_of(exp.column(name)) + right.fields_of(exp.column(name)))
            return RowSet(columns=columns, rows=sql.list_transform(right.as_rows(), [name], body))
        if right.single is not None:
            name = self.expressions.fresh_name("row")
            body = sql.struct(left.fields_of(exp.column(name)) + right.fields_of(exp.column(name)))
            return RowSet(columns=columns, rows=sql.list_transform(left.as_rows(), [name], body))
        outer, inner = self.expressions.fresh_name("row"), self.expressions.fresh_name("row")
        body = sql.struct(left.fields_of(exp.column(outer)) + right.fields_of(exp.column(inner)))
        pairs = sql.list_transform(left.as_rows(), [outer], sql.list_transform(right.as_rows(), [inner], body))
        return RowSet(columns=columns, rows=sql.flatten(pairs))

    def _union(self, branches: list[RowSet]) -> RowSet:
        columns = branches[0].columns
        if all(b.single is not None for b in branches):
            return RowSet(columns=columns, rows=sql.list_of(*(b.as_struct() for b in branches)))
        merged = branches[0].as_rows()
        for branch in branches[1:]:
            merged = sql.list_concat(merged, branch.as_rows())
        return RowSet(columns=columns, rows=merged)

    # -- iteration -----------------------------------------------------------------------
    def focus_list(self, path: PathExpression, scope: Scope) -> tuple[Value, exp.Expression]:
        """Compile an iteration path: the focus value (its type, node) and its items as a list."""
        inner = replace(scope, pointer=path.pointer, expression=path.text)
        foci = self.expressions.compile(path.expression, inner)
        if foci.choice is not None or foci.root:
            raise self.expressions.error(inner, path.expression, "forEach needs a path to elements")
        return foci, self.expressions.as_list(foci, inner, path.expression)

    def _for_each(self, select: Select, scope: Scope) -> RowSet:
        path = select.for_each if select.for_each is not None else select.for_each_or_null
        assert path is not None
        foci, items = self.focus_list(path, scope)
        focus_name, index_name = self.expressions.fresh_name("f"), self.expressions.fresh_name("i")
        item = replace(foci, sql=exp.column(focus_name), many=False, text=None)
        row_index = exp.Paren(this=exp.Sub(this=exp.column(index_name), expression=exp.Literal.number(1)))
        inner = self.product(self.parts(select, replace(scope, focus=item, row_index=row_index)))
        if inner.single is not None:
            rows = sql.list_transform(items, [focus_name, index_name], inner.as_struct())
        else:
            rows = sql.flatten(sql.list_transform(items, [focus_name, index_name], inner.rows or inner.as_rows()))
        if select.for_each_or_null is not None:
            empty = exp.EQ(this=sql.length_or_zero(items), expression=exp.Literal.number(0))
            rows = sql.case((empty, sql.list_of(self._null_row(inner.columns))), default=rows)
        return RowSet(columns=inner.columns, rows=rows)

    def _null_row(self, columns: tuple[OutputColumn, ...]) -> exp.Expression:
        """The one row forEachOrNull emits when there is nothing to iterate: every column NULL
        (a collection column empty), but %rowIndex columns, which are 0."""
        values = []
        for out in columns:
            if isinstance(out.column.expression, EnvVar) and out.column.expression.name == "rowIndex":
                value: exp.Expression = exp.Literal.number(0)
            elif out.column.collection:
                value = sql.empty_list(out.sql_type)
            else:
                value = sql.null()
            if out.sql_type is not None:
                value = sql.cast(value, out.sql_type + ("[]" if out.column.collection else ""))
            values.append((out.name, value))
        return sql.struct(values)

    def _repeat(self, select: Select, scope: Scope) -> RowSet:
        """``repeat``: every node reachable through the paths, depth first, at any depth.

        Each level of nesting has its own read-schema node (a finite STRUCT type), so the
        traversal is unrolled to REPEAT_DEPTH levels; data nested deeper stops the query with
        a clear error instead of being lost. Every node is first projected onto one *payload*
        shape (what the select reads of it), so all levels fit in one list.
        """
        expressions = self.expressions
        pointer = f"{select.pointer}/repeat"
        # The select's own paths, compiled once against the payload shape.
        payload = SchemaNode(None)
        levels: list[tuple[Value, exp.Expression]] = []
        first, first_items = self._repeat_step(select, scope.focus, scope, pointer)
        payload.fhir_type = first.type
        levels.append((first, first_items))
        focus_name, index_name = expressions.fresh_name("f"), expressions.fresh_name("i")
        item = Value(sql=exp.column(focus_name), type=first.type, node=payload)
        row_index = exp.Paren(this=exp.Sub(this=exp.column(index_name), expression=exp.Literal.number(1)))
        inner_scope = replace(scope, focus=item, row_index=row_index)
        if first.type is None:  # the paths lead nowhere on this type: no rows, typed columns
            with expressions.lenient():
                inner = self.product(self.parts(select, inner_scope))
            none = expressions.fresh_name("row")  # an empty list, typed by a NULL row of the columns
            return RowSet(columns=inner.columns, rows=sql.list_filter(sql.list_of(self._null_row(inner.columns)), none, exp.false()))
        inner = self.product(self.parts(select, inner_scope))
        flattened = self._depth_first(select, first, first_items, payload, scope, pointer, depth=1)
        if inner.single is not None:
            rows = sql.list_transform(flattened, [focus_name, index_name], inner.as_struct())
        else:
            rows = sql.flatten(sql.list_transform(flattened, [focus_name, index_name], inner.as_rows()))
        return RowSet(columns=inner.columns, rows=rows)

    def _repeat_step(self, select: Select, focus: Value, scope: Scope, pointer: str) -> tuple[Value, exp.Expression]:
        """Follow every repeat path once from ``focus``: the children, as one list."""
        values = []
        for path in select.repeat:
            inner = replace(scope, focus=focus, pointer=path.pointer, expression=path.text)
            # An element missing from a level's type is empty there (answer.item at the root).
            with self.expressions.lenient():
                values.append((self.expressions.compile(path.expression, inner), inner, path.expression))
        shared: SchemaNode | None = None
        lists = []
        for value, inner, expression in values:
            if value.node is not None:
                shared = value.node if shared is None else _share(shared, value.node, focus.node)
            lists.append(self.expressions.as_list(value, inner, expression))
        merged = lists[0]
        for other in lists[1:]:
            merged = sql.list_concat(merged, other)
        first = values[0][0]
        return replace(first, node=shared), merged

    def _depth_first(
        self, select: Select, level: Value, items: exp.Expression, payload: SchemaNode,
        scope: Scope, pointer: str, depth: int,
    ) -> exp.Expression:
        """The nodes of ``items`` and all their descendants, depth first, projected on ``payload``."""
        expressions = self.expressions
        name = expressions.fresh_name("node")
        node_value = replace(level, sql=exp.column(name), many=False, text=None)
        if level.node is not None:
            level.node.merge(_copy_shape(payload))
        projected = _project(exp.column(name), payload, expressions)
        if depth >= REPEAT_DEPTH:
            children_value, children = self._repeat_step(select, node_value, scope, pointer)
            if children_value.node is not None:
                children_value.node.as_json = True
            too_deep = exp.GT(this=sql.length_or_zero(children), expression=exp.Literal.number(0))
            message = f"repeat at {pointer} found data nested more than {REPEAT_DEPTH} levels deep"
            body: exp.Expression = sql.case((too_deep, sql.raise_error(message)), default=sql.list_of(projected))
        else:
            children_value, children = self._repeat_step(select, node_value, scope, pointer)
            below = self._depth_first(select, children_value, children, payload, scope, pointer, depth + 1)
            body = sql.list_concat(sql.list_of(projected), below)
        return sql.flatten(sql.list_transform(items, [name], body))

    # -- columns -------------------------------------------------------------------------
    def column(self, column: Column, scope: Scope) -> tuple[OutputColumn, exp.Expression]:
        """A column's output type and its SQL for the focus of ``scope``."""
        inner = replace(scope, pointer=f"{column.pointer}/path", expression=column.path)
        value = self.expressions.compile(column.expression, inner)
        value_sql = self.expressions.sql_of(value, inner, column.expression)
        _check_declared_type(column, value)
        sql_type = _output_type(column, value)
        if value.node is not None and value.type is not None and not registry.is_primitive(value.type):
            value.node.whole = True  # the column returns the whole element
        if column.collection:
            listed = self.expressions.as_list(value, inner, column.expression)
            result = sql.coalesce(listed, sql.empty_list(sql_type))
            if sql_type is not None:
                result = sql.cast(result, f"{sql_type}[]")
            return OutputColumn(column, sql_type), result
        if value.many:
            message = f"{_MULTIPLE_VALUES} {column.name!r} ({column.pointer}/path)"
            value_sql = sql.case(
                (exp.GT(this=sql.length_or_zero(value_sql), expression=exp.Literal.number(1)), sql.raise_error(message)),
                default=sql.list_extract(value_sql, exp.Literal.number(1)),
            )
        if sql_type is not None and not _already(value, sql_type):
            value_sql = sql.cast(value_sql, sql_type, safe=column.tag("ansi/type") is not None)
        return OutputColumn(column, sql_type), value_sql


def _output_type(column: Column, value: Value) -> str | None:
    """The DuckDB type of a column: its ansi/type tag, else its declared or inferred FHIR type."""
    ansi = column.tag("ansi/type")
    if ansi:
        return ansi
    return registry.output_sql_type(column.type or value.type)


_FAMILIES = {"boolean": "boolean", "integer": "number", "positiveInt": "number", "unsignedInt": "number",
             "integer64": "number", "decimal": "number"}


def _family(fhir_type: str) -> str:
    """boolean, number, text (every other primitive) or complex."""
    if not registry.is_primitive(fhir_type):
        return "complex"
    return _FAMILIES.get(fhir_type, "text")


def _check_declared_type(column: Column, value: Value) -> None:
    """A declared ``type`` must fit what the path returns (the spec: "should report an error").

    Only clear conflicts are errors: boolean vs number vs text vs a complex type; within a
    family (code and string, integer and decimal) any declared type is accepted.
    """
    if column.type is None or value.type is None or column.tag("ansi/type"):
        return
    if _family(column.type) == _family(value.type):
        return  # complex types are not compared: a type may be an element id (Observation.referenceRange)
    raise ViewDefinitionError(
        f"{column.pointer}/type",
        f"column {column.name!r} is declared {column.type} but its path {column.path!r} gives {value.type}",
    )


def _already(value: Value, sql_type: str) -> bool:
    """True when a value read from the input already has ``sql_type`` (no cast needed)."""
    if value.node is None or value.type is None or not registry.is_primitive(value.type):
        return False
    return value.text is None and registry.read_sql_type(value.type) == sql_type


def _share(shared: SchemaNode, node: SchemaNode, parent: SchemaNode | None) -> SchemaNode:
    """Make every path of one repeat level lead to the same schema node, so their lists concat."""
    if node is shared:
        return shared
    shared.merge(node)
    if parent is not None:
        _replace_node(parent, node, shared)
    return shared


def _replace_node(tree: SchemaNode, old: SchemaNode, new: SchemaNode) -> None:
    for name, child in list(tree.children.items()):
        if child is old:
            tree.adopt(name, new)
        elif child is not new:
            _replace_node(child, old, new)


def _copy_shape(node: SchemaNode) -> SchemaNode:
    copy = SchemaNode(node.fhir_type, node.array, whole=node.whole, as_text=node.as_text, as_json=node.as_json)
    copy.children = {n: _copy_shape(c) for n, c in node.children.items()}
    return copy


def _project(value: exp.Expression, shape: SchemaNode, expressions: ExpressionCompiler) -> exp.Expression:
    """Rebuild ``value`` with exactly the fields of ``shape`` (dropping the recursion fields)."""
    if not shape.children or shape.whole or registry.is_primitive(shape.fhir_type):
        return value
    fields = []
    for name, child in shape.children.items():
        field_sql = sql.field(value, name)
        if child.children and not child.whole and not registry.is_primitive(child.fhir_type):
            if child.array:
                item = expressions.fresh_name("p")
                field_sql = sql.list_transform(field_sql, [item], _project(exp.column(item), child, expressions))
            else:
                field_sql = sql.case((sql.is_not_null(field_sql), _project(field_sql, child, expressions)))
        fields.append((name, field_sql))
    return sql.struct(fields)
