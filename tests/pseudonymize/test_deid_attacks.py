"""Attacks on free-text de-identification (issue #14), written from the issue, not the code.

One labelled corpus per module (French and English notes in one FHIR export, see
tests/pseudonymize/corpus) goes through the real ``fhirlake pseudonymize`` with a random key;
every test then reads what came out. Each test names one behaviour the issue promises, per
date format, name variant or identifier shape, so a failure says which one broke.

Failures never print a patient's string: they name the note's marker (a corpus code such as
``fr-00012``), the format or variant, and a hash of the surface.

The scanner tests use an oracle output: the real pseudonymised export with every note
replaced by a perfect redaction made from the labels (:mod:`corpus.oracle`). ``privacy scan``
must pass it, and must fail it once a single leak is planted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import secrets
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.pseudonymize.corpus import (
    BIRTH_FORMATS,
    NoteLabels,
    NoteResult,
    evaluate,
    write_corpus,
    write_oracle,
)
from tests.pseudonymize.corpus import dates as D
from tests.pseudonymize.corpus.people import (
    CLINICIAN_VARIANTS,
    NAME_VARIANTS,
    fold,
    has_accent,
    strip_accents,
)

pytestmark = pytest.mark.slow

NOTES_PER_LANGUAGE = 40
SEEDS = {"fr": 1401, "en": 1402}
KEY_ENV = "FHIRLAKE_PSEUDONYM_KEY"
LOCALES = {"fr": ("fr_FR",), "en": ("en_US", "en_GB")}


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class Run:
    root: Path
    raw: Path
    out: Path
    env: dict[str, str]
    labels: list[NoteLabels]
    results: list[NoteResult]

    def of(self, language: str) -> list[NoteResult]:
        return [r for r in self.results if r.labels.language == language]


def _merge(parts: list[Path], into: Path) -> None:
    into.mkdir(parents=True)
    for name in sorted({p.name for part in parts for p in part.glob("*.ndjson")}):
        with (into / name).open("wb") as f:
            for part in parts:
                if (part / name).exists():
                    f.write((part / name).read_bytes())


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("deid-attacks")
    labels: list[NoteLabels] = []
    for language, seed in SEEDS.items():
        labels += write_corpus(root / language, language=language,  # type: ignore[arg-type]
                               notes=NOTES_PER_LANGUAGE, seed=seed)
    raw, out = root / "raw", root / "out"
    _merge([root / "fr", root / "en"], raw)
    env = dict(os.environ, **{KEY_ENV: secrets.token_hex(32)})
    done = subprocess.run(
        [sys.executable, "-m", "fhirlake", "pseudonymize", str(raw), str(out), "--workers", "2"],
        env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"pseudonymize exited {done.returncode}: {done.stderr[-800:]}"
    return Run(root, raw, out, env, labels, evaluate(labels, out))


def _spans(run: Run, language: str, label: str, **match: object):
    """(result, span result) pairs of ``label`` in ``language`` whose span fields match."""
    found = []
    for r in run.of(language):
        for sr in r.spans:
            s = sr.span
            if s.label == label and all(getattr(s, k) == v for k, v in match.items()):
                found.append((r, sr))
    return found


def _describe(pairs, limit: int = 8) -> str:
    return "; ".join(f"{r.labels.marker} {sr.span.format or sr.span.variant} "
                     f"(sha256 {digest(sr.span.text)})" for r, sr in pairs[:limit])


def _formats(language: str, table: dict[str, tuple[str, ...]]) -> list[str]:
    return sorted({f for loc in LOCALES[language] for f in table[loc]})


DATE_CASES = [(lang, fmt) for lang in ("fr", "en") for fmt in _formats(lang, D.FORMATS)]
BIRTH_CASES = [(lang, fmt) for lang in ("fr", "en") for fmt in _formats(lang, BIRTH_FORMATS)]
ID_SHAPES = {"fr": ("nir_spaced", "nir_compact", "ipp", "nda", "member", "dossier", "rpps"),
             "en": ("mrn", "ssn", "nhs_spaced", "nhs_compact", "member", "policy", "dossier",
                    "nda", "rpps")}


# --- the run itself --------------------------------------------------------------------------

def test_every_note_comes_out_and_each_patient_has_one_offset(run: Run) -> None:
    missing = [r.labels.marker for r in run.results if r.output is None or r.offset is None]
    assert not missing, f"notes not found (or without a shifted date) in the output: {missing[:8]}"
    offsets: dict[str, set[int]] = defaultdict(set)
    for r in run.results:
        offsets[r.labels.patient_id].add(r.offset)  # type: ignore[arg-type]
    assert all(len(v) == 1 for v in offsets.values()), "a patient's notes moved by different offsets"
    values = [next(iter(v)) for v in offsets.values()]
    assert all(abs(v) <= 366 for v in values)
    assert any(v != 0 for v in values), "no date was shifted at all"


# --- dates -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("language", "fmt"), DATE_CASES)
def test_no_date_survives_verbatim(run: Run, language: str, fmt: str) -> None:
    """Numeric or written out, with or without weekday or year: the raw date is gone (a
    surface still there counts only if the note's correctly shifted dates account for it)."""
    pairs = _spans(run, language, "DATE", format=fmt)
    assert pairs, f"the corpus has no {fmt} date in {language}"
    leaked = [(r, sr) for r, sr in pairs if not sr.caught]
    assert not leaked, (f"{len(leaked)}/{len(pairs)} {language} {fmt} dates survive verbatim: "
                        + _describe(leaked))


@pytest.mark.parametrize(("language", "fmt"), DATE_CASES)
def test_dates_move_by_the_patient_offset_in_the_same_format(run: Run, language: str,
                                                             fmt: str) -> None:
    pairs = _spans(run, language, "DATE", format=fmt)
    assert pairs, f"the corpus has no {fmt} date in {language}"
    wrong = [(r, sr) for r, sr in pairs if sr.consistent is not True]
    # a shifted date the oracle would also refuse is rare; none is tolerated here
    assert not wrong, (f"{len(wrong)}/{len(pairs)} {language} {fmt} dates are not the date "
                       "+ the patient's offset written in the same format: " + _describe(wrong))


@pytest.mark.parametrize(("language", "fmt"), BIRTH_CASES)
def test_birth_dates_keep_only_the_year(run: Run, language: str, fmt: str) -> None:
    """"née le 3 avril 1958", "DOB: 04/03/1958", "born on April 3, 1958": only a year is left
    (the year as written or of the shifted date), never the day and month, shifted or not."""
    pairs = _spans(run, language, "BIRTH_DATE", format=fmt)
    assert pairs, f"the corpus has no {fmt} birth date in {language}"
    wrong = [(r, sr) for r, sr in pairs if not sr.year_only]
    assert not wrong, (f"{len(wrong)}/{len(pairs)} {language} birth dates ({fmt}) keep more "
                       "than the year, or lose it: " + _describe(wrong))


# --- names -----------------------------------------------------------------------------------

def _name_leaks(pairs) -> list:
    return [(r, sr) for r, sr in pairs if not sr.caught]


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("variant", NAME_VARIANTS)
def test_the_patient_name_is_gone_in_every_variant(run: Run, language: str, variant: str) -> None:
    """Upper case, no accents, one part of a compound name, word order swapped, initials,
    maiden name: no token of 3+ letters of the patient's name is left in the note."""
    pairs = _spans(run, language, "NAME", role="patient", variant=variant)
    assert pairs, f"the corpus has no patient name written {variant} in {language}"
    leaked = _name_leaks(pairs)
    assert not leaked, (f"{len(leaked)}/{len(pairs)} {language} patient names written "
                        f"{variant} survive: " + _describe(leaked))


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("variant", CLINICIAN_VARIANTS)
def test_clinician_names_are_gone(run: Run, language: str, variant: str) -> None:
    """Every Practitioner named in a note ("Dr Firstname Lastname", "Pr LASTNAME", …)."""
    pairs = _spans(run, language, "NAME", role="clinician", variant=variant)
    assert pairs, f"the corpus has no clinician name written {variant} in {language}"
    leaked = _name_leaks(pairs)
    assert not leaked, (f"{len(leaked)}/{len(pairs)} {language} clinician names written "
                        f"{variant} survive: " + _describe(leaked))


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("has_language", [True, False], ids=["with-language", "no-language"])
def test_relatives_names_are_gone(run: Run, language: str, has_language: bool) -> None:
    """Patient.contact and RelatedPerson names (maiden names too), whether or not the patient
    has a communication language set."""
    pairs = [(r, sr) for r, sr in _spans(run, language, "NAME", role="relative")
             if r.labels.patient_has_language == has_language]
    assert pairs, f"the corpus has no relative's name here ({language}, {has_language})"
    leaked = _name_leaks(pairs)
    assert not leaked, (f"{len(leaked)}/{len(pairs)} {language} relatives' names survive: "
                        + _describe(leaked))


@pytest.mark.parametrize("language", ["fr", "en"])
def test_most_names_no_resource_holds_are_gone(run: Run, language: str) -> None:
    """People only the note names (a neighbour, a nurse, a secretary), found by the model
    alone: the issue's target, recall >= 0.99 on names."""
    pairs = _spans(run, language, "NAME", role="other")
    assert pairs
    leaked = _name_leaks(pairs)
    assert len(leaked) <= len(pairs) * 0.01, (
        f"{len(leaked)}/{len(pairs)} {language} names of people no resource holds survive: "
        + _describe(leaked))


# --- identifiers, phones, e-mails, addresses -------------------------------------------------

@pytest.mark.parametrize(("language", "shape"),
                         [(lang, shape) for lang, shapes in ID_SHAPES.items() for shape in shapes])
def test_identifier_shapes_are_gone(run: Run, language: str, shape: str) -> None:
    """NIR/INS (spaced or not), IPP, NDA, MRN, SSN, NHS number, member id, policy number
    ("ABC-123456789"), file and accession numbers, RPPS/NPI/GMC: labelled or bare."""
    pairs = _spans(run, language, "ID", variant=shape)
    assert pairs, f"the corpus has no {shape} identifier in {language}"
    leaked = [(r, sr) for r, sr in pairs if not sr.caught]
    assert not leaked, (f"{len(leaked)}/{len(pairs)} {language} {shape} identifiers survive: "
                        + _describe(leaked))


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("label", ["PHONE", "EMAIL", "ADDRESS"])
def test_contact_details_are_gone(run: Run, language: str, label: str) -> None:
    pairs = _spans(run, language, label)
    assert pairs
    leaked = [(r, sr) for r, sr in pairs if not sr.caught]
    assert not leaked, (f"{len(leaked)}/{len(pairs)} {language} {label} spans survive: "
                        + _describe(leaked))


# --- clinical words --------------------------------------------------------------------------

def _damaged(results: list[NoteResult], sources: set[str]) -> tuple[int, int, list[str]]:
    n = damaged = 0
    where = []
    for r in results:
        for source, (count, lost) in r.terms.items():
            if source in sources:
                n += count
                damaged += lost
                if lost:
                    where.append(f"{r.labels.marker}:{source}")
    return n, damaged, where


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_exports_own_coded_displays_survive(run: Run, language: str) -> None:
    """Condition, MedicationRequest, Observation, Procedure, AllergyIntolerance and
    Immunization displays of this very export, quoted in its notes, are kept verbatim
    ("Maladie de Parkinson", "Holter ECG", "Lovenox 4000 UI/0,4 mL", "insulin isophane…")."""
    n, damaged, where = _damaged(run.of(language), {"coded"})
    assert n
    assert damaged == 0, f"{damaged}/{n} {language} coded displays damaged: {where[:10]}"


@pytest.mark.parametrize("language", ["fr", "en"])
def test_clinical_vocabulary_survives(run: Run, language: str) -> None:
    """Section headings (Motif, Antécédents, "# Social History"), drug names (Lovenox,
    Eliquis, Metformine), tests (HbA1c, "Holter ECG", covid-19), diagnoses (Parkinson) and ages
    ("quit smoking at age 45"): at most 2 % damaged, the issue's target."""
    n, damaged, where = _damaged(run.of(language),
                                 {"heading", "drug", "test", "diagnosis", "age"})
    assert n
    assert damaged <= 0.02 * n, f"{damaged}/{n} {language} clinical words damaged: {where[:10]}"


# --- the scanner -----------------------------------------------------------------------------

def _scan(run: Run, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fhirlake", "privacy", "scan", str(folder), "--input",
         str(run.raw)], env=run.env, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def oracle(run: Run) -> Path:
    """The real output with every note perfectly redacted from the labels."""
    return write_oracle(run.labels, run.out, run.raw, run.root / "oracle")


def test_scan_passes_a_clean_output(run: Run, oracle: Path) -> None:
    """Shifted dates, birth years, clinical words and tags: nothing to report."""
    done = _scan(run, oracle)
    # the scanner prints file, line, entity type, patient ordinal and a hash: never the string
    assert done.returncode == 0, (f"scan exit {done.returncode} on a clean output: "
                                  f"{done.stdout[-1200:]} {done.stderr[-1200:]}")


def test_scan_passes_a_structured_shifted_date_that_lands_on_another_raw_date(
        run: Run, tmp_path: Path) -> None:
    """A stay as long as the patient's offset (a few days: common) comes out starting on the
    raw day it ended, and ending on that day's shifted twin. Nothing leaks: the output holds
    shifted dates only. A scanner that calls it a leak blocks clean batches at random,
    depending on the key.

    The same export plus one such Encounter for one patient (ending or starting on the day of
    one of their visits), pseudonymised again with the same key, then given clean notes."""
    result = next(r for r in run.results if r.offset)
    note, offset = result.labels, result.offset
    visit = dt.date.fromisoformat(note.note_date)
    other = visit - dt.timedelta(days=offset)
    start, end = min(visit, other), max(visit, other)
    raw2, out2 = tmp_path / "raw", tmp_path / "out"
    shutil.copytree(run.raw, raw2)
    encounter = {"resourceType": "Encounter", "id": "corpus-extra-encounter",
                 "status": "finished",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                           "code": "AMB"},
                 "subject": {"reference": f"Patient/{note.patient_id}"},
                 "period": {"start": f"{start.isoformat()}T09:00:00+01:00",
                            "end": f"{end.isoformat()}T10:00:00+01:00"}}
    with (raw2 / "Encounter.ndjson").open("ab") as f:
        f.write(orjson.dumps(encounter) + b"\n")
    done = subprocess.run(
        [sys.executable, "-m", "fhirlake", "pseudonymize", str(raw2), str(out2), "--workers",
         "2"], env=run.env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-800:]
    again = {r.labels.marker: r.offset for r in evaluate(run.labels, out2)}
    assert again[note.marker] == offset, "the same key gave the patient another offset"
    clean = write_oracle(run.labels, out2, raw2, tmp_path / "oracle")
    scan = subprocess.run(
        [sys.executable, "-m", "fhirlake", "privacy", "scan", str(clean), "--input", str(raw2)],
        env=run.env, capture_output=True, text=True, timeout=600, check=False)
    assert scan.returncode == 0, (f"scan exit {scan.returncode}: a shifted Encounter date equal "
                                  f"to another raw date of the patient was reported as a leak: "
                                  f"{scan.stdout[-800:]} {scan.stderr[-800:]}")


