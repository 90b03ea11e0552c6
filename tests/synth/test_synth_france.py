"""The French locale: NIR with a valid key, INS system, real places, FR Core profiles, French notes."""

from __future__ import annotations

import base64
import random
from datetime import date

import pytest

from fhirlake.synth.locales.fr import CITIES, INS_NIR_SYSTEM
from fhirlake.synth.nir import format_nir, make_nir, nir_is_valid, nir_key
from fhirlake.synth.terminology import CONCEPTS
from tests.synth.conftest import Run


def test_nir_key_matches_the_published_example() -> None:
    assert nir_key("2690549588157") == "80"
    assert format_nir("269054958815780") == "2 69 05 49 588 157 80"


def test_corsican_nir_counts_2a_as_19() -> None:
    nir = make_nir(random.Random(1), "male", date(1980, 7, 1), "2A004")
    assert nir.startswith("180072A004") and nir_is_valid(nir)
    assert nir[13:] == f"{97 - int(nir[:13].replace('2A', '19')) % 97:02d}"
    assert not nir_is_valid(nir[:13] + f"{(int(nir[13:]) + 1) % 100:02d}")


def test_patients_have_a_valid_ins_nir_consistent_with_sex_birth_and_birthplace(fr_run: Run) -> None:
    for p in fr_run.resources["Patient"]:
        ins = [i for i in p["identifier"] if i["system"] == INS_NIR_SYSTEM]
        assert len(ins) == 1 and ins[0]["use"] == "official"
        assert ins[0]["type"]["coding"][0]["code"] == "INS-NIR"
        nir = ins[0]["value"]
        assert nir_is_valid(nir)
        born = date.fromisoformat(p["birthDate"])
        assert nir[0] == ("1" if p["gender"] == "male" else "2")
        assert nir[1:5] == f"{born.year % 100:02d}{born.month:02d}"
        birthplace = next(e for e in p["extension"] if e["url"].endswith("patient-birthPlace"))
        assert nir[5:10] == birthplace["valueAddress"]["extension"][0]["valueCoding"]["code"]
        assert p["meta"]["profile"] == ["https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-ins"]


def test_addresses_are_real_communes_with_their_postal_codes(fr_run: Run) -> None:
    by_name = {c.name: c for c in CITIES}
    for p in fr_run.resources["Patient"]:
        address = p["address"][0]
        city = by_name[address["city"]]
        assert address["postalCode"] in city.postal_codes
        assert address["district"] == city.district and address["country"] == "FR"


@pytest.mark.parametrize("rtype", ["Encounter", "Condition", "MedicationRequest", "Procedure", "Immunization", "Organization", "Practitioner"])
def test_fr_core_profiles_in_meta(fr_run: Run, rtype: str) -> None:
    profiles = {tuple(r["meta"].get("profile", ())) for r in fr_run.resources[rtype]}
    assert len(profiles) == 1
    (profile,) = profiles.pop()
    assert profile.startswith("https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-")


def test_notes_and_labels_are_french(fr_run: Run) -> None:
    document = fr_run.resources["DocumentReference"][0]
    attachment = document["content"][0]["attachment"]
    assert attachment["language"] == "fr-FR"
    text = base64.b64decode(attachment["data"]).decode()
    assert text.startswith("Compte rendu du ") and "Motif" in text
    french = {c.code: c.fr for c in CONCEPTS.values()}
    conditions = fr_run.resources["Condition"]
    assert conditions
    for condition in conditions:
        coding = condition["code"]["coding"][0]
        assert condition["code"]["text"] == french[coding["code"]] != coding["display"]
