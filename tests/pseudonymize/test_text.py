"""Free text through real Presidio and spaCy: the canary, French NIR, dates, cache, XHTML."""

from __future__ import annotations

import base64
import datetime as dt
import doctest
import importlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from fhirlake.pseudonymize.dates import parse_date
from fhirlake.pseudonymize.keys import PseudonymKey
from fhirlake.pseudonymize.pipeline import pseudonymize
from fhirlake.pseudonymize.policy import Policy
from fhirlake.pseudonymize.recognizers import nir_key_is_valid
from fhirlake.pseudonymize.scan import input_terms, scan_context, scan_output
from fhirlake.pseudonymize.terms import identifying_terms
from fhirlake.pseudonymize.text import TextScrubber
from tests.pseudonymize.conftest import (
    TODAY,
    assert_absent,
    assert_present,
    read_ndjson,
    write_ndjson,
)


def _all_text(directory: Path) -> str:
    """Every output file, plus the decoded text of every attachment."""
    parts = []
    for path in sorted(directory.iterdir()):
        parts.append(path.read_text(encoding="utf-8"))
        if path.suffix == ".ndjson":
            for resource in read_ndjson(path):
                for content in resource.get("content", []):
                    data = content.get("attachment", {}).get("data")
                    if data:
                        parts.append(base64.b64decode(data).decode("utf-8"))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def canary_run(
    canary_bundle: Path,
    tmp_path_factory: pytest.TempPathFactory,
    policy: Policy,
    key: PseudonymKey,
    scrubber: TextScrubber,
) -> Path:
    out = tmp_path_factory.mktemp("canary")
    pseudonymize(canary_bundle, out, policy, key, workers=1, today=TODAY, scrubber=scrubber)
    return out


def test_canary_leaves_no_identifying_string(
    canary_bundle: Path, canary_run: Path, key: PseudonymKey
) -> None:
    bundle = orjson.loads(canary_bundle.read_bytes())
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    terms = identifying_terms(patient, 1)
    kinds = {t.entity for t in terms}
    assert {"PERSON", "PHONE_NUMBER", "LOCATION", "IDENTIFIER"} <= kinds and len(terms) > 20
    text = _all_text(canary_run)
    for term in terms:
        assert_absent(term.text, text, "the canary output")
    assert_absent("Carolee", text, "the canary output")
    _, scan_terms, ids = input_terms(canary_bundle)
    result = scan_output(canary_run, scan_terms, key=key, patient_ids=ids)
    assert result.attachments_decoded >= 14 and result.own_patient_checked
    assert result.leaks == [], [str(leak) for leak in result.leaks]
    # the full scan too: every person the bundle names, birth dates, date-offset leaks
    full = scan_output(canary_run, key=key, context=scan_context(canary_bundle))
    assert full.leaks == [], [str(leak) for leak in full.leaks]


def test_canary_notes_survive_scrubbed(canary_bundle: Path, canary_run: Path) -> None:
    notes = read_ndjson(canary_run / "DocumentReference.ndjson")
    assert len(notes) == 14
    texts = [base64.b64decode(n["content"][0]["attachment"]["data"]).decode() for n in notes]
    assert all("# Chief Complaint" in t for t in texts)  # the note is still a note
    assert sum(t.count("[PERSON_") for t in texts) >= 14  # the patient's name became a token
    tokens = {
        t.split("[PERSON_")[1][:10] for t in texts if "History of Present Illness\n[PERSON_" in t
    }
    assert len(tokens) == 1  # the same name gives the same token in every note
    report = orjson.loads((canary_run / "privacy-report.json").read_bytes())
    assert report["text"]["deny_list_hits"] >= 14
    assert report["text"]["elements_scanned"] >= 14 + 14  # notes and their narratives


def test_dates_in_notes_move_with_the_structured_dates(
    canary_bundle: Path, canary_run: Path
) -> None:
    for note in read_ndjson(canary_run / "DocumentReference.ndjson"):
        text = base64.b64decode(note["content"][0]["attachment"]["data"]).decode()
        first_line = text.strip().splitlines()[0]  # Synthea notes start with the visit date
        assert first_line == note["date"][:10]


def test_same_key_same_output(
    canary_bundle: Path,
    canary_run: Path,
    tmp_path: Path,
    policy: Policy,
    key: PseudonymKey,
    scrubber: TextScrubber,
) -> None:
    pseudonymize(canary_bundle, tmp_path, policy, key, workers=1, today=TODAY, scrubber=scrubber)
    for path in canary_run.glob("*.ndjson"):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def _nir(body: str) -> str:
    return f"{body}{97 - int(body) % 97:02d}"