def _patient_resources(run: Run) -> dict[str, dict]:
    return {p["id"]: p for p in (orjson.loads(line) for line in
                                 (run.raw / "Patient.ndjson").read_bytes().splitlines())}


@pytest.mark.parametrize("language", ["fr", "en"])
def test_scan_flags_a_raw_written_date_beside_a_shifted_numeric_one(run: Run, oracle: Path,
                                                                    language: str) -> None:
    """The note holds the visit date shifted (numeric) and, beside it, the same visit date
    unshifted and written out: the offset leaks, the scan must say so."""
    result = next(r for r in run.of(language) if r.offset)
    note = result.labels
    visit = dt.date.fromisoformat(note.note_date)
    numeric = {"fr_FR": "dmy_slash", "en_US": "mdy_slash", "en_GB": "dmy_slash"}[note.locale]
    written = {"fr_FR": "weekday_dmy", "en_US": "mdy_long", "en_GB": "dmy_long"}[note.locale]
    shifted = D.render(visit + dt.timedelta(days=result.offset), numeric, note.language)
    raw = D.render(visit, written, note.language)
    line = (f"\nVu le {shifted} ; RDV initialement prévu {raw}.\n" if language == "fr"
            else f"\nSeen {shifted}; originally booked for {raw}.\n")
    planted = write_oracle(run.labels, run.out, run.raw, run.root / f"plant-date-{language}",
                           append={note.marker: line})
    done = _scan(run, planted)
    assert done.returncode == 1, (f"scan exit {done.returncode}: a raw written-out date beside a "
                                  f"shifted one in note {note.marker} was not reported")


