"""Compile a FHIRPath syntax tree to a SQL expression (a sqlglot tree of typed nodes).

The compiler decides, for each step, whether a value is a single item or a list, from the R4
element registry; it never guesses from data. Lists hold no NULL items and an empty list may be
NULL, so every function below treats NULL and [] alike. FHIRPath's empty collection is SQL's
NULL for single items, which gives FHIRPath's three-valued logic for free.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace

from sqlglot import exp

from fhirlake.sof import registry
from fhirlake.sof.compiler import sql
from fhirlake.sof.compiler.values import Scope, Value
from fhirlake.sof.errors import ViewDefinitionError
from fhirlake.sof.fhirpath import Binary, Call, EnvVar, Indexer, Literal, Member, Node, This, Unary
from fhirlake.sof.model import Constant
from fhirlake.sof.schema import SchemaNode

__all__ = ["ExpressionCompiler"]

# Names FHIRPath gives its own types (System.String) mapped to the FHIR primitive spelling.
_SYSTEM_TYPES = {"String": "string", "Integer": "integer", "Decimal": "decimal",
                 "Boolean": "boolean", "Date": "date", "DateTime": "dateTime", "Time": "time"}
_NUMERIC = frozenset({"integer", "decimal", "positiveInt", "unsignedInt", "integer64"})
_INTEGERS = frozenset({"integer", "positiveInt", "unsignedInt", "integer64"})
_STRINGY = frozenset({"string", "code", "id", "uri", "url", "canonical", "oid", "uuid",
                      "markdown", "base64Binary", "date", "dateTime", "time", "instant"})
_COMPARISONS: dict[str, type[exp.Expression]] = {"<": exp.LT, ">": exp.GT, "<=": exp.LTE, ">=": exp.GTE}

FunctionHandler = Callable[["ExpressionCompiler", Call, Value, Scope], Value]


class ExpressionCompiler:
    """Compiles the FHIRPath expressions of one view against its resource type.

    ``root_alias`` is the SQL alias of the input relation, whose columns are the resource's
    top-level elements; ``schema`` collects what the view reads.
    """

    def __init__(
        self,
        resource_type: str,
        schema: SchemaNode,
        constants: tuple[Constant, ...],
        functions: Mapping[str, FunctionHandler],
        *,
        root_alias: str = "r",
    ) -> None:
        self.resource_type = resource_type
        self.schema = schema
        self.constants = {c.name: c for c in constants}
        self.functions = functions
        self.root_alias = root_alias
        self.needs_second_pass = False
        self._lambda_count = 0
        self._lenient = False

    @contextmanager
    def lenient(self) -> Iterator[None]:
        """Within this block, an element a type does not have is empty instead of an error."""
        previous, self._lenient = self._lenient, True
        try:
            yield
        finally:
            self._lenient = previous

    # -- entry points --------------------------------------------------------------------
    def root(self) -> Value:
        """The resource itself, as the focus of a view's top-level paths."""
        return Value(sql=None, type=self.resource_type, node=self.schema, root=True)

    def compile(self, node: Node, scope: Scope) -> Value:
        """Compile ``node`` in ``scope``."""
        if isinstance(node, Member):
            return self._member_expression(node, scope)
        if isinstance(node, Call):
            target = self.compile(node.target, scope) if node.target is not None else scope.focus
            handler = self.functions[node.name]
            return handler(self, node, target, scope)
        if isinstance(node, Literal):
            return self._literal(node)
        if isinstance(node, This):
            return scope.focus
        if isinstance(node, EnvVar):
            return self._env_var(node, scope)
        if isinstance(node, Indexer):
            return self._indexer(node, scope)
        if isinstance(node, Unary):
            operand = self.single(self.compile(node.operand, scope), scope, node)
            if node.operator == "-":
                return operand.with_sql(exp.Neg(this=operand.sql))
            return operand
        if isinstance(node, Binary):
            return self._binary(node, scope)
        raise self.error(scope, node, f"unsupported expression {type(node).__name__}")

    # -- helpers shared with the function table ------------------------------------------
    def fresh_name(self, prefix: str = "x") -> str:
        """A lambda parameter name unique within the view."""
        self._lambda_count += 1
        return f"{prefix}{self._lambda_count}"

    def error(self, scope: Scope, node: Node | None, reason: str) -> ViewDefinitionError:
        """A ViewDefinitionError at the current path, naming the position in the expression."""
        where = f" at position {node.position}" if node is not None else ""
        return ViewDefinitionError(scope.pointer, f"{reason}{where} in {scope.expression!r}")

    def sql_of(self, value: Value, scope: Scope, node: Node | None) -> exp.Expression:
        """The SQL of a value that must have one (not the resource root, not a bare choice)."""
        if value.choice is not None:
            raise self.error(scope, node, f"choice element {value.choice.name!r} needs ofType()")
        if value.root or value.sql is None:
            raise self.error(scope, node, "the resource itself cannot be used as a value here")
        return value.sql

    def single(self, value: Value, scope: Scope, node: Node | None, what: str = "") -> Value:
        """The value as a single item: a list of more than one item is an error at run time."""
        sql_value = self.sql_of(value, scope, node)
        if not value.many:
            return value
        message = f"{what or 'expression'} returned several values where one was expected: {scope.expression!r} ({scope.pointer})"
        checked = sql.case(
            (exp.GT(this=sql.length_or_zero(sql_value), expression=exp.Literal.number(1)),
             sql.raise_error(message)),
            default=sql.list_extract(sql_value, exp.Literal.number(1)),
        )
        return value.with_sql(checked, many=False)

    def as_list(self, value: Value, scope: Scope, node: Node | None) -> exp.Expression:
        """The value as a LIST (NULL or [] when empty)."""
        sql_value = self.sql_of(value, scope, node)
        if value.many:
            return sql_value
        name = self.fresh_name("n")
        return sql.list_filter(sql.list_of(sql_value), name, sql.is_not_null(exp.column(name)))

    def map_items(
        self, value: Value, scope: Scope, node: Node | None, body: Callable[[Value], Value]
    ) -> Value:
        """Apply ``body`` to each item of ``value`` (directly when it is a single item).

        The result is a list when either the input is a list or ``body`` returns lists; NULL
        results are dropped so lists keep holding no NULL items.
        """
        sql_value = self.sql_of(value, scope, node)
        if not value.many:
            return body(value)
        name = self.fresh_name()
        item = replace(value, sql=exp.column(name), many=False, text=None)
        result = body(item)
        result_sql = self.sql_of(result, scope, node)
        mapped = sql.list_transform(sql_value, [name], result_sql)
        if result.many:
            mapped = sql.flatten(mapped)
        else:
            keep = self.fresh_name("k")
            mapped = sql.list_filter(mapped, keep, sql.is_not_null(exp.column(keep)))
        return replace(result, sql=mapped, many=True, text=None)

    def type_name(self, node: Node, scope: Scope) -> str:
        """The type named by a type specifier argument (``Quantity``, ``FHIR.string``...)."""
        if isinstance(node, Member) and node.target is None:
            return node.name
        if isinstance(node, Member) and isinstance(node.target, Member) and node.target.target is None:
            namespace = node.target.name
            if namespace == "System":
                return _SYSTEM_TYPES.get(node.name, node.name)
            if namespace == "FHIR":
                return node.name
        raise self.error(scope, node, "expected a type name")

    # -- navigation ----------------------------------------------------------------------
    def _member_expression(self, node: Member, scope: Scope) -> Value:
        if node.target is None:
            focus = scope.focus
            if focus.root and node.name == self.resource_type:
                return focus  # "Patient.name" starts at the resource
        else:
            focus = self.compile(node.target, scope)
        return self.member(focus, node.name, scope, node)

    def member(self, focus: Value, name: str, scope: Scope, node: Node | None) -> Value:
        """``focus.name``: a child element of every item of ``focus``."""
        if focus.choice is not None:
            raise self.error(scope, node, f"choice element {focus.choice.name!r} needs ofType() before .{name}")
        parent_type = focus.type or ""
        element = registry.element(parent_type, name)
        if element is None and self._lenient:
            return Value(sql=sql.null(), type=None)
        if element is None:
            raise self.error(scope, node, f"{parent_type or 'this value'} has no element {name!r}")
        if element.choice is not None:
            return Value(sql=None, type=None, many=focus.many, choice=element, parent=focus)
        if focus.root:
            return self._root_member(focus, name, element.type, element.array)
        child = focus.node.child(name) if focus.node is not None else None

        def step(item: Value) -> Value:
            assert item.sql is not None
            return self._typed_field(sql.field(item.sql, name), element.type, element.array, child)

        return self.map_items(focus, scope, node, step)

    def _root_member(self, root: Value, name: str, fhir_type: str | None, array: bool) -> Value:
        node = self.schema.child(name)
        value = self._typed_field(
            exp.Column(this=sql.identifier(name), table=exp.to_identifier(self.root_alias)),
            fhir_type, array, node,
        )
        if root.guard is None:
            return value
        assert value.sql is not None
        guarded = sql.case((root.guard, value.sql))
        return replace(value, sql=guarded, text=None if value.text is None else sql.case((root.guard, value.text)))

    def _typed_field(
        self, field_sql: exp.Expression, fhir_type: str | None, array: bool, node: SchemaNode | None
    ) -> Value:
        """A field's value; a decimal read as text (for its precision) is cast back to DOUBLE."""
        if node is not None and node.as_text and fhir_type == "decimal":
            if array:
                name = self.fresh_name("t")
                numbers = sql.list_transform(field_sql, [name], sql.cast(exp.column(name), "DOUBLE"))
                return Value(sql=numbers, type=fhir_type, many=True, node=node, text=field_sql)
            return Value(sql=sql.cast(field_sql, "DOUBLE"), type=fhir_type, node=node, text=field_sql)
        return Value(sql=field_sql, type=fhir_type, many=array, node=node)

    def resolve_choice(self, value: Value, type_name: str, scope: Scope, node: Node | None) -> Value:
        """``value.ofType(T)`` on a choice element: the concrete element ``value<T>``."""
        assert value.choice is not None and value.parent is not None
        concrete = value.choice.choice.get(type_name) if value.choice.choice else None
        if concrete is None:
            # The element never holds that type: always empty.
            return Value(sql=sql.null(), type=type_name, many=False)
        return self.member(value.parent, concrete, scope, node)

    def choice_exists(self, value: Value, scope: Scope, node: Node | None) -> exp.Expression:
        """True when any concrete element of a choice is present."""
        assert value.choice is not None and value.choice.choice and value.parent is not None
        checks = []
        for concrete in value.choice.choice.values():
            present = self.member(value.parent, concrete, scope, node)
            if present.node is not None and not present.node.children:
                present.node.as_json = not registry.is_primitive(present.type)
            checks.append(self.exists_sql(present, scope, node))
        result = checks[0]
        for check in checks[1:]:
            result = exp.Or(this=result, expression=check)
        return result

    def exists_sql(self, value: Value, scope: Scope, node: Node | None) -> exp.Expression:
        """A boolean (never NULL) telling whether ``value`` has any item."""
        if value.choice is not None:
            return self.choice_exists(value, scope, node)
        if value.root:
            return sql.coalesce(value.guard, exp.true()) if value.guard is not None else exp.true()
        sql_value = self.sql_of(value, scope, node)
        if value.many:
            return exp.GT(this=sql.length_or_zero(sql_value), expression=exp.Literal.number(0))
        return sql.is_not_null(sql_value)

    # -- terms ---------------------------------------------------------------------------
    def _literal(self, node: Literal) -> Value:
        if node.type == "empty":
            return Value(sql=sql.null(), type=None)
        return Value(sql=sql.literal(node.value), type=node.type)

    def _env_var(self, node: EnvVar, scope: Scope) -> Value:
        if node.name == "rowIndex":
            return Value(sql=scope.row_index, type="integer")
        if node.name in ("resource", "rootResource", "context"):
            return self.root()
        constant = self.constants.get(node.name)
        if constant is None:
            raise self.error(scope, node, f"undefined constant %{node.name}")
        return Value(sql=sql.literal(constant.value), type=constant.type)

    def _indexer(self, node: Indexer, scope: Scope) -> Value:
        target = self.compile(node.target, scope)
        index = self.single(self.compile(node.index, scope), scope, node.index)
        index_sql = self.sql_of(index, scope, node.index)
        if target.root:
            return target if isinstance(node.index, Literal) and node.index.value == 0 else Value(sql=sql.null(), type=target.type)
        target_sql = self.sql_of(target, scope, node)
        if target.many:
            one_based = exp.Add(this=index_sql, expression=exp.Literal.number(1))
            return target.with_sql(sql.list_extract(target_sql, one_based), many=False)
        return target.with_sql(sql.case((exp.EQ(this=index_sql, expression=exp.Literal.number(0)), target_sql)))

    # -- operators -----------------------------------------------------------------------
    def _binary(self, node: Binary, scope: Scope) -> Value:
        op = node.operator
        left = self.compile(node.left, scope)
        if op in ("is", "as"):
            return self._type_operator(node, left, scope)
        right = self.compile(node.right, scope)
        if op in ("and", "or", "xor", "implies"):
            return self._boolean(op, left, right, scope, node)
        if op in ("=", "!="):
            return self._equality(op, left, right, scope, node)
        if op in ("~", "!~"):
            return self._equivalence(op, left, right, scope, node)
        if op in _COMPARISONS:
            a, b = self._single_operands(left, right, scope, node)
            return Value(sql=_COMPARISONS[op](this=a, expression=b), type="boolean")
        if op == "|":
            merged = sql.list_concat(self.as_list(left, scope, node), self.as_list(right, scope, node))
            return Value(sql=exp.ArrayDistinct(this=merged), type=left.type or right.type, many=True)
        if op in ("in", "contains"):
            item, collection = (left, right) if op == "in" else (right, left)
            item_sql = self.sql_of(self.single(item, scope, node), scope, node)
            contained = exp.ArrayContains(this=self.as_list(collection, scope, node), expression=item_sql)
            return Value(sql=sql.case((sql.is_not_null(item_sql), sql.coalesce(contained, exp.false()))), type="boolean")
        return self._arithmetic(op, left, right, scope, node)

    def _single_operands(self, left: Value, right: Value, scope: Scope, node: Binary) -> tuple[exp.Expression, exp.Expression]:
        """Both operands of an operator that takes single items, as SQL."""
        a = _operand(self.sql_of(self.single(left, scope, node.left), scope, node))
        b = _operand(self.sql_of(self.single(right, scope, node.right), scope, node))
        return a, b

    def _boolean(self, op: str, left: Value, right: Value, scope: Scope, node: Binary) -> Value:
        a, b = self._single_operands(left, right, scope, node)
        if op == "and":
            result: exp.Expression = exp.And(this=a, expression=b)
        elif op == "or":
            result = exp.Or(this=a, expression=b)
        elif op == "xor":
            result = exp.NEQ(this=a, expression=b)
        else:  # implies
            result = exp.Or(this=exp.Not(this=exp.Paren(this=a)), expression=b)
        return Value(sql=exp.Paren(this=result), type="boolean")

    def _equality(self, op: str, left: Value, right: Value, scope: Scope, node: Binary) -> Value:
        if not left.many and not right.many:
            a, b = _operand(self.sql_of(left, scope, node.left)), _operand(self.sql_of(right, scope, node.right))
            result: exp.Expression = exp.EQ(this=a, expression=b) if op == "=" else exp.NEQ(this=a, expression=b)
            return Value(sql=result, type="boolean")
        # Collection equality: empty if either side is empty, else item by item in order.
        a, b = self.as_list(left, scope, node.left), self.as_list(right, scope, node.right)
        either_empty = exp.Or(
            this=exp.EQ(this=sql.length_or_zero(a), expression=exp.Literal.number(0)),
            expression=exp.EQ(this=sql.length_or_zero(b), expression=exp.Literal.number(0)),
        )
        equal: exp.Expression = exp.EQ(this=a, expression=b)
        if op == "!=":
            equal = exp.Not(this=exp.Paren(this=equal))
        return Value(sql=sql.case((either_empty, sql.null()), default=equal), type="boolean")

    def _equivalence(self, op: str, left: Value, right: Value, scope: Scope, node: Binary) -> Value:
        a, b = self._single_operands(left, right, scope, node)
        if (left.type in _STRINGY) or (right.type in _STRINGY):
            a, b = exp.Lower(this=a), exp.Lower(this=b)
        both_empty = exp.And(this=exp.Is(this=a, expression=exp.null()), expression=exp.Is(this=b, expression=exp.null()))
        same: exp.Expression = sql.coalesce(exp.EQ(this=a, expression=b), both_empty)
        if op == "!~":
            same = exp.Not(this=exp.Paren(this=same))
        return Value(sql=same, type="boolean")

    def _arithmetic(self, op: str, left: Value, right: Value, scope: Scope, node: Binary) -> Value:
        a, b = self._single_operands(left, right, scope, node)
        numeric = left.type in _NUMERIC and right.type in _NUMERIC
        if op == "&":
            empty = exp.Literal.string("")
            return Value(sql=exp.DPipe(this=sql.coalesce(a, empty), expression=sql.coalesce(b, empty)), type="string")
        if op == "+" and not numeric and (left.type in _STRINGY or right.type in _STRINGY):
            return Value(sql=exp.DPipe(this=a, expression=b), type="string")
        both_integers = left.type in _INTEGERS and right.type in _INTEGERS
        result_type = "integer" if both_integers else "decimal"
        if op == "+":
            result: exp.Expression = exp.Add(this=a, expression=b)
        elif op == "-":
            result = exp.Sub(this=a, expression=b)
        elif op == "*":
            result = exp.Mul(this=a, expression=b)
        elif op == "/":
            result = exp.Div(this=sql.cast(a, "DOUBLE"), expression=exp.Nullif(this=b, expression=exp.Literal.number(0)))
            result_type = "decimal"
        elif op == "div":
            result = exp.IntDiv(this=a, expression=exp.Nullif(this=b, expression=exp.Literal.number(0)))
            result_type = "integer"
        elif op == "mod":
            result = exp.Mod(this=a, expression=exp.Nullif(this=b, expression=exp.Literal.number(0)))
        else:
            raise self.error(scope, node, f"unsupported operator {op!r}")
        return Value(sql=exp.Paren(this=result), type=result_type)

    def _type_operator(self, node: Binary, left: Value, scope: Scope) -> Value:
        type_name = self.type_name(node.right, scope)
        if node.operator == "as":
            return self.of_type(left, type_name, scope, node)
        matched = self.of_type(left, type_name, scope, node)
        present = self.exists_sql(matched, scope, node)
        has_any = self.exists_sql(left, scope, node)
        return Value(sql=sql.case((has_any, present)), type="boolean")

    def of_type(self, value: Value, type_name: str, scope: Scope, node: Node | None) -> Value:
        """The items of ``value`` that are of type ``type_name``."""
        if value.choice is not None:
            return self.resolve_choice(value, type_name, scope, node)
        if value.type == type_name or (value.root and type_name == self.resource_type):
            return value
        if value.type is None:
            raise self.error(scope, node, f"cannot tell whether this value is a {type_name}")
        return Value(sql=sql.null(), type=type_name, many=False)


def _operand(value: exp.Expression) -> exp.Expression:
    """Parenthesise an operator's operand when it is itself an operation (SQL has no chained
    comparisons, and its precedence differs from FHIRPath's)."""
    if isinstance(value, exp.Binary | exp.Not | exp.Is):
        return exp.Paren(this=value)
    return value
