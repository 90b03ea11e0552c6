"""FHIRPath functions beyond the official suite's cases, checked on small resources."""

from __future__ import annotations

from typing import Any

import pytest

from fhirlake.sof import resources_table, run_view


def _column(resources: list[dict[str, Any]], path: str, resource: str = "Observation", **column: Any) -> list[Any]:
    view = {"resource": resource, "select": [{"column": [{"name": "id", "path": "id"}, {"name": "v", "path": path, **column}]}]}
    table = run_view(view, resources_table(resources)).table
    assert table is not None
    return [row["v"] for row in sorted(table.to_pylist(), key=lambda r: r["id"])]


@pytest.mark.parametrize(
    ("reference", "typed", "untyped"),
    [
        ("Patient/p1", "p1", "p1"),
        ("http://example.org/fhir/Patient/p1", "p1", "p1"),
        ("Patient/p1/_history/3", "p1", "p1"),
        ("https://x.org/base/Patient/p1/_history/2", "p1", "p1"),
        ("Group/g1", None, "g1"),
        ("urn:uuid:0b1c", None, "0b1c"),
        ("#contained", None, None),
        ("Patient/", None, None),
    ],
)
def test_get_reference_key_forms(reference: str, typed: str | None, untyped: str | None) -> None:
    resources = [{"resourceType": "Observation", "id": "o1", "subject": {"reference": reference}}]
    assert _column(resources, "subject.getReferenceKey(Patient)") == [typed]
    assert _column(resources, "subject.getReferenceKey()") == [untyped]


def test_reference_keys_of_repeating_references() -> None:
    resources = [{"resourceType": "Observation", "id": "o1",
                  "performer": [{"reference": "Practitioner/a"}, {"reference": "Organization/b"}, {"display": "x"}]}]
    assert _column(resources, "performer.getReferenceKey()", collection=True) == [["a", "b"]]
    assert _column(resources, "performer.getReferenceKey(Organization)", collection=True) == [["b"]]


def test_counts_strings_and_boolean_logic() -> None:
    patients = [
        {"resourceType": "Patient", "id": "a", "name": [{"given": ["Ann", "Bo"]}, {"given": ["Cy"]}], "gender": "female"},
        {"resourceType": "Patient", "id": "b", "gender": "male"},
    ]
    assert _column(patients, "name.given.count()", "Patient") == [3, 0]
    assert _column(patients, "name.given.last()", "Patient") == ["Cy", None]
    assert _column(patients, "gender.upper()", "Patient") == ["FEMALE", "MALE"]
    assert _column(patients, "gender.startsWith('fe')", "Patient") == [True, False]
    assert _column(patients, "gender = 'female' xor name.exists()", "Patient") == [False, False]
    assert _column(patients, "name.exists() implies gender = 'male'", "Patient") == [False, True]
    assert _column(patients, "'x' & gender.where($this = 'none')", "Patient") == ["x", "x"]
    assert _column(patients, "gender in ('male' | 'other')", "Patient") == [False, True]
    assert _column(patients, "name.given.count() div 2 + 1", "Patient") == [2, 1]


def test_substring_and_conversions() -> None:
    patients = [{"resourceType": "Patient", "id": "a", "birthDate": "1970-06-01"}, {"resourceType": "Patient", "id": "b"}]
    assert _column(patients, "birthDate.substring(0, 4).toInteger()", "Patient") == [1970, None]
    assert _column(patients, "birthDate.substring(5)", "Patient") == ["06-01", None]
    assert _column(patients, "birthDate.substring(20, 2)", "Patient") == [None, None]
    assert _column(patients, "'2.5'.toDecimal() * 2", "Patient") == [5.0, 5.0]
    assert _column(patients, "'x'.toInteger()", "Patient") == [None, None]


def test_value_choice_exists_and_is() -> None:
    observations = [
        {"resourceType": "Observation", "id": "o1", "valueQuantity": {"value": 1}},
        {"resourceType": "Observation", "id": "o2", "valueString": "x"},
        {"resourceType": "Observation", "id": "o3"},
    ]
    assert _column(observations, "value.exists()") == [True, True, False]
    assert _column(observations, "value is Quantity") == [True, False, None]
    assert _column(observations, "(value as string) = 'x'") == [None, True, None]


def test_ansi_type_tag_overrides_the_sql_type() -> None:
    patients = [{"resourceType": "Patient", "id": "a", "birthDate": "1970-06-01"}, {"resourceType": "Patient", "id": "b", "birthDate": "1970"}]
    values = _column(patients, "birthDate", "Patient", type="date", tag=[{"name": "ansi/type", "value": "DATE"}])
    assert [v.isoformat() if v else None for v in values] == ["1970-06-01", None]
