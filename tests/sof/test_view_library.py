"""The views in sql_on_fhir_views/: each one is valid and shareable, and the patient and
observation views give, on real Synthea data, what an independent computation in plain
Python finds in the same files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhirlake.sof import load_view, run_view
from fhirlake.sof.library import view_files
from tests.conftest import PROJECT_ROOT

VIEWS = PROJECT_ROOT / "sql_on_fhir_views"


def _read(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _columns(select: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(select.get("column", []))
    for nested in select.get("select", []) + select.get("unionAll", []):
        found.extend(_columns(nested))
    return found


@pytest.mark.parametrize("path", view_files(VIEWS), ids=lambda p: p.stem)
def test_every_view_is_a_valid_shareable_view(path: Path) -> None:
    view = load_view(path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert view.name == path.stem, "the file name is the view (table) name"
    assert view.url and view.fhir_version and view.description
    for column in [c for s in raw["select"] for c in _columns(s)]:
        assert column.get("type"), f"{column['name']} needs a type (ShareableViewDefinition)"
        assert column.get("description"), f"{column['name']} needs a description"


def test_patient_view_matches_an_independent_reading(synthea_dir: Path) -> None:
    patients = _read(synthea_dir / "Patient.ndjson")
    rows = run_view(VIEWS / "patient.json", synthea_dir).table
    assert rows is not None
    by_id = {r["patient_id"]: r for r in rows.to_pylist()}
    assert len(by_id) == rows.num_rows == len(patients)
    for patient in patients:
        row = by_id[patient["id"]]
        assert row["gender"] == patient.get("gender")
        assert row["birth_date"] == patient.get("birthDate")
        deceased = "deceasedDateTime" in patient or patient.get("deceasedBoolean") is True
        assert row["deceased"] is deceased
        assert row["deceased_datetime"] == patient.get("deceasedDateTime")
        address = (patient.get("address") or [{}])[0]
        assert row["region"] == address.get("state")
        assert row["country"] == address.get("country")
        marital = [c["code"] for c in patient.get("maritalStatus", {}).get("coding", []) if "code" in c]
        assert row["marital_status"] == (marital[0] if marital else None)
    assert sum(r["deceased"] for r in by_id.values()) == sum(
        1 for p in patients if "deceasedDateTime" in p or p.get("deceasedBoolean") is True
    )


def test_observation_view_matches_an_independent_reading(synthea_dir: Path) -> None:
    observations = _read(synthea_dir / "Observation.ndjson")
    table = run_view(VIEWS / "observation.json", synthea_dir).table
    assert table is not None
    rows = {r["observation_id"]: r for r in table.to_pylist()}
    assert len(rows) == table.num_rows == len(observations)
    with_quantity = 0
    for resource in observations:
        row = rows[resource["id"]]
        assert row["patient_id"] == resource["subject"]["reference"].split("/")[1]
        assert row["encounter_id"] == (resource["encounter"]["reference"].split("/")[1] if "encounter" in resource else None)
        coding = resource["code"]["coding"][0]
        assert (row["code"], row["code_system"], row["code_display"]) == (coding.get("code"), coding.get("system"), coding.get("display"))
        quantity = resource.get("valueQuantity")
        if quantity is not None:
            with_quantity += 1
            assert row["value_quantity"] == pytest.approx(float(quantity["value"]))
            assert row["value_unit"] == quantity.get("code")
        else:
            assert row["value_quantity"] is None
        assert row["value_string"] == resource.get("valueString")
        assert row["effective_datetime"] == resource.get("effectiveDateTime")
        categories = [c.get("code") for cat in resource.get("category", []) for c in cat.get("coding", [])]
        assert row["category"] == (categories[0] if categories else None)
    assert with_quantity > 0.5 * len(observations)
