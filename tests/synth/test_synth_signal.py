"""The data carries disease patterns a cohort analysis can find."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from statistics import mean
from typing import Any

from tests.synth.conftest import Run

AS_OF = date(2025, 6, 30)


def _diagnoses(run: Run) -> dict[str, dict[str, str]]:
    """patient reference -> SNOMED code -> recorded date (first diagnosis)."""
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for c in run.resources["Condition"]:
        found[c["subject"]["reference"]].setdefault(c["code"]["coding"][0]["code"], c["recordedDate"])
    return found


def _values(run: Run, loinc: str) -> list[tuple[str, str, Any]]:
    out = []
    for o in run.resources["Observation"]:
        if o["code"]["coding"][0]["code"] == loinc:
            out.append((o["subject"]["reference"], o["effectiveDateTime"], o))
    return out


def _age(patient: dict[str, Any]) -> int:
    born = date.fromisoformat(patient["birthDate"])
    return AS_OF.year - born.year


def test_diabetics_have_higher_hba1c(en_run: Run) -> None:
    dx = _diagnoses(en_run)
    diabetic, healthy = [], []
    for subject, when, o in _values(en_run, "4548-4"):
        codes = dx.get(subject, {})
        if "44054006" in codes and codes["44054006"] <= when:
            diabetic.append(o["valueQuantity"]["value"])
        elif "44054006" not in codes and "15777000" not in codes:
            healthy.append(o["valueQuantity"]["value"])
    assert len(diabetic) >= 5 and len(healthy) >= 5
    assert mean(diabetic) - mean(healthy) > 1.0
    assert min(diabetic) >= 6.5 > max(healthy)


def test_hypertensives_have_higher_blood_pressure(en_run: Run) -> None:
    dx = _diagnoses(en_run)
    ages = {f"Patient/{p['id']}": _age(p) for p in en_run.resources["Patient"]}
    treated, never = [], []
    for subject, when, o in _values(en_run, "85354-9"):
        if ages[subject] < 30:
            continue
        systolic = o["component"][0]["valueQuantity"]["value"]
        codes = dx.get(subject, {})
        if "59621000" in codes and codes["59621000"] <= when:
            treated.append(systolic)
        elif "59621000" not in codes:
            never.append(systolic)
    assert len(treated) >= 10 and len(never) >= 10
    assert mean(treated) - mean(never) > 8


def test_hyperlipidemia_raises_ldl(en_run: Run) -> None:
    dx = _diagnoses(en_run)
    sick, well = [], []
    for subject, when, o in _values(en_run, "18262-6"):
        codes = dx.get(subject, {})
        (sick if "55822004" in codes and codes["55822004"] <= when else well).append(o["valueQuantity"]["value"])
    assert sick and well
    assert mean(sick) - mean(well) > 15


def test_chronic_disease_prevalence_rises_with_age(en_run: Run) -> None:
    dx = _diagnoses(en_run)
    young = [p for p in en_run.resources["Patient"] if 18 <= _age(p) < 45]
    old = [p for p in en_run.resources["Patient"] if _age(p) >= 60]
    assert len(young) >= 15 and len(old) >= 10

    def prevalence(group: list[dict[str, Any]], code: str) -> float:
        return sum(code in dx.get(f"Patient/{p['id']}", {}) for p in group) / len(group)

    assert prevalence(old, "59621000") > prevalence(young, "59621000") + 0.2
    assert prevalence(old, "44054006") + prevalence(old, "15777000") > prevalence(young, "44054006") + prevalence(young, "15777000")
