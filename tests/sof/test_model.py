"""ViewDefinition validation: every invalid view is refused with the JSON pointer of the culprit."""

from __future__ import annotations

from typing import Any

import pytest

from fhirlake.sof import FhirPathSyntaxError, ViewDefinitionError, compile_view, parse_view


def _view(**overrides: Any) -> dict[str, Any]:
    view: dict[str, Any] = {"resource": "Patient", "select": [{"column": [{"name": "id", "path": "id"}]}]}
    view.update(overrides)
    return view


@pytest.mark.parametrize(
    ("view", "pointer", "words"),
    [
        ({}, "/resource", "missing"),
        (_view(resource="Patiant"), "/resource", "not a FHIR R4 resource type"),
        (_view(select=[]), "/select", "at least one select"),
        (_view(name="my view"), "/name", "not a valid SQL name"),
        (_view(select=[{"column": [{"name": "1st", "path": "id"}]}]), "/select/0/column/0/name", "not a valid SQL name"),
        (_view(select=[{"column": [{"name": "a", "path": "id"}, {"name": "a", "path": "gender"}]}]), "/select/0/column/1/name", "already defined at /select/0/column/0"),
        (_view(select=[{"forEach": "name", "repeat": ["link"], "column": [{"name": "a", "path": "id"}]}]), "/select/0", "only one of forEach, forEachOrNull, repeat"),
        (_view(select=[{"unionAll": [{"column": [{"name": "a", "path": "id"}]}, {"column": [{"name": "b", "path": "id"}]}]}]), "/select/0/unionAll/1", "same columns in the same order"),
        (_view(constant=[{"name": "c"}]), "/constant/0", "exactly one value[x]"),
        (_view(constant=[{"name": "c", "valueInteger": "1"}]), "/constant/0/valueInteger", "not a valid integer"),
        (_view(select=[{"column": [{"name": "a", "path": "name.bogus()"}]}]), "/select/0/column/0/path", "unknown function bogus() at position 5"),
        (_view(select=[{"forEach": 1, "column": [{"name": "a", "path": "id"}]}]), "/select/0/forEach", "must be a string"),
        (_view(select=[{"column": [{"name": "a"}]}]), "/select/0/column/0/path", "missing"),
    ],
)
def test_invalid_views_name_the_pointer(view: dict[str, Any], pointer: str, words: str) -> None:
    with pytest.raises(ViewDefinitionError) as caught:
        parse_view(view)
    assert caught.value.pointer == pointer
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("nmae.family", "Patient has no element 'nmae'"),
        ("value.ofType(Quantity)", "Patient has no element 'value'"),
        ("%missing", "undefined constant %missing"),
        ("deceased.length()", "choice element 'deceased' needs ofType()"),
    ],
)
def test_compile_errors_name_the_column(path: str, words: str) -> None:
    view = parse_view(_view(select=[{"column": [{"name": "x", "path": "id"}, {"name": "y", "path": path}]}]))
    with pytest.raises(ViewDefinitionError) as caught:
        compile_view(view)
    assert caught.value.pointer == "/select/0/column/1/path"
    assert words in str(caught.value)


@pytest.mark.parametrize(("path", "declared"), [("gender", "boolean"), ("active", "integer"), ("name", "string"), ("birthDate", "decimal")])
def test_a_declared_type_must_fit_the_path(path: str, declared: str) -> None:
    view = parse_view(_view(select=[{"column": [{"name": "x", "path": path, "type": declared}]}]))
    with pytest.raises(ViewDefinitionError, match=f"declared {declared} but its path") as caught:
        compile_view(view)
    assert caught.value.pointer == "/select/0/column/0/type"


def test_compatible_declared_types_are_accepted() -> None:
    view = parse_view(_view(select=[{"column": [
        {"name": "a", "path": "gender", "type": "string"}, {"name": "b", "path": "id", "type": "id"},
        {"name": "c", "path": "multipleBirth.ofType(integer)", "type": "decimal"},
        {"name": "d", "path": "name.first()", "type": "HumanName"}]}]))
    assert compile_view(view).column_names == ("a", "b", "c", "d")


def test_a_where_must_be_boolean() -> None:
    with pytest.raises(ViewDefinitionError, match="must be boolean"):
        compile_view(parse_view(_view(where=[{"path": "gender"}])))


def test_the_model_is_immutable_and_ordered() -> None:
    view = parse_view(_view(select=[
        {"column": [{"name": "a", "path": "id"}], "unionAll": [{"column": [{"name": "c", "path": "id"}]}],
         "select": [{"column": [{"name": "b", "path": "id"}]}]},
    ]))
    assert view.column_names == ("a", "b", "c"), "own columns, nested selects, then unionAll"
    with pytest.raises(AttributeError):
        view.resource = "Observation"  # type: ignore[misc]


def test_syntax_errors_carry_a_position() -> None:
    with pytest.raises(FhirPathSyntaxError) as caught:
        parse_view(_view(select=[{"column": [{"name": "a", "path": "name.where(use = 'x'"}]}]))
    assert caught.value.position == len("name.where(use = 'x'")
