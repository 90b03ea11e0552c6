"""Every resource is well-formed R4: it validates, has meta.lastUpdated, references resolve."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.synth.conftest import Run

INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}$")
REFERENCE = re.compile(r"^(Patient|Encounter|Practitioner|Organization|Condition|Observation)/[0-9a-f-]{36}$")


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


@pytest.mark.parametrize("run_name", ["en_run", "fr_run"])
def test_a_sample_of_each_type_validates_with_fhir_resources(run_name: str, request: pytest.FixtureRequest) -> None:
    run: Run = request.getfixturevalue(run_name)
    for rtype, resources in run.resources.items():
        model = getattr(importlib.import_module(f"fhir.resources.R4B.{rtype.lower()}"), rtype)
        step = max(1, len(resources) // 40)
        for resource in resources[::step]:
            model.model_validate(resource)


@pytest.mark.parametrize("run_name", ["en_run", "fr_run"])
def test_ids_are_unique_and_references_resolve(run_name: str, request: pytest.FixtureRequest) -> None:
    run: Run = request.getfixturevalue(run_name)
    known = {f"{r['resourceType']}/{r['id']}" for r in run.all()}
    assert len(known) == sum(len(v) for v in run.resources.values())
    seen = 0
    for resource in run.all():
        for reference in _references(resource):
            if not REFERENCE.match(reference) or reference not in known:
                pytest.fail(f"a {resource['resourceType']} has a reference that does not resolve")
            seen += 1
    assert seen > 10 * len(known) // 4


def test_every_resource_has_last_updated_before_the_transaction_time(en_run: Run) -> None:
    transaction = en_run.manifest["transactionTime"]
    from datetime import datetime

    limit = datetime.fromisoformat(transaction)
    for resource in en_run.all():
        stamp = resource["meta"]["lastUpdated"]
        assert INSTANT.match(stamp), stamp
        assert datetime.fromisoformat(stamp) <= limit


def test_observations_are_shaped_like_vital_signs_and_labs(en_run: Run) -> None:
    observations = en_run.resources["Observation"]
    codes = {o["code"]["coding"][0]["code"] for o in observations}
    assert {"85354-9", "8302-2", "29463-7", "39156-5", "8867-4", "4548-4", "2339-0", "2093-3"} <= codes
    for o in observations:
        assert o["status"] == "final"
        assert o["code"]["coding"][0]["system"] == "http://loinc.org" and o["code"]["text"]
        assert o["subject"]["reference"].startswith("Patient/") and o["encounter"]["reference"].startswith("Encounter/")
        assert "effectiveDateTime" in o and INSTANT.match(o["issued"])
        category = o["category"][0]["coding"][0]
        assert category["system"] == "http://terminology.hl7.org/CodeSystem/observation-category"
        if o["code"]["coding"][0]["code"] == "85354-9":
            assert "valueQuantity" not in o
            assert [c["code"]["coding"][0]["code"] for c in o["component"]] == ["8480-6", "8462-4"]
            assert all(c["valueQuantity"]["code"] == "mm[Hg]" for c in o["component"])
        elif "valueQuantity" in o:
            quantity = o["valueQuantity"]
            assert quantity["system"] == "http://unitsofmeasure.org" and quantity["unit"] == quantity["code"]
        if category["code"] == "laboratory":
            assert o["referenceRange"] and o["interpretation"]
        else:
            assert category["code"] in ("vital-signs", "social-history")


def test_code_systems_per_type(en_run: Run) -> None:
    systems = {
        "Condition": ("code", "http://snomed.info/sct"),
        "Procedure": ("code", "http://snomed.info/sct"),
        "AllergyIntolerance": ("code", "http://snomed.info/sct"),
        "MedicationRequest": ("medicationCodeableConcept", "http://www.nlm.nih.gov/research/umls/rxnorm"),
        "Immunization": ("vaccineCode", "http://hl7.org/fhir/sid/cvx"),
        "DiagnosticReport": ("code", "http://loinc.org"),
    }
    for rtype, (element, system) in systems.items():
        assert {r[element]["coding"][0]["system"] for r in en_run.resources[rtype]} == {system}


def test_patients_carry_demographics_and_identifiers(en_run: Run) -> None:
    patients = en_run.resources["Patient"]
    for p in patients:
        assert p["name"][0]["use"] == "official" and p["name"][0]["family"] and p["name"][0]["given"]
        assert p["gender"] in ("male", "female") and p["birthDate"]
        address = p["address"][0]
        assert address["line"] and address["city"] and address["postalCode"] and address["state"] and address["country"] == "US"
        types = [i["type"]["coding"][0]["code"] for i in p["identifier"]]
        assert types == ["MR", "SS"]
        assert p["maritalStatus"]["coding"][0]["code"] in ("M", "S", "D", "W")
    assert any("deceasedDateTime" in p for p in patients)
