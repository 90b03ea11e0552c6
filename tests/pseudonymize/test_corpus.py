"""The labelled note corpus (tests/pseudonymize/corpus) says the truth about what it wrote.

Fast: no de-identifier runs here. The scorer is checked on outputs whose answer is known (the
input itself, a perfect redaction, a perfect redaction with one leak put back).
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import re
import shutil
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.pseudonymize.corpus import (
    BIRTH_FORMATS,
    FORMATS,
    MARKER_SYSTEM,
    RESOURCE_FILES,
    TEMPLATES,
    read_labels,
    redact,
    render,
    score,
    shifted_renderings,
    write_corpus,
    write_oracle,
)
from tests.pseudonymize.corpus.people import NAME_VARIANTS, fold, fold_words, strip_accents

LANGUAGES = ("fr", "en")


def _read(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@pytest.fixture(scope="module", params=LANGUAGES)
def small(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp(f"corpus-{request.param}")
    return request.param, out, write_corpus(out, language=request.param, notes=60, seed=11)


def test_every_span_and_term_is_the_text_at_its_offsets(small) -> None:
    _, _, labels = small
    for note in labels:
        regions = sorted([(s.start, s.end) for s in note.spans]
                         + [(t.start, t.end) for t in note.clinical_terms])
        for s in note.spans:
            assert note.text[s.start:s.end] == s.text, (note.marker, s.label)
            assert s.text.strip() == s.text and s.text, (note.marker, s.label)
        for t in note.clinical_terms:
            assert note.text[t.start:t.end] == t.text, (note.marker, t.source)
        for (_, end), (start, _) in itertools.pairwise(regions):
            assert end <= start, f"{note.marker}: overlapping labelled regions"


def test_labels_carry_what_the_scorer_needs(small) -> None:
    language, _, labels = small
    for note in labels:
        assert note.language == language
        for s in note.spans:
            if s.label in ("DATE", "BIRTH_DATE"):
                date = dt.date.fromisoformat(s.date)
                assert render(date, s.format, language) == s.text, (note.marker, s.format)
            if s.label == "BIRTH_DATE":
                assert s.date == note.birth_date
            if s.label == "NAME":
                assert s.role in ("patient", "relative", "clinician", "other")
                assert (s.reference is None) == (s.role == "other"), (note.marker, s.role)


def test_every_template_is_used(small) -> None:
    language, _, labels = small
    used = Counter(n.template for n in labels)
    assert set(used) == set(TEMPLATES[language])
    assert len(TEMPLATES[language]) >= 12


def test_a_small_corpus_holds_every_format_and_variant(small) -> None:
    language, _, labels = small
    spans = [s for n in labels for s in n.spans]
    locales = ("fr_FR",) if language == "fr" else ("en_US", "en_GB")
    date_formats = {f for loc in locales for f in FORMATS[loc]}
    birth_formats = {f for loc in locales for f in BIRTH_FORMATS[loc]}
    assert {s.format for s in spans if s.label == "DATE"} == date_formats
    assert {s.format for s in spans if s.label == "BIRTH_DATE"} == birth_formats
    patient_variants = {s.variant for s in spans if s.label == "NAME" and s.role == "patient"}
    assert patient_variants == set(NAME_VARIANTS)
    assert {s.role for s in spans if s.label == "NAME"} == {"patient", "relative", "clinician",
                                                           "other"}
    assert {s.label for s in spans} == {"NAME", "DATE", "BIRTH_DATE", "ID", "PHONE", "EMAIL",
                                        "ADDRESS"}
    assert {t.source for n in labels for t in n.clinical_terms} == {
        "coded", "heading", "drug", "test", "age", "diagnosis"}
    if language == "fr":
        # accented and compound names, written without accents or in capitals in the notes
        names = [s.text for s in spans if s.label == "NAME" and s.role == "patient"]
        assert any(fold(n) != n.casefold() for n in names)
        assert any("-" in n for n in names)
        assert any(s.variant == "FAMILY_noaccent" and "-" in s.text for s in spans
                   if s.label == "NAME")


def test_the_export_is_a_fhir_folder_whose_notes_are_the_labels(small) -> None:
    _, out, labels = small
    assert {p.stem for p in out.glob("*.ndjson")} == set(RESOURCE_FILES)
    assert read_labels(out) == labels
    patients = {p["id"]: p for p in _read(out / "Patient.ndjson")}
    docs = _read(out / "DocumentReference.ndjson")
    assert [d["id"] for d in docs] == [n.resource_id for n in labels]
    markers = set()
    for doc, note in zip(docs, labels, strict=True):
        attachment = doc["content"][0]["attachment"]
        assert attachment["contentType"].startswith("text/plain")
        assert base64.b64decode(attachment["data"]).decode("utf-8") == note.text
        assert doc["subject"]["reference"] == f"Patient/{note.patient_id}"
        assert doc["date"][:10] == note.note_date
        codes = [c["code"] for cat in doc["category"] for c in cat["coding"]
                 if c["system"] == MARKER_SYSTEM]
        assert codes == [note.marker]
        markers.add(note.marker)
        assert patients[note.patient_id]["birthDate"] == note.birth_date
        assert ("communication" in patients[note.patient_id]) == note.patient_has_language
    assert len(markers) == len(labels)
    # some patients have no language; relatives with maiden names; clinicians with roles
    assert any("communication" not in p for p in patients.values())
    assert any("communication" in p for p in patients.values())
    related = _read(out / "RelatedPerson.ndjson")
    assert any(any(n["use"] == "maiden" for n in r["name"]) for r in related)
    assert all("contact" in p for p in patients.values())
    practitioners = {p["id"] for p in _read(out / "Practitioner.ndjson")}
    roles = _read(out / "PractitionerRole.ndjson")
    assert {r["practitioner"]["reference"].split("/")[1] for r in roles} == practitioners
    for name in ("Condition", "MedicationRequest", "Observation", "Procedure",
                 "AllergyIntolerance", "Immunization"):
        for r in _read(out / f"{name}.ndjson"):
            concept = r.get("code") or r.get("medicationCodeableConcept") or r["vaccineCode"]
            assert concept["coding"][0]["display"] == concept["text"]


def test_held_names_are_held_by_the_resources_the_labels_name(small) -> None:
    """A NAME span said to be held by a resource has its every token in that resource."""
    _, out, labels = small
    resources = {}
    for name in ("Patient", "RelatedPerson", "Practitioner"):
        for r in _read(out / f"{name}.ndjson"):
            resources[f"{name}/{r['id']}"] = set(fold_words(orjson.dumps(r).decode()))
    for note in labels:
        for s in note.spans:
            if s.label == "NAME" and s.reference:
                missing = [t for t in fold_words(s.text) if len(t) >= 3
                           and t not in resources[s.reference]]
                assert not missing, (note.marker, s.role, s.variant)


def test_names_never_collide_with_the_rest_of_the_note(small) -> None:
    """Otherwise "the name survived" could not be told from "a word of the note survived"."""
    _, _, labels = small
    for note in labels:
        blank = list(note.text)
        for s in note.spans:
            if s.label in ("NAME", "EMAIL"):
                blank[s.start:s.end] = " " * (s.end - s.start)
        rest = set(fold_words("".join(blank)))
        for s in note.spans:
            if s.label == "NAME":
                assert not {t for t in fold_words(s.text) if len(t) >= 3} & rest, note.marker


def test_people_no_resource_holds_share_no_name_token_with_anyone_in_the_note(small) -> None:
    """Else a model's miss on them would count against a held name (or the reverse)."""
    _, _, labels = small
    for note in labels:
        tokens: dict[str, set[str]] = {}
        for s in note.spans:
            if s.label == "NAME":
                tokens.setdefault(s.person, set()).update(
                    t for t in fold_words(s.text) if len(t) >= 3)
        for k in ("O1", "O2"):
            for j, v in tokens.items():
                if j != k and k in tokens:
                    assert not tokens[k] & v, note.marker


