"""The R4 element registry: current with fhir.resources, and right on the facts views rely on."""

from __future__ import annotations

import json

from fhirlake.sof import registry
from fhirlake.sof._registry_build import REGISTRY_PATH, build_registry


def test_the_committed_registry_is_current() -> None:
    committed = json.loads(REGISTRY_PATH.read_text(encoding="utf-8"))
    assert committed == build_registry(), "run: python -m fhirlake.sof._registry_build"


def test_cardinality_types_and_choices() -> None:
    assert registry.element("Patient", "name") == registry.Element("name", "HumanName", True)
    assert registry.element("HumanName", "family") == registry.Element("family", "string", False)
    assert registry.element("HumanName", "given") == registry.Element("given", "string", True)
    value = registry.element("Observation", "value")
    assert value is not None and value.choice is not None and value.type is None
    assert value.choice["Quantity"] == "valueQuantity" and value.choice["string"] == "valueString"
    assert registry.element("Observation", "component") == registry.Element("component", "ObservationComponent", True)
    assert registry.element("Encounter", "class") == registry.Element("class", "Coding", False)
    assert registry.element("Patient", "nope") is None
    assert registry.is_resource("Observation") and not registry.is_resource("HumanName")


def test_sql_types() -> None:
    assert registry.read_sql_type("boolean") == "BOOLEAN"
    assert registry.read_sql_type("decimal") == "DOUBLE"
    assert registry.read_sql_type("dateTime") == "VARCHAR"
    assert registry.output_sql_type("integer") == "INTEGER"
    assert registry.output_sql_type("instant") == "TIMESTAMPTZ"
    assert registry.output_sql_type("date") == "VARCHAR"
    assert registry.output_sql_type("CodeableConcept") is None