def _french_input(directory: Path) -> tuple[dict[str, Any], str, str]:
    own_nir = _nir("1840575123456")
    other_nir = _nir("2690549588157")
    assert nir_key_is_valid(own_nir) and nir_key_is_valid(other_nir)
    spaced = " ".join(
        [
            own_nir[0],
            own_nir[1:3],
            own_nir[3:5],
            own_nir[5:7],
            own_nir[7:10],
            own_nir[10:13],
            own_nir[13:],
        ]
    )
    patient = {
        "resourceType": "Patient",
        "id": "fr-1",
        "name": [{"family": "Lefebvre", "given": ["Amélie"]}],
        "telecom": [{"system": "phone", "value": "06 12 34 56 78"}],
        "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": own_nir}],
        "address": [
            {
                "line": ["12 rue des Glycines"],
                "city": "Lyon",
                "postalCode": "69003",
                "country": "FR",
            }
        ],
        "birthDate": "1984-05-03",
        "communication": [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr-FR"}]}}
        ],
    }
    note = (
        "Compte rendu du 12/03/2021.\n"
        f"Mme Amélie Lefebvre, NIR {spaced}, tél 06 12 34 56 78, demeurant 12 rue des Glycines, 69003 Lyon.\n"
        f"Douleur thoracique. Son conjoint (NIR {other_nir}) l'accompagne."
    )
    document = {
        "resourceType": "DocumentReference",
        "id": "doc-1",
        "status": "current",
        "subject": {"reference": "Patient/fr-1"},
        "date": "2021-03-12T10:00:00+01:00",
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": base64.b64encode(note.encode()).decode(),
                }
            }
        ],
    }
    write_ndjson(directory / "Patient.ndjson", [patient])
    write_ndjson(directory / "DocumentReference.ndjson", [document, {**document, "id": "doc-2"}])
    return patient, note, other_nir


def test_french_nir_in_french_notes_is_caught(
    tmp_path: Path, policy: Policy, key: PseudonymKey, scrubber: TextScrubber
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    patient, _, other_nir = _french_input(source)
    out = tmp_path / "out"
    report = pseudonymize(source, out, policy, key, workers=1, today=TODAY, scrubber=scrubber)
    document = read_ndjson(out / "DocumentReference.ndjson")[0]
    text = base64.b64decode(document["content"][0]["attachment"]["data"]).decode()
    assert text.count("[FR_NIR_") == 2
    assert_absent(other_nir, text, "the French note")  # not the patient's: found by the recognizer
    for term in identifying_terms(patient, 1, quasi=True):
        assert_absent(term.text, text, "the French note")
    shifted = parse_date(document["date"])[0]
    assert_present(
        f"{shifted.day:02d}/{shifted.month:02d}/{shifted.year}", text, "the French note"
    )  # day first
    assert report.text_stats.entities["FR_NIR"] == 4
    # two identical notes: Presidio analysed the text once
    assert (
        report.text_stats.cache_hits >= 1
        and report.text_stats.analysed <= report.text_stats.elements - 1
    )


def test_xhtml_markup_survives(
    tmp_path: Path, policy: Policy, key: PseudonymKey, scrubber: TextScrubber
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "name": [{"family": "Quinterra", "given": ["Ottilie"]}],
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p><b>Ottilie Quinterra</b>, born 1961-04-03</p></div>',
        },
    }
    write_ndjson(source / "Patient.ndjson", [patient])
    pseudonymize(source, tmp_path / "out", policy, key, workers=1, today=TODAY, scrubber=scrubber)
    div = read_ndjson(tmp_path / "out" / "Patient.ndjson")[0]["text"]["div"]
    assert div.startswith(
        '<div xmlns="http://www.w3.org/1999/xhtml"><p><b>[PERSON_'
    ) and div.endswith("</p></div>")
    shifted = dt.date(1961, 4, 3) + dt.timedelta(days=key.day_offset("p1", policy.max_shift_days))
    assert f"born {shifted.year}</p>" in div  # a birth date in text keeps its year only


@pytest.mark.parametrize(
    "module",
    [
        "dates",
        "generalize",
        "keys",
        "references",
        "patients",
        "terms",
        "text",
        "textdates",
        "patterns",
        "persons",
        "clinical",
        "recognizers",
        "fhirtypes",
        "policy",
    ],
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(f"fhirlake.pseudonymize.{module}"))
    assert result.failed == 0
