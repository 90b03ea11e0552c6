"""Canaries for privacy tests: notes repeat identifiers, truth.json lists them, logs do not."""

from __future__ import annotations

import base64
import importlib
import random
import re
from datetime import date
from pathlib import Path

import orjson
import pytest

from fhirlake.cli import main
from fhirlake.synth.locales import LOCALES, NoteFacts
from fhirlake.synth.terminology import CONCEPTS
from tests.synth.conftest import Run


def _notes_by_patient(run: Run) -> dict[str, list[str]]:
    notes: dict[str, list[str]] = {}
    for doc in run.resources["DocumentReference"]:
        text = base64.b64decode(doc["content"][0]["attachment"]["data"]).decode()
        notes.setdefault(doc["subject"]["reference"], []).append(text)
    return notes


@pytest.mark.parametrize(
    ("run_name", "in_every_note"),
    [
        ("en_run", ("given", "family", "birth_date_text", "address_line", "phone", "mrn", "ssn")),
        ("fr_run", ("given", "family", "family_upper", "birth_date_text", "address_line", "phone", "ipp", "nir_text")),
    ],
)
def test_every_note_repeats_the_patients_identifiers(run_name: str, in_every_note: tuple[str, ...], request: pytest.FixtureRequest) -> None:
    run: Run = request.getfixturevalue(run_name)
    notes = _notes_by_patient(run)
    checked = 0
    for record in run.truth["records"]:
        for text in notes.get(record["patient"], []):
            missing = [kind for kind in in_every_note if record["direct"][kind] not in text]
            assert not missing, f"{record['patient']}: note lacks {missing}"  # names the kinds, not the values
            checked += 1
    assert checked >= len(run.truth["records"])


def test_truth_strings_are_in_the_patient_resource(en_run: Run) -> None:
    patients = {f"Patient/{p['id']}": orjson.dumps(p).decode() for p in en_run.resources["Patient"]}
    for record in en_run.truth["records"]:
        serialized = patients[record["patient"]]
        for kind in ("given", "family", "birth_date", "address_line", "phone", "mrn", "ssn", "mothers_maiden_name"):
            if record["direct"][kind] not in serialized:
                pytest.fail(f"{kind} of a patient is not in their Patient resource")


KINDS = ("wellness", "symptom", "followup", "emergency", "inpatient", "prenatal")


def _placeholder_facts(kind: str) -> NoteFacts:
    """Facts whose every name-like field is a placeholder, so only template words remain."""
    return NoteFacts(
        when=date(2020, 1, 2), kind=kind, given="Xx", family="Yy", sex="female", age=40, birth_date=date(1980, 1, 1),
        address_line="1 Zz", city="Ww", state="Vv", postal_code="00000", phone="0",
        identity={"mrn": "1", "ssn": "2", "ipp": "3", "nir_text": "4", "family_upper": "YY"},
        practitioner="Dr Qq", organization="Oo", reason="Rr", problems=("Pp",), medications=("Mm",),
        allergies=("Aa",), vitals=(120.0, 80.0, 70.0, 70.0, 24.0), months_to_next=3,
    )


def _words(text: str) -> set[str]:
    return set(re.findall(r"[^\W\d_]+(?:[-'][^\W\d_]+)*", text))


@pytest.mark.parametrize("code", sorted(LOCALES))
def test_patient_names_never_appear_in_fixed_text(code: str) -> None:
    """A name found after pseudonymisation is a leak, never a code display or a doctor's name."""
    locale = LOCALES[code]
    names = set(locale.given_male) | set(locale.given_female) | set(locale.family)
    fixed = " ".join(c.display + " " + c.fr for c in CONCEPTS.values())
    fixed += " " + " ".join(locale.practitioner_given + locale.practitioner_family)
    fixed += " " + " ".join(c.name + " " + c.state + " " + (c.district or "") for c in locale.cities)
    fixed += " " + " ".join(importlib.import_module(f"fhirlake.synth.locales.{code}").STREETS)
    fixed += " " + " ".join(locale.organization_name(random.Random(i), locale.cities[0], i % 2 == 0) for i in range(200))
    fixed += " " + " ".join(locale.render_note(random.Random(i), _placeholder_facts(kind)) for i, kind in enumerate(KINDS))
    collisions = {n for n in names if " " not in n} & _words(fixed)
    assert not collisions
    assert not names & (set(locale.practitioner_given) | set(locale.practitioner_family))


def test_cli_prints_counts_but_no_patient_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["synth", "--patients", "12", "--seed", "4", "--out", str(out), "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "Patient" in printed and "12" in printed
    truth = orjson.loads((out / "truth.json").read_bytes())
    for record in truth["records"]:
        for kind, value in record["direct"].items():
            if value in printed:
                pytest.fail(f"the CLI printed a patient's {kind}")
        if record["patient"].split("/")[1] in printed:
            pytest.fail("the CLI printed a patient id")


def test_cli_reports_a_non_empty_folder_as_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "other.txt").write_text("x")
    assert main(["synth", "--patients", "2", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and len(err.strip().splitlines()) == 1