def test_the_same_seed_gives_the_same_corpus(tmp_path: Path) -> None:
    a = write_corpus(tmp_path / "a", language="fr", notes=15, seed=4)
    b = write_corpus(tmp_path / "b", language="fr", notes=15, seed=4)
    c = write_corpus(tmp_path / "c", language="fr", notes=15, seed=5)
    assert a == b
    assert [n.text for n in a] != [n.text for n in c]
    assert (tmp_path / "a" / "Patient.ndjson").read_bytes() == (
        tmp_path / "b" / "Patient.ndjson").read_bytes()


@pytest.mark.parametrize("language", LANGUAGES)
def test_500_notes_are_generated_quickly(tmp_path: Path, language: str) -> None:
    started = time.perf_counter()
    labels = write_corpus(tmp_path, language=language, notes=500, seed=1)
    elapsed = time.perf_counter() - started
    assert len(labels) == 500
    assert len({n.patient_id for n in labels}) >= 100
    assert elapsed < 20, f"{elapsed:.1f} s for 500 notes"


def test_shifted_renderings_follow_the_format() -> None:
    assert shifted_renderings(dt.date(2024, 4, 8), "weekday_dmy", "fr", 7) == {
        "lundi 15 avril 2024"}
    assert shifted_renderings(dt.date(2023, 11, 3), "mdy_ordinal", "en", -2) == {
        "November 1st, 2023"}
    assert shifted_renderings(dt.date(2024, 4, 8), "dmy_slash_short", "fr", 30) == {"8/5/24"}
    assert shifted_renderings(dt.date(2024, 1, 25), "dmy_long", "fr", 7) == {
        "1er février 2024", "1 février 2024"}
    # a month and year: the month any of its days lands in, shifted
    assert shifted_renderings(dt.date(2024, 4, 20), "month_year", "fr", 10) == {
        "avril 2024", "mai 2024"}
    assert shifted_renderings(dt.date(2019, 3, 9), "month_year", "fr", -30) == {
        "janvier 2019", "février 2019", "mars 2019"}
    # "30 juin 2023" is written the same long or abbreviated: either answer keeps the format
    assert shifted_renderings(dt.date(2023, 6, 30), "dmy_abbr", "fr", 126) == {
        "3 nov. 2023", "3 novembre 2023"}


