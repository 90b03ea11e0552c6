"""Shared FHIR element values: categories, statuses, classes, reference ranges, dosages.

All of these are module-level dicts reused by every resource that needs them (serialising a
shared dict is as fast as a fresh one, and building it once is faster). They are never
mutated after import.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhirlake.synth.terminology import LABS, UCUM, codeable

__all__ = [
    "AI_ACTIVE",
    "AI_CONFIRMED",
    "ALLERGY_CATEGORY",
    "CLINICAL_NOTE",
    "CONDITION_ACTIVE",
    "CONDITION_CONFIRMED",
    "CONDITION_ENCOUNTER_DIAGNOSIS",
    "CONDITION_PROBLEM",
    "CONDITION_RESOLVED",
    "ENCOUNTER_CLASS",
    "LAB_REPORT",
    "OBS_LABORATORY",
    "OBS_SOCIAL_HISTORY",
    "OBS_VITAL_SIGNS",
    "PRIMARY_PERFORMER",
    "dosage",
    "interpretation",
    "lab_reference_range",
    "marital_status",
    "quantity",
]

_OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"


def _category(system: str, code: str, display: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": system, "code": code, "display": display}], "text": display}]


OBS_VITAL_SIGNS = _category(_OBS_CAT, "vital-signs", "Vital Signs")
OBS_LABORATORY = _category(_OBS_CAT, "laboratory", "Laboratory")
OBS_SOCIAL_HISTORY = _category(_OBS_CAT, "social-history", "Social History")
LAB_REPORT = _category("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")
CLINICAL_NOTE = _category(
    "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "clinical-note", "Clinical Note"
)
CONDITION_PROBLEM = _category(
    "http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item", "Problem List Item"
)
CONDITION_ENCOUNTER_DIAGNOSIS = _category(
    "http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis", "Encounter Diagnosis"
)


def _status(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


CONDITION_ACTIVE = _status("http://terminology.hl7.org/CodeSystem/condition-clinical", "active")
CONDITION_RESOLVED = _status("http://terminology.hl7.org/CodeSystem/condition-clinical", "resolved")
CONDITION_CONFIRMED = _status("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed")
AI_ACTIVE = _status("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active")
AI_CONFIRMED = _status("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed")

_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ENCOUNTER_CLASS = {
    "AMB": {"system": _ACT_CODE, "code": "AMB", "display": "ambulatory"},
    "EMER": {"system": _ACT_CODE, "code": "EMER", "display": "emergency"},
    "IMP": {"system": _ACT_CODE, "code": "IMP", "display": "inpatient encounter"},
}
PRIMARY_PERFORMER = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                "code": "PPRF",
                "display": "primary performer",
            }
        ],
        "text": "primary performer",
    }
]

ALLERGY_CATEGORY = {
    "allergy_mold": "environment",
    "allergy_dust_mite": "environment",
    "allergy_dander": "environment",
    "allergy_grass": "environment",
    "allergy_tree": "environment",
    "allergy_nut": "food",
    "allergy_peanut": "food",
    "allergy_shellfish": "food",
    "allergy_egg": "food",
    "allergy_penicillin": "medication",
}

_MARITAL = {"M": "Married", "S": "Never Married", "D": "Divorced", "W": "Widowed"}


@cache
def marital_status(code: str, text: str) -> dict[str, Any]:
    """The shared ``maritalStatus`` CodeableConcept for a v3 code and a locale's label."""
    return {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": code, "display": _MARITAL[code]}
        ],
        "text": text,
    }


def quantity(value: float, unit: str) -> dict[str, Any]:
    """A UCUM ``Quantity``."""
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


@cache
def lab_reference_range(key: str, sex: str) -> list[dict[str, Any]]:
    """The shared ``referenceRange`` of lab ``key`` for ``sex``."""
    lab = LABS[key]
    low, high = lab.low, lab.high
    if lab.by_sex is not None:
        low, high = lab.by_sex[1 if sex == "male" else 0]
    entry: dict[str, Any] = {}
    if low is not None:
        entry["low"] = quantity(low, lab.unit)
    if high is not None:
        entry["high"] = quantity(high, lab.unit)
    if lab.by_sex is not None:
        entry["appliesTo"] = [
            {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/administrative-gender",
                        "code": sex,
                        "display": sex.capitalize(),
                    }
                ]
            }
        ]
    return [entry]


_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_INTERPRETATIONS = {
    code: [{"coding": [{"system": _INTERPRETATION, "code": code, "display": display}], "text": display}]
    for code, display in (("H", "High"), ("L", "Low"), ("N", "Normal"))
}


def interpretation(key: str, sex: str, value: float) -> list[dict[str, Any]]:
    """``H``, ``L`` or ``N`` for ``value`` against the reference range of lab ``key``."""
    lab = LABS[key]
    low, high = lab.low, lab.high
    if lab.by_sex is not None:
        low, high = lab.by_sex[1 if sex == "male" else 0]
    if high is not None and value > high:
        return _INTERPRETATIONS["H"]
    if low is not None and value < low:
        return _INTERPRETATIONS["L"]
    return _INTERPRETATIONS["N"]


@cache
def dosage(text: str, as_needed: bool) -> list[dict[str, Any]]:
    """A shared ``dosageInstruction``: one unit a day, or as needed."""
    instruction: dict[str, Any] = {"sequence": 1, "text": text}
    if as_needed:
        instruction["asNeededBoolean"] = True
    else:
        instruction["timing"] = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}
        instruction["asNeededBoolean"] = False
    instruction["doseAndRate"] = [{"doseQuantity": {"value": 1}}]
    return [instruction]


def concept(key: str, language: str) -> dict[str, Any]:
    """Shorthand for :func:`fhirlake.synth.terminology.codeable`."""
    return codeable(key, language)
