"""The FHIRPath functions fhirlake compiles, one small handler each.

A handler receives the compiler, the call node, the compiled target (the value the function
is invoked on) and the scope, and returns the compiled result. ``FUNCTIONS`` maps each name the
parser accepts (``fhirpath.parser.KNOWN_FUNCTIONS``) to its handler.
"""

from __future__ import annotations

import re
from dataclasses import replace

from sqlglot import exp

from fhirlake.sof.compiler import boundary, sql
from fhirlake.sof.compiler.expressions import ExpressionCompiler, FunctionHandler
from fhirlake.sof.compiler.values import Scope, Value
from fhirlake.sof.fhirpath import Call, Literal

__all__ = ["FUNCTIONS"]

# A reference "Type/id", optionally absolute and versioned: group 1 is the type, 2 the id.
_REFERENCE_PATTERN = r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})(?:/_history/[^/]+)?$"
_URN_PATTERN = r"^urn:uuid:([A-Za-z0-9\-]+)$"


def _where(c: ExpressionCompiler, call: Call, target: Value, scope: Scope) -> Value:
    if target.root:
        condition = c.single(c.compile(call.args[0], scope), scope, call.args[0], "where() criteria")
        cond_sql = c.sql_of(condition, scope, call)
        guard = cond_sql if target.guard is None else sql.and_(target.guard, cond_sql)
        return replace(target, guard=guard)
    target_sql = c.sql_of(target, scope, call)
    if not target.many:
        inner = replace(scope, focus=target)
        condition = c.single(c.compile(call.args[0], inner), inner, call.args[0], "where() criteria")
        return target.with_sql(sql.case((c.sql_of(condition, inner, call), target_sql)))
    name = c.fresh_name()
    item = replace(target, sql=exp.column(name), many=False, text=None)
    inner = replace(scope, focus=item)
    condition = c.single(c.compile(call.args[0], inner), inner, call.args[0], "where() criteria")
    return target.with_sql(sql.list_filter(target_sql, name, c.sql_of(condition, inner, call)))


def _exists(c: ExpressionCompiler, call: Call, target: Value, scope: Scope) -> Value:
    if call.args:
        target = _where(c, call, target, scope)
    return Value(sql=c.exists_sql(target, scope, call), type="boolean")


def _empty(c: ExpressionCompiler, call: Call, target: Value, scope: Scope) -> Value:
    return Value(sql=exp.Not(this=exp.Paren(this=c.exists_sql(target, scope, call))), type="boolean")


def _item_at(position: int) -> FunctionHandler:
    def handler(c: ExpressionCompiler, call: Call, target: Value, scope: Scope) -> Value:
        if target.root or target.choice is not None:
            return target
        target_sql = c.sql_of(target, scope, call)
        if not target.many:
            return target
        first = replace(target, sql=sql.list_extract(target_sql, exp.Literal.number(position)), many=False)
        if target.text is not None:
            first = replace(first, text=sql.list_extract(target.text, exp.Literal.number(position)))
        return first

    return handler


def _count(c: ExpressionCompiler, call: Call, target: Value, scope: Scope) -> Value:
    if target.many:
        return Value(sql=sql.length_or_zero(c.sql_of(target, scope, call)), type="integer")
    present = c.exists_sql(target, scope, call)
    return Value(sql=sql.case((present, exp.Literal.number(1)), default=exp.Literal.number(0)), type="integer")


def _not(c: ExpressionCompiler, call: Call, target: Value, scope: Scope) -> Value:
    value = c.single(target, scope, call)
    return Value(sql=exp.Not(this=exp.Paren(this=c.sql_of(value, scope, call))), type="boolean")


def _of_type(c: ExpressionCompiler, call: Call, target: Value, scope: Scope) -> Value:
    return c.of_type(target, c.type_name(call.args[0], scope), scope, call)


def _extension(c: ExpressionCompiler, call: Call, target: Value, scope: Scope) -> Value:
    url = call.args[0]
    if not isinstance(url, Literal) or url.type != "string":
        raise c.error(scope, call, "extension() takes the extension's URL as a string literal")
    extensions = c.member(target, "extension", scope, call)
    name = c.fresh_name("e")
    item = replace(extensions, sql=exp.column(name), many=False)
    url_sql = c.sql_of(c.member(item, "url", scope, call), scope, call)
    matches = exp.EQ(this=url_sql, expression=exp.Literal.string(str(url.value)))
    return extensions.with_sql(sql.list_filter(c.sql_of(extensions, scope, call), name, matches))


def _join(c: ExpressionCompiler, call: Call, target: Value, scope: Scope) -> Value:
    separator: exp.Expression = exp.Literal.string("")
    if call.args:
        separator = c.sql_of(c.single(c.compile(call.args[0], scope), scope, call.args[0]), scope, call)
    joined = exp.ArrayToString(this=c.as_list(target, scope, call), expression=separator)
    return Value(sql=sql.coalesce(joined, exp.Literal.string("")), type="string")


def _get_resource_key(c: ExpressionCompiler, call: Call, target: Value, scope: Scope) -> Value:
    return c.member(target, "id", scope, call)


def _get_reference_key(c: ExpressionCompiler, call: Call, target: Value, scope: Scope) -> Value:
    wanted = c.type_name(call.args[0], scope) if call.args else None
    references = c.member(target, "reference", scope, call)

    def key(item: Value) -> Value:
        assert item.sql is not None
        return Value(sql=reference_key_sql(item.sql, wanted), type="string")

    return c.map_items(references, scope, call, key)