# --- the scorer, on outputs whose answer is known ------------------------------------------

def _shift_doc_dates(folder: Path, days: int) -> None:
    path = folder / "DocumentReference.ndjson"
    docs = _read(path)
    for d in docs:
        day = dt.date.fromisoformat(d["date"][:10]) + dt.timedelta(days=days)
        d["date"] = day.isoformat() + d["date"][10:]
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))


def test_the_input_itself_scores_as_leaking_everything(small) -> None:
    language, out, labels = small
    result = score(labels, out)[language]
    assert result["notes_matched"] == len(labels)
    for label in ("NAME", "BIRTH_DATE", "ID", "PHONE", "EMAIL", "ADDRESS"):
        assert result["recall"][label]["recall"] == 0.0, label
    # offset 0: every date is "shifted by 0 days in its own format"
    assert result["dates"]["consistent_share"] == 1.0
    assert result["precision"]["estimate"] == 1.0
    assert result["clinical_terms"]["damaged"] == 0
    assert result["birth_dates"]["year_only"] == 0


def test_a_perfect_redaction_scores_perfectly_and_one_leak_is_seen(small, tmp_path: Path) -> None:
    language, out, labels = small
    fake = tmp_path / "pseudonymised"
    shutil.copytree(out, fake)
    _shift_doc_dates(fake, 37)
    clean = write_oracle(labels, fake, out, tmp_path / "oracle")
    result = score(labels, clean)[language]
    for label, bucket in result["recall"].items():
        assert bucket["recall"] == 1.0, label
    assert result["precision"]["estimate"] == 1.0
    assert result["clinical_terms"]["damaged_share"] == 0.0
    assert result["birth_dates"]["year_only_share"] == 1.0
    assert result["dates"]["consistent_share"] > 0.95  # [DATE] where a raw date would clash
    assert result["offsets"]["patients_inconsistent"] == 0

    # put back one clinician name, one written-out date, one identifier
    note = next(n for n in labels if any(s.role == "clinician" for s in n.spans)
                and any(s.label == "DATE" and s.format == "dmy_long" for s in n.spans)
                and any(s.label == "ID" for s in n.spans))
    plant = {i: s.text for i, s in enumerate(note.spans)
             if (s.label == "NAME" and s.role == "clinician")
             or (s.label == "DATE" and s.format == "dmy_long") or s.label == "ID"}
    leaky = write_oracle(labels, fake, out, tmp_path / "leaky", plant={note.marker: plant})
    result = score(labels, leaky)[language]
    assert result["recall"]["NAME"]["recall"] < 1.0
    assert result["recall_by_variant"]["DATE"]["dmy_long"]["recall"] < 1.0
    assert result["dates"]["by_format"]["dmy_long"]["consistent_share"] < 1.0
    assert result["recall"]["ID"]["recall"] < 1.0
    assert result["recall"]["PHONE"]["recall"] == 1.0