@pytest.mark.parametrize("language", ["fr", "en"])
def test_scan_flags_a_clinicians_name_left_in_a_note(run: Run, oracle: Path,
                                                     language: str) -> None:
    note, index = next((r.labels, i) for r in run.of(language)
                       for i, s in enumerate(r.labels.spans)
                       if s.label == "NAME" and s.role == "clinician" and s.variant == "full")
    planted = write_oracle(run.labels, run.out, run.raw, run.root / f"plant-dr-{language}",
                           plant={note.marker: {index: note.spans[index].text}})
    done = _scan(run, planted)
    assert done.returncode == 1, (f"scan exit {done.returncode}: a clinician's full name left in "
                                  f"note {note.marker} was not reported")


@pytest.mark.parametrize(("language", "fmt"), [("fr", "dmy_long"), ("fr", "dmy_slash"),
                                           ("en", "mdy_ordinal"), ("en", "iso")])
def test_scan_flags_a_full_birth_date_left_in_a_note(run: Run, oracle: Path, language: str,
                                                     fmt: str) -> None:
    """The birth date in any format, unshifted, where only the year may be."""
    found = [(r.labels, i) for r in run.of(language) for i, s in enumerate(r.labels.spans)
             if s.label == "BIRTH_DATE"]
    assert found
    note, index = found[0]
    text = D.render(dt.date.fromisoformat(note.birth_date), fmt, language)
    planted = write_oracle(run.labels, run.out, run.raw,
                           run.root / f"plant-birth-{language}-{fmt}",
                           plant={note.marker: {index: text}})
    done = _scan(run, planted)
    assert done.returncode == 1, (f"scan exit {done.returncode}: a {fmt} birth date left in note "
                                  f"{note.marker} was not reported")


