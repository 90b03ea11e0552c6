"""The FHIRPath parser: precedence, literals, and errors with positions."""

from __future__ import annotations

import pytest

from fhirlake.sof.errors import FhirPathSyntaxError
from fhirlake.sof.fhirpath import Binary, Call, EnvVar, Indexer, Literal, Member, This, parse


def test_navigation_and_calls_chain_left_to_right() -> None:
    node = parse("name.where(use = 'official').family.first()")
    assert isinstance(node, Call) and node.name == "first"
    assert isinstance(node.target, Member) and node.target.name == "family"
    where = node.target.target
    assert isinstance(where, Call) and where.name == "where"
    assert where.args == (Binary(15, "=", Member(11, None, "use"), Literal(17, "official", "string")),)


@pytest.mark.parametrize(
    ("expression", "operator"),
    [("a or b and c", "or"), ("a and b = c", "and"), ("a = b + c", "="), ("a + b * c", "+"),
     ("a | b = c", "="), ("a < b and c", "and"), ("a implies b or c", "implies")],
)
def test_precedence(expression: str, operator: str) -> None:
    node = parse(expression)
    assert isinstance(node, Binary) and node.operator == operator


def test_literals() -> None:
    assert parse("12") == Literal(0, 12, "integer")
    assert parse("1.50").value.as_tuple().exponent == -2  # type: ignore[attr-defined]
    assert parse("true") == Literal(0, True, "boolean")
    assert parse("@2020-01") == Literal(0, "2020-01", "date")
    assert parse("@2020-01-01T10:00:00+02:00") == Literal(0, "2020-01-01T10:00:00+02:00", "dateTime")
    assert parse("@T12:30") == Literal(0, "12:30", "time")
    assert parse("'it\\'s'") == Literal(0, "it's", "string")
    assert parse("{}") == Literal(0, None, "empty")


def test_variables_and_indexers() -> None:
    assert parse("%rowIndex") == EnvVar(0, "rowIndex")
    assert parse("$this") == This(0)
    node = parse("name[%i].family")
    assert isinstance(node, Member) and isinstance(node.target, Indexer)


@pytest.mark.parametrize(
    ("expression", "position", "words"),
    [("@@", 0, "malformed date/time"), ("name.", 5, "expected a name"), ("a +", 3, "unexpected"),
     ("frobnicate()", 0, "unknown function frobnicate()"), ("first(1)", 0, "takes 0 argument"),
     ("'open", 0, "unterminated string"), ("a ; b", 2, "unexpected character")],
)
def test_errors_carry_positions(expression: str, position: int, words: str) -> None:
    with pytest.raises(FhirPathSyntaxError) as caught:
        parse(expression)
    assert caught.value.position == position
    assert words in str(caught.value)