def test_a_partial_name_leak_is_a_leak(small) -> None:
    """Hiding "DUPONT-" but leaving "LEFEVRE" does not catch the name."""
    from tests.pseudonymize.corpus import evaluate_note

    language, _, labels = small
    note = next(n for n in labels if any(
        s.label == "NAME" and len([t for t in fold_words(s.text) if len(t) >= 3]) >= 2
        for s in n.spans))
    index, span = next((i, s) for i, s in enumerate(note.spans) if s.label == "NAME"
                       and len([t for t in fold_words(s.text) if len(t) >= 3]) >= 2)
    last = [t for t in re.split(r"[\s\-]", span.text) if len(t) >= 3][-1]
    text = redact(note, 0, override={index: f"[NAME]-{last.upper()}"})
    doc = {"date": note.note_date, "content": [{"attachment": {
        "data": base64.b64encode(text.encode()).decode()}}]}
    result = evaluate_note(note, doc)
    assert not result.spans[index].caught
    assert result.spans[index].leaked_tokens
    token = fold(last)
    assert all(r.caught for i, r in enumerate(result.spans)
               if i != index and token not in fold_words(r.span.text)), language


# --- properties of the scorer (hypothesis) ---------------------------------------------------

_CASE_STYLES = st.sampled_from(["upper", "lower", "title", "same", "swapcase"])


def _restyle(text: str, case: str, accents: bool, hyphen: str) -> str:
    out = text if accents else strip_accents(text)
    out = {"upper": out.upper(), "lower": out.lower(), "title": out.title(),
           "swapcase": out.swapcase()}.get(case, out)
    return out.replace("-", hyphen)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), case=_CASE_STYLES, accents=st.booleans(),
       hyphen=st.sampled_from(["-", " ", "  ", "\u2011"]))
def test_any_case_accent_or_hyphen_variant_of_a_name_left_in_a_note_is_a_leak(
        small, data: st.DataObject, case: str, accents: bool, hyphen: str) -> None:
    """Whatever spelling of a name's token an output keeps, the scorer does not count the
    name as caught."""
    from tests.pseudonymize.corpus import evaluate_note

    _, _, labels = small
    candidates = [(n, i) for n in labels for i, s in enumerate(n.spans) if s.label == "NAME"]
    note, index = data.draw(st.sampled_from(candidates))
    tokens = [t for t in re.split(r"[\s.]+", note.spans[index].text) if len(fold(t)) >= 3]
    leak = _restyle(data.draw(st.sampled_from(tokens)), case, accents, hyphen)
    text = redact(note, 0, override={index: f"[NAME] {leak}"})
    doc = {"date": note.note_date, "content": [{"attachment": {
        "data": base64.b64encode(text.encode()).decode()}}]}
    assert not evaluate_note(note, doc).spans[index].caught


@settings(max_examples=200, deadline=None)
@given(date=st.dates(dt.date(1990, 1, 1), dt.date(2030, 12, 31)),
       offset=st.integers(-180, 180), lang=st.sampled_from(["fr", "en"]),
       fmt=st.sampled_from(sorted({f for fs in FORMATS.values() for f in fs})))
def test_a_correct_shift_is_always_among_the_accepted_renderings(
        date: dt.date, offset: int, lang: str, fmt: str) -> None:
    if fmt.endswith("no_year") and date.month == 2 and date.day == 29:
        return
    accepted = shifted_renderings(date, fmt, lang, offset)
    assert render(date + dt.timedelta(days=offset), fmt, lang) in accepted
    # and never the unshifted text, unless the shift cannot change it
    if offset and fmt != "month_year":
        assert render(date, fmt, lang) not in accepted or (offset % 365 == 0 and "no_year" in fmt)
