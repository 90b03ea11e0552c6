"""The structured rules on single resources: what is removed, pseudonymised, shifted, kept."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
import yaml

from fhirlake.pseudonymize.dates import parse_date
from fhirlake.pseudonymize.errors import RecordError
from fhirlake.pseudonymize.keys import PseudonymKey
from fhirlake.pseudonymize.policy import DEFAULT_POLICY_PATH, Policy, parse_policy
from fhirlake.pseudonymize.rules import SECURITY_SYSTEM
from tests.pseudonymize.conftest import TODAY, assert_absent, make_rules

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "pat-1",
    "extension": [
        {
            "url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
            "valueString": "Ida Roe",
        },
        {
            "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
            "valueCode": "F",
        },
    ],
    "identifier": [
        {"system": "http://hospital.example/mrn", "value": "12345"},
        {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "12345"},
    ],
    "name": [{"family": "Quinterra", "given": ["Ottilie"]}],
    "telecom": [{"system": "phone", "value": "555-201-3344"}],
    "gender": "female",
    "birthDate": "1969-03-27",
    "address": [
        {
            "line": ["12 Larkspur Lane"],
            "city": "Springfield",
            "state": "MA",
            "postalCode": "01103",
            "country": "US",
        }
    ],
    "photo": [{"contentType": "image/png", "data": "iVBORw0KGgo="}],
    "contact": [{"name": {"family": "Roe"}}],
    "maritalStatus": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}
        ]
    },
}

ENCOUNTER: dict[str, Any] = {
    "resourceType": "Encounter",
    "id": "enc-1",
    "status": "finished",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
    "subject": {"reference": "Patient/pat-1", "display": "Ottilie Quinterra"},
    "period": {"start": "2020-02-27T23:10:00-05:00", "end": "2020-03-02T08:00:00-05:00"},
}


def _apply(policy: Policy, key: PseudonymKey, resource: dict[str, Any]) -> dict[str, Any]:
    copied = copy.deepcopy(resource)
    make_rules(policy, key, [PATIENT]).apply(copied)
    return copied


def test_patient_direct_identifiers_removed(structured_policy: Policy, key: PseudonymKey) -> None:
    out = _apply(structured_policy, key, PATIENT)
    for element in ("name", "telecom", "photo", "contact"):
        assert element not in out
    assert out["address"] == [{"state": "MA", "postalCode": "011", "country": "US"}]
    offset = key.day_offset("pat-1", structured_policy.max_shift_days)
    assert out["birthDate"] == str((dt.date(1969, 3, 27) + dt.timedelta(days=offset)).year)
    text = str(out)
    for value in (
        "Quinterra",
        "Ottilie",
        "555-201-3344",
        "Larkspur",
        "Springfield",
        "Ida Roe",
        "pat-1",
    ):
        assert_absent(value, text, "the pseudonymised Patient")
    assert out["gender"] == "female" and out["maritalStatus"] == PATIENT["maritalStatus"]


def test_identifiers_pseudonymised_per_system(structured_policy: Policy, key: PseudonymKey) -> None:
    out = _apply(structured_policy, key, PATIENT)
    mrn, ssn = (i["value"] for i in out["identifier"])
    assert mrn != ssn  # same value "12345", different systems
    assert mrn == key.identifier("http://hospital.example/mrn", "12345")
    assert out["identifier"][0]["system"] == "http://hospital.example/mrn"


def test_extensions_allow_list(structured_policy: Policy, key: PseudonymKey) -> None:
    out = _apply(structured_policy, key, PATIENT)
    assert [e["url"] for e in out["extension"]] == [
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
    ]


def test_security_labels_say_what_was_done(structured_policy: Policy, key: PseudonymKey) -> None:
    out = _apply(structured_policy, key, PATIENT)
    codes = {c["code"] for c in out["meta"]["security"] if c["system"] == SECURITY_SYSTEM}
    assert codes == {"PSEUDED", "REDACTED", "CRYTOHASH", "ABSTRED"}


def test_references_and_ids_agree(structured_policy: Policy, key: PseudonymKey) -> None:
    patient = _apply(structured_policy, key, PATIENT)
    encounter = _apply(structured_policy, key, ENCOUNTER)
    assert encounter["subject"] == {"reference": f"Patient/{patient['id']}"}  # display removed
    assert patient["id"] == key.resource_id("pat-1") != "pat-1"


def test_dates_shift_by_the_patient_offset_keeping_intervals(
    structured_policy: Policy, key: PseudonymKey
) -> None:
    out = _apply(structured_policy, key, ENCOUNTER)
    offset = key.day_offset("pat-1", structured_policy.max_shift_days)
    assert offset != 0
    start, end = out["period"]["start"], out["period"]["end"]
    assert start.endswith("T23:10:00-05:00") and end.endswith("T08:00:00-05:00")
    before = dt.date(2020, 3, 2) - dt.date(2020, 2, 27)
    assert parse_date(end)[0] - parse_date(start)[0] == before  # across a leap day
    assert parse_date(start)[0] == dt.date(2020, 2, 27) + dt.timedelta(days=offset)


def test_old_patients_are_grouped(structured_policy: Policy, key: PseudonymKey) -> None:
    old = {**PATIENT, "birthDate": "1920-01-05"}
    assert _apply(structured_policy, key, old)["birthDate"] == str(TODAY.year - 90)
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/pat-1"},
        "onsetAge": {"value": 93, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"},
        "abatementAge": {"value": 41, "unit": "a"},
    }
    out = _apply(structured_policy, key, condition)
    assert out["onsetAge"]["value"] == 90 and out["onsetAge"]["comparator"] == ">="
    assert out["abatementAge"] == {"value": 41, "unit": "a"}


def test_contained_and_conditional_references(structured_policy: Policy, key: PseudonymKey) -> None:
    claim = {
        "resourceType": "Claim",
        "id": "cl1",
        "contained": [
            {
                "resourceType": "Coverage",
                "id": "cov1",
                "beneficiary": {"reference": "urn:uuid:pat-1"},
            }
        ],
        "patient": {"reference": "Patient/pat-1"},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "#cov1"}}],
        "provider": {"reference": "Organization?identifier=http://npi|123"},
        "referral": {"reference": "https://ehr.example/fhir/ServiceRequest/sr1/_history/3"},
    }
    out = _apply(structured_policy, key, claim)
    new_cov = out["contained"][0]["id"]
    assert out["insurance"][0]["coverage"]["reference"] == f"#{new_cov}"
    assert out["contained"][0]["beneficiary"]["reference"] == f"urn:uuid:{key.resource_id('pat-1')}"
    assert "provider" not in out  # conditional: carries identifiers, cannot resolve
    assert (
        out["referral"]["reference"]
        == f"https://ehr.example/fhir/ServiceRequest/{key.resource_id('sr1')}/_history/3"
    )


def test_unknown_elements_are_removed(structured_policy: Policy, key: PseudonymKey) -> None:
    out = _apply(structured_policy, key, {**ENCOUNTER, "nickname": "Otti"})
    assert "nickname" not in out


def test_primitive_extensions_follow_their_value(
    structured_policy: Policy, key: PseudonymKey
) -> None:
    resource = {
        **ENCOUNTER,
        "_status": {"extension": [{"url": "http://example.org/secret", "valueString": "x"}]},
        "subject": {
            "reference": "Patient/pat-1",
            "display": "Ottilie Quinterra",
            "_display": {"id": "d1"},
        },
        "period": {"start": "2020-02-27", "_start": {"id": "s1"}},
    }
    out = _apply(structured_policy, key, resource)
    assert (
        "_status" not in out and out["status"] == "finished"
    )  # its only extension was not allowed
    assert "_display" not in out["subject"]  # removed with the display it belongs to
    assert out["period"]["_start"] == {"id": "s1"}  # its date stays (shifted), so it stays


@pytest.mark.parametrize(
    ("resource", "pointer"),
    [
        ({**ENCOUNTER, "period": {"start": "27/02/2020"}}, "/period/start"),
        ({**ENCOUNTER, "subject": "Patient/pat-1"}, "/subject"),
        ({**ENCOUNTER, "subject": {"reference": 12}}, "/subject/reference"),
        ({**ENCOUNTER, "contained": [{"id": "x"}]}, "/contained/0"),
        ({**ENCOUNTER, "resourceType": "Encounterr"}, ""),
    ],
)
def test_bad_resources_raise_with_a_json_pointer(
    structured_policy: Policy, key: PseudonymKey, resource: dict[str, Any], pointer: str
) -> None:
    with pytest.raises(RecordError) as caught:
        make_rules(structured_policy, key).apply(copy.deepcopy(resource))
    assert caught.value.pointer == pointer


def test_first_matching_rule_wins(key: PseudonymKey) -> None:
    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    raw["rules"].insert(
        0, {"name": "keep family names", "path": "HumanName.family", "method": "keep"}
    )
    raw["rules"].insert(
        0,
        {
            "name": "substitute marital status",
            "path": "Patient.maritalStatus",
            "method": "substitute",
            "value": {"text": "x"},
        },
    )
    policy = parse_policy(yaml.safe_dump(raw), DEFAULT_POLICY_PATH).without_text()
    out = _apply(policy, key, PATIENT)
    # HumanName is removed by a later type rule, but HumanName.family is kept by the first rule
    assert out["name"] == [{"family": "Quinterra"}]
    assert out["maritalStatus"] == {"text": "x"}