def _accent_case_variants(given: str, family: str, seed: int) -> dict[str, str]:
    """Spellings of an accented name that the export never holds as such."""
    bare = strip_accents(family)
    parts = [p for p in bare.replace(" ", "-").split("-") if len(p) >= 3]
    rng = random.Random(seed)
    mixed = "".join((c.upper() if rng.random() < 0.5 else c.lower()) for c in bare)
    mixed = mixed.replace("-", rng.choice([" ", "-", "  "]))
    if mixed == family:
        mixed = mixed.swapcase()
    return {
        "upper-no-accents": bare.upper(),
        "lower-no-accents-swapped": f"{bare.lower()} {strip_accents(given).lower()}",
        "one-part-upper-no-accents": max(parts, key=len).upper(),
        "random-case-no-accents-hyphen-or-space": mixed,
    }


@pytest.mark.parametrize("variant", ["upper-no-accents", "lower-no-accents-swapped",
                                     "one-part-upper-no-accents",
                                     "random-case-no-accents-hyphen-or-space"])
def test_scan_flags_an_accent_and_case_variant_of_the_patients_name(
        run: Run, oracle: Path, variant: str) -> None:
    patients = _patient_resources(run)
    candidates = []
    for r in run.of("fr"):
        official = patients[r.labels.patient_id]["name"][0]
        spans = [i for i, s in enumerate(r.labels.spans)
                 if s.label == "NAME" and s.role == "patient"]
        if has_accent(official["family"]) and spans:
            candidates.append((variant.startswith("one-part") and "-" in official["family"],
                               r, official, spans))
    if not candidates:
        pytest.fail("the French corpus has no patient with an accented family name")
    _, r, official, spans = max(candidates, key=lambda c: c[0])
    text = _accent_case_variants(official["given"][0], official["family"],
                                 seed=secrets.randbits(32))[variant]
    assert fold(text) == fold(text).casefold() and text != official["family"]
    planted = write_oracle(run.labels, run.out, run.raw, run.root / f"plant-accent-{variant}",
                           plant={r.labels.marker: {spans[0]: text}})
    done = _scan(run, planted)
    assert done.returncode == 1, (f"scan exit {done.returncode}: the patient's name written "
                                  f"{variant} in note {r.labels.marker} was not reported")