def reference_key_sql(ref: exp.Expression, wanted: str | None) -> exp.Expression:
    """The key a reference points to: the id of ``Type/id`` (relative, absolute or versioned;
    ``urn:uuid:`` too when no type is asked), NULL when it is another type or unresolvable.

    The relative form, by far the most common, is read with plain string functions; the
    regular expression only runs for the other forms.
    """
    empty = exp.Literal.string("")
    if wanted is not None:
        prefix = f"{wanted}/"
        rest = exp.Substring(this=ref, start=exp.Literal.number(len(prefix) + 1))
        simple = sql.and_(
            exp.StartsWith(this=ref, expression=exp.Literal.string(prefix)),
            exp.Not(this=exp.Contains(this=rest, expression=exp.Literal.string("/"))),
        )
        pattern = rf"(?:^|/){re.escape(wanted)}/([A-Za-z0-9\-\.]{{1,64}})(?:/_history/[^/]+)?$"
        other = _regexp_group(ref, pattern, 1)
        return exp.Nullif(this=sql.case((simple, rest), default=other), expression=empty)
    slash = exp.StrPosition(this=ref, substr=exp.Literal.string("/"))
    after = exp.Substring(this=ref, start=exp.Add(this=slash, expression=exp.Literal.number(1)))
    simple = sql.and_(
        exp.GT(this=slash, expression=exp.Literal.number(1)),
        exp.Not(this=exp.Contains(this=ref, expression=exp.Literal.string(":"))),
        exp.Not(this=exp.Contains(this=after, expression=exp.Literal.string("/"))),
    )
    absolute = _regexp_group(ref, _REFERENCE_PATTERN, 2)
    urn = _regexp_group(ref, _URN_PATTERN, 1)
    other = sql.coalesce(exp.Nullif(this=absolute, expression=empty), urn)
    return exp.Nullif(this=sql.case((simple, after), default=other), expression=empty)


def _regexp_group(text: exp.Expression, pattern: str, group: int) -> exp.Expression:
    return exp.RegexpExtract(this=text, expression=exp.Literal.string(pattern), group=exp.Literal.number(group))


def _boundary(high: bool) -> FunctionHandler:
    def handler(c: ExpressionCompiler, call: Call, target: Value, scope: Scope) -> Value:
        if call.args:
            raise c.error(scope, call, "a precision argument to low/highBoundary() is not supported")
        value = c.single(target, scope, call)
        if value.type == "decimal" and value.node is not None and value.text is None:
            # Precision lives in the literal text: read it as text and compile again.
            value.node.as_text = True
            c.needs_second_pass = True
        text = value.text if value.text is not None else c.sql_of(value, scope, call)
        result = boundary.boundary_sql(value.type, text, high=high)
        if result is None:
            raise c.error(scope, call, f"{'high' if high else 'low'}Boundary() is not defined for {value.type or 'this value'}")
        result_sql, result_type = result
        return Value(sql=result_sql, type=result_type)

    return handler


def _string_function(node: type[exp.Expression], result_type: str) -> FunctionHandler:
    """A string function taking the string and up to one argument: ``node(this, expression)``."""

    def handler(c: ExpressionCompiler, call: Call, target: Value, scope: Scope) -> Value:
        value = c.sql_of(c.single(target, scope, call), scope, call)
        args = [c.sql_of(c.single(c.compile(a, scope), scope, a), scope, a) for a in call.args]
        built = node(this=value, expression=args[0]) if args else node(this=value)
        return Value(sql=built, type=result_type)

    return handler


def _substring(c: ExpressionCompiler, call: Call, target: Value, scope: Scope) -> Value:
    """``substring(start[, length])``: 0-based start, as in FHIRPath; empty past the end."""
    value = c.sql_of(c.single(target, scope, call), scope, call)
    start = c.sql_of(c.single(c.compile(call.args[0], scope), scope, call.args[0]), scope, call)
    one_based = exp.Add(this=start, expression=exp.Literal.number(1))
    length = None
    if len(call.args) == 2:
        length = c.sql_of(c.single(c.compile(call.args[1], scope), scope, call.args[1]), scope, call)
    in_range = sql.and_(
        exp.GTE(this=start, expression=exp.Literal.number(0)),
        exp.LT(this=start, expression=exp.Length(this=value)),
    )
    return Value(sql=sql.case((in_range, exp.Substring(this=value, start=one_based, length=length))), type="string")


def _convert(sql_type: str, result_type: str) -> FunctionHandler:
    def handler(c: ExpressionCompiler, call: Call, target: Value, scope: Scope) -> Value:
        value = c.sql_of(c.single(target, scope, call), scope, call)
        return Value(sql=sql.cast(value, sql_type, safe=True), type=result_type)

    return handler


def _to_string(c: ExpressionCompiler, call: Call, target: Value, scope: Scope) -> Value:
    value = c.sql_of(c.single(target, scope, call), scope, call)
    return Value(sql=sql.cast(value, "VARCHAR"), type="string")


FUNCTIONS: dict[str, FunctionHandler] = {
    "where": _where,
    "exists": _exists,
    "empty": _empty,
    "first": _item_at(1),
    "last": _item_at(-1),
    "count": _count,
    "not": _not,
    "ofType": _of_type,
    "extension": _extension,
    "join": _join,
    "getResourceKey": _get_resource_key,
    "getReferenceKey": _get_reference_key,
    "lowBoundary": _boundary(high=False),
    "highBoundary": _boundary(high=True),
    "startsWith": _string_function(exp.StartsWith, "boolean"),
    "endsWith": _string_function(exp.EndsWith, "boolean"),
    "contains": _string_function(exp.Contains, "boolean"),
    "lower": _string_function(exp.Lower, "string"),
    "upper": _string_function(exp.Upper, "string"),
    "length": _string_function(exp.Length, "integer"),
    "toString": _to_string,
    "substring": _substring,
    "toInteger": _convert("INTEGER", "integer"),
    "toDecimal": _convert("DOUBLE", "decimal"),
}
