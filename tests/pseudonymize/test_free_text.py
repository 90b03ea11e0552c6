"""Free text end to end: the export's people however written, identifiers, clinical words kept,
and the leak scan finding what a weaker scrubber would leave (both languages)."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from fhirlake.pseudonymize.keys import PseudonymKey
from fhirlake.pseudonymize.pipeline import pseudonymize
from fhirlake.pseudonymize.policy import Policy
from fhirlake.pseudonymize.scan import scan_context, scan_output
from fhirlake.pseudonymize.text import TextScrubber
from tests.pseudonymize.conftest import (
    TODAY,
    assert_absent,
    assert_present,
    read_ndjson,
    write_ndjson,
)

PATIENT = {
    "resourceType": "Patient",
    "id": "fr-7",
    "name": [
        {"use": "official", "family": "Dupont-Lefèvre", "given": ["Hélène", "Marie"]},
        {"use": "maiden", "family": "Quéméner"},
    ],
    "contact": [{"name": {"family": "Dupont-Lefèvre", "given": ["Arnaud"]}}],
    "birthDate": "1958-04-03",
    "telecom": [{"system": "phone", "value": "06 12 34 56 78"}],
    "address": [{"line": ["12 rue des Glycines"], "city": "Lyon", "postalCode": "69003"}],
}
RELATIVE = {
    "resourceType": "RelatedPerson",
    "id": "rp-1",
    "patient": {"reference": "Patient/fr-7"},
    "name": [{"family": "Kervella", "given": ["Soizic"]}],
}
CLINICIAN = {
    "resourceType": "Practitioner",
    "id": "dr-1",
    "name": [{"family": "Barthélémy", "given": ["Océane"], "prefix": ["Dr"]}],
}
CONDITION = {
    "resourceType": "Condition",
    "id": "c-1",
    "subject": {"reference": "Patient/fr-7"},
    "code": {
        "coding": [
            {
                "system": "http://snomed.info/sct",
                "code": "49049000",
                "display": "Maladie de Parkinson",
            }
        ],
        "text": "Parkinson",
    },
}
MEDICATION = {
    "resourceType": "MedicationRequest",
    "id": "m-1",
    "status": "active",
    "intent": "order",
    "subject": {"reference": "Patient/fr-7"},
    "medicationCodeableConcept": {"text": "Modopar 125 mg"},
}

NOTE_FR = (
    "Motif : suivi. Antécédents : Maladie de Parkinson, Diabète de type 2 sous Metformine.\n"
    "Mme HÉLÈNE DUPONT-LEFEVRE (née QUEMENER) vue le lundi 8 avril 2024 avec son fils Arnaud "
    "et sa fille Soizic KERVELLA. Née le 3 avril 1958. Traitement : Modopar 125 mg, Lovenox.\n"
    "Assurée ABC-123456789, IPP 8812345. Holter ECG prévu le 15/04/2024.\n"
    "Dupont-Lefevre H. reverra le Dr Océane Barthelemy. Signé : BARTHÉLÉMY O.\n"
)
NOTE_EN = (
    "Chief Complaint: tremor. History: Parkinson's disease on Modopar 125 mg.\n"
    "Seen Nov 3, 2023 with her son Arnaud Dupont-Lefevre. Member ID XK-2938475.\n"
    "Signed: Dr. Oceane BARTHELEMY, November 3rd, 2023.\n"
)


def _document(doc_id: str, text: str, language: str | None = None) -> dict[str, Any]:
    attachment: dict[str, Any] = {
        "contentType": "text/plain; charset=utf-8",
        "data": base64.b64encode(text.encode()).decode(),
    }
    if language:
        attachment["language"] = language
    return {
        "resourceType": "DocumentReference",
        "id": doc_id,
        "status": "current",
        "subject": {"reference": "Patient/fr-7"},
        "date": "2024-04-08T10:00:00+02:00",
        "content": [{"attachment": attachment}],
    }


def _export(folder: Path) -> Path:
    folder.mkdir()
    write_ndjson(folder / "Patient.ndjson", [PATIENT])
    write_ndjson(folder / "RelatedPerson.ndjson", [RELATIVE])
    write_ndjson(folder / "Practitioner.ndjson", [CLINICIAN])
    write_ndjson(folder / "Condition.ndjson", [CONDITION])
    write_ndjson(folder / "MedicationRequest.ndjson", [MEDICATION])
    write_ndjson(
        folder / "DocumentReference.ndjson",
        [_document("d-fr", NOTE_FR), _document("d-en", NOTE_EN)],
    )
    return folder


def _notes(out: Path) -> dict[str, str]:
    return {
        note["id"]: base64.b64decode(note["content"][0]["attachment"]["data"]).decode()
        for note in read_ndjson(out / "DocumentReference.ndjson")
    }


@pytest.fixture(scope="module")
def run(
    tmp_path_factory: pytest.TempPathFactory,
    policy: Policy,
    key: PseudonymKey,
    scrubber: TextScrubber,
) -> tuple[Path, Path, list[str]]:
    base = tmp_path_factory.mktemp("free-text")
    source = _export(base / "in")
    out = base / "out"
    pseudonymize(source, out, policy, key, workers=1, today=TODAY, scrubber=scrubber)
    return source, out, list(_notes(out).values())


@pytest.mark.parametrize(
    "variant",
    [
        "HÉLÈNE",
        "Hélène",
        "DUPONT",
        "LEFEVRE",
        "Lefèvre",
        "QUEMENER",
        "Quéméner",
        "Arnaud",
        "Soizic",
        "KERVELLA",
        "Océane",
        "Oceane",
        "Barthelemy",
        "BARTHÉLÉMY",
        "BARTHELEMY",
    ],
)
def test_every_person_of_the_export_is_gone_however_written(
    run: tuple[Path, Path, list[str]], variant: str
) -> None:
    for text in run[2]:
        assert_absent(variant, text, "a scrubbed note")


@pytest.mark.parametrize(
    "identifier",
    ["ABC-123456789", "8812345", "XK-2938475", "06 12 34 56 78", "12 rue des Glycines"],
)
def test_identifiers_by_shape_and_label_are_gone(
    run: tuple[Path, Path, list[str]], identifier: str
) -> None:
    for text in run[2]:
        assert_absent(identifier, text, "a scrubbed note")


@pytest.mark.parametrize(
    "term",
    [
        "Motif",
        "Antécédents",
        "Maladie de Parkinson",
        "Diabète de type 2",
        "Metformine",
        "Modopar 125 mg",
        "Lovenox",
        "Holter ECG",
        "Traitement",
        "Chief Complaint",
        "Parkinson's disease",
    ],
)
def test_clinical_words_survive(run: tuple[Path, Path, list[str]], term: str) -> None:
    assert any(term in text for text in run[2]), f"{term!r} was replaced"


def test_dates_move_in_their_own_format_and_birth_dates_keep_the_year(
    run: tuple[Path, Path, list[str]], key: PseudonymKey, policy: Policy
) -> None:
    offset = dt.timedelta(days=key.day_offset("fr-7", policy.max_shift_days))
    notes = _notes(run[1])
    french, english = notes[key.resource_id("d-fr")], notes[key.resource_id("d-en")]
    visit = dt.date(2024, 4, 8) + offset
    months = "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"
    days = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
    assert_present(
        f"{days[visit.weekday()]} {visit.day}{'er' if visit.day == 1 else ''} "
        f"{months.split()[visit.month - 1]} {visit.year}",
        french,
        "the French note",
    )
    holter = dt.date(2024, 4, 15) + offset
    assert_present(f"{holter.day:02d}/{holter.month:02d}/{holter.year}", french, "the French note")
    born = dt.date(1958, 4, 3) + offset
    assert_present(f"Née le {born.year}.", french, "the French note")
    seen = dt.date(2023, 11, 3) + offset
    assert_present(f"{seen.strftime('%b')} {seen.day}, {seen.year}", english, "the English note")
    for raw in ("8 avril 2024", "15/04/2024", "Nov 3, 2023", "3 avril 1958"):
        assert_absent(raw, french + english, "the notes")


def test_the_scan_passes_the_scrubbed_output(
    run: tuple[Path, Path, list[str]], key: PseudonymKey
) -> None:
    source, out, _ = run
    result = scan_output(out, key=key, context=scan_context(source))
    assert result.leaks == [], [str(leak) for leak in result.leaks]


def _plant(out: Path, target: Path, text: str, key: PseudonymKey) -> Path:
    """A copy of the output whose first note says ``text`` instead."""
    target.mkdir()
    notes = read_ndjson(out / "DocumentReference.ndjson")
    notes[0]["content"][0]["attachment"]["data"] = base64.b64encode(text.encode()).decode()
    write_ndjson(target / "DocumentReference.ndjson", notes)
    return target


@pytest.mark.parametrize(
    ("planted", "entity"),
    [
        ("Revu avec le Dr Océane Barthélémy.", "PERSON"),  # a clinician's name
        ("Revu avec BARTHELEMY O.", "PERSON"),  # ... in capitals, without accents, initial
        ("Mme Helene DUPONT-LEFEVRE va mieux.", "PERSON"),  # the patient, accents dropped
        ("Anniversaire : 03/04/1958.", "BIRTH_DATE"),
    ],
)
def test_the_scan_flags_planted_leaks(
    run: tuple[Path, Path, list[str]], tmp_path: Path, key: PseudonymKey, planted: str, entity: str
) -> None:
    source, out, _ = run
    leaky = _plant(out, tmp_path / "leaky", planted, key)
    result = scan_output(leaky, key=key, context=scan_context(source))
    assert entity in {leak.entity for leak in result.leaks}
    assert all(planted not in str(leak) for leak in result.leaks)  # never the string itself


def test_the_scan_flags_a_date_offset_leak(
    run: tuple[Path, Path, list[str]], tmp_path: Path, key: PseudonymKey, policy: Policy
) -> None:
    source, out, _ = run
    shifted = dt.date(2024, 4, 8) + dt.timedelta(days=key.day_offset("fr-7", policy.max_shift_days))
    planted = f"Vue le 8 avril 2024 (consultation du {shifted.strftime('%d/%m/%Y')})."
    leaky = _plant(out, tmp_path / "leaky", planted, key)
    result = scan_output(leaky, key=key, context=scan_context(source))
    assert "DATE_OFFSET" in {leak.entity for leak in result.leaks}
    honest = _plant(
        out, tmp_path / "honest", f"Consultation du {shifted.strftime('%d/%m/%Y')}.", key
    )
    assert scan_output(honest, key=key, context=scan_context(source)).leaks == []


def _delta(folder: Path, rows: dict[str, list[Any]]) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    write_deltalake(str(folder), pa.table(rows))


def test_privacy_scan_of_the_lake_finds_what_a_view_kept(
    run: tuple[Path, Path, list[str]],
    tmp_path: Path,
    key: PseudonymKey,
    policy: Policy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fhirlake.cli import main
    from fhirlake.pseudonymize.keys import KEY_ENV_VAR

    source, out, _ = run
    patient = key.resource_id("fr-7")
    notes = [line.decode() for line in (out / "DocumentReference.ndjson").read_bytes().splitlines()]
    lake = tmp_path / "lake"
    _delta(lake / "silver" / "DocumentReference", {"patient_key": [patient] * 2, "resource": notes})
    _delta(lake / "gold" / "condition", {"patient_id": [patient], "code_text": ["Parkinson"]})
    secret = tmp_path / "key"
    secret.write_bytes(key._secret)  # the session key, so the scan finds each row's patient
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    assert (
        main(
            [
                "privacy",
                "scan",
                "--input",
                str(source),
                "--lake",
                str(lake),
                "--key-file",
                str(secret),
            ]
        )
        == 0
    )
    assert "2 lake tables" in capsys.readouterr().out

    shifted = dt.date(2024, 4, 8) + dt.timedelta(days=key.day_offset("fr-7", policy.max_shift_days))
    leaky = tmp_path / "leaky"
    _delta(
        leaky / "gold" / "note_text",
        {
            "patient_id": [patient, patient],
            "text": [
                f"Vue le 08/04/2024, revue le {shifted.strftime('%d/%m/%Y')}.",
                "Courrier du Dr BARTHELEMY Océane; Mme HELENE DUPONT-LEFEVRE.",
            ],
        },
    )
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "privacy",
                "scan",
                "--input",
                str(source),
                "--lake",
                str(leaky),
                "--key-file",
                str(secret),
            ]
        )
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "gold/note_text:1: DATE_OFFSET of patient #1" in err
    assert "gold/note_text:2: PERSON of clinician #1" in err
    assert "gold/note_text:2: PERSON of patient #1" in err
    assert_absent("BARTHELEMY", err, "the scan's own output")
