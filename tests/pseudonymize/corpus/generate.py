"""``write_corpus``: a FHIR R4 export folder of labelled clinical notes, one language at a time."""

from __future__ import annotations

import base64
import datetime as dt
import inspect
import random
import re
import uuid
from pathlib import Path
from typing import Any, Literal

import orjson

from . import dates as D
from . import templates_en, templates_fr, vocab
from .builder import Cycler, NoteContext, Renderer
from .labels import NoteLabels, Span
from .people import (
    PeopleFactory,
    Person,
    digits,
    fhir_phone,
    fold,
    fold_words,
    letters,
    national_phone,
    nhs_number,
    nhs_spaced,
    nir,
    nir_spaced,
    ssn,
)

MARKER_SYSTEM = "https://fhirlake.example/test-corpus/note"
"""DocumentReference.category coding that carries each note's marker (a code, not PII)."""

RESOURCE_FILES = ("Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Condition",
                  "MedicationRequest", "Observation", "Procedure", "AllergyIntolerance",
                  "Immunization", "Encounter", "DocumentReference")

TEMPLATES = {"fr": templates_fr.TEMPLATES, "en": templates_en.TEMPLATES}

HOSPITAL_CITIES = {"fr_FR": ("Lyon", "Nantes", "Rennes", "Grenoble"),
                   "en_US": ("Boston", "Denver", "Seattle"),
                   "en_GB": ("Leeds", "Bristol", "Oxford")}

RELATIONSHIPS = {
    # (language, gender) -> [(v3-RoleCode, word)]
    ("fr", "female"): [("WIFE", "épouse"), ("DAU", "fille"), ("SIS", "sœur"), ("NIECE", "nièce")],
    ("fr", "male"): [("HUSB", "époux"), ("SON", "fils"), ("BRO", "frère"), ("NEPHEW", "neveu")],
    ("en", "female"): [("WIFE", "wife"), ("DAU", "daughter"), ("SIS", "sister"),
                       ("NIECE", "niece")],
    ("en", "male"): [("HUSB", "husband"), ("SON", "son"), ("BRO", "brother"),
                     ("NEPHEW", "nephew")],
}

TZ = {"fr_FR": "+01:00", "en_US": "-05:00", "en_GB": "+00:00"}

ID_SYSTEMS = {
    "ipp": "https://hopital.example.fr/fhir/sid/ipp",
    "nir": "urn:oid:1.2.250.1.213.1.4.8",
    "mrn": "https://hospital.example.org/fhir/sid/mrn",
    "ssn": "http://hl7.org/fhir/sid/us-ssn",
    "nhs": "https://fhir.nhs.uk/Id/nhs-number",
    "member": "https://insurer.example/fhir/sid/member",
    "nda": "https://hopital.example.fr/fhir/sid/nda",
    "rpps": "urn:oid:1.2.250.1.71.4.2.1",
    "npi": "http://hl7.org/fhir/sid/us-npi",
    "gmc": "https://fhir.hl7.org.uk/Id/gmc-number",
}


def _stop_tokens() -> set[str]:
    """Every word the corpus itself writes: a person may not be named like any of them."""
    from . import builder

    source = "".join(inspect.getsource(m) for m in (templates_fr, templates_en, vocab, D, builder))
    source += inspect.getsource(inspect.getmodule(_stop_tokens))  # type: ignore[arg-type]
    words = {w for w in fold_words(source) if len(w) >= 3}
    return words | {"covid", "docteur", "madame", "monsieur", "patient", "patiente"}


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _date_between(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randint(0, (end - start).days))


def _safe(date: dt.date, birth: dt.date) -> bool:
    """No 29 February (a date without a year must shift the same in any year), and no day
    and month of the birth date (a de-identifier may rightly treat that as a birthday)."""
    return not (date.month == 2 and date.day == 29) and (date.month, date.day) != (
        birth.month, birth.day)


def _coding(concept: vocab.Concept, lang: str) -> dict[str, Any]:
    return {"coding": [{"system": concept.system, "code": concept.code,
                        "display": concept.text(lang)}], "text": concept.text(lang)}


def _ref(resource: dict[str, Any]) -> dict[str, str]:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


class _Corpus:
    def __init__(self, language: str, seed: int) -> None:
        self.lang = language
        self.rng = random.Random(f"fhirlake-corpus:{language}:{seed}")
        self.locales = ("fr_FR",) if language == "fr" else ("en_US", "en_GB")
        stop = _stop_tokens()
        self.factories = {loc: PeopleFactory(loc, random.Random(self.rng.getrandbits(64)), stop)
                          for loc in self.locales}
        self.cyclers: dict[tuple[str, ...], Cycler] = {}
        self.out: dict[str, list[dict[str, Any]]] = {name: [] for name in RESOURCE_FILES}
        self.clinicians: dict[str, list[Person]] = {}
        self.clinician_ids: dict[int, tuple[str, str]] = {}
        self.template_cycle = Cycler(sorted(TEMPLATES[language]), self.rng)

    # -- clinicians --
    def make_clinicians(self, count: int) -> None:
        for locale in self.locales:
            fac = self.factories[locale]
            pool = []
            domain = "chu-exemple.fr" if locale == "fr_FR" else "hospital-example.org"
            for i in range(count):
                p = fac.person("clinician", compound=0.15, accent=0.3 if self.lang == "fr" else 0.0)
                specialty = vocab.SPECIALTIES[i % len(vocab.SPECIALTIES)]
                p.specialty = specialty.text(self.lang)
                p.email = fac.email(p, professional=domain)
                if locale == "fr_FR":
                    kind, number = "rpps", "10" + digits(self.rng, 9, False)
                elif locale == "en_US":
                    kind, number = "npi", "1" + digits(self.rng, 9, False)
                else:
                    kind, number = "gmc", digits(self.rng, 7)
                practitioner = {
                    "resourceType": "Practitioner", "id": _uuid(self.rng),
                    "identifier": [{"system": ID_SYSTEMS[kind], "value": number}],
                    "active": True,
                    "name": [{"use": "official", "family": p.family, "given": p.given,
                              "prefix": ["Dr"]}],
                    "telecom": [{"system": "email", "value": p.email, "use": "work"}],
                    "gender": p.gender,
                }
                p.reference = f"Practitioner/{practitioner['id']}"
                self.clinician_ids[id(p)] = (number, p.reference)
                role = {"resourceType": "PractitionerRole", "id": _uuid(self.rng), "active": True,
                        "practitioner": {"reference": p.reference},
                        "specialty": [_coding(specialty, self.lang)]}
                self.out["Practitioner"].append(practitioner)
                self.out["PractitionerRole"].append(role)
                pool.append(p)
            self.clinicians[locale] = pool

    # -- a patient and everything about them --
    def make_patient(self, n_notes: int, start_index: int) -> list[NoteLabels]:
        rng = self.rng
        locale = rng.choice(self.locales) if self.lang == "fr" else (
            "en_US" if rng.random() < 0.6 else "en_GB")
        fac = self.factories[locale]
        fr = locale == "fr_FR"
        patient = fac.person("patient", compound=0.45 if fr else 0.2, accent=0.6 if fr else 0.05,
                             two_given=0.4, maiden=0.5)
        birth = _date_between(rng, dt.date(1940, 1, 1), dt.date(2003, 12, 31))  # all under 90
        if birth.month == 2 and birth.day == 29:
            birth = birth.replace(day=28)
        patient.phones = {"mobile": national_phone(rng, locale, True),
                          "home": national_phone(rng, locale, False)}
        patient.email = fac.email(patient)
        relatives = []
        for _ in range(2):
            gender = rng.choice(["male", "female"])
            code, word = rng.choice(RELATIONSHIPS[(self.lang, gender)])
            rel = fac.person("relative", gender=gender, compound=0.2, accent=0.4 if fr else 0.0,
                             maiden=0.6)
            if code == "DAU" and rel.maiden:
                rel.maiden = patient.family  # a married daughter: born with the patient's name
            elif not relatives:
                rel.maiden = None  # Patient.contact holds one name: no maiden name of its own
            rel.relationship = word
            rel.extra_code = code  # type: ignore[attr-defined]
            rel.phones = {"mobile": national_phone(rng, locale, True)}
            rel.email = fac.email(rel)
            relatives.append(rel)
        people = [patient, *relatives]
        name_tokens = set().union(*(p.name_tokens() for p in people))
        for p in people:
            for _ in range(50):
                address = fac.address()
                if not set(fold_words(f"{address.line} {address.city}")) & name_tokens:
                    p.address = address
                    break
            else:
                raise RuntimeError("no address without a name of the family in it")
        pid = _uuid(rng)
        patient.reference = f"Patient/{pid}"
        has_language = rng.random() < 0.7

        # identifiers
        ids: dict[str, str] = {}
        id_refs: dict[str, tuple[str, str]] = {}
        identifiers: list[dict[str, Any]] = []
        held = ("patient", patient.reference)
        if fr:
            ids["ipp"] = "8" + digits(rng, 9, False)
            compact = nir(rng, patient.gender, birth.year, birth.month)
            ids["nir_compact"], ids["nir_spaced"] = compact, nir_spaced(compact)
            identifiers += [{"system": ID_SYSTEMS["ipp"], "value": ids["ipp"],
                             "type": {"text": "IPP"}},
                            {"system": ID_SYSTEMS["nir"], "value": compact,
                             "type": {"text": "INS-NIR"}}]
            id_refs.update({"ipp": held, "nir_compact": held, "nir_spaced": held})
            ids["member"] = letters(rng, 3) + "-" + digits(rng, 9)
        else:
            ids["mrn"] = digits(rng, rng.choice([7, 8]), first_nonzero=False)
            identifiers.append({"system": ID_SYSTEMS["mrn"], "value": ids["mrn"],
                                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}})
            id_refs["mrn"] = held
            if locale == "en_US":
                ids["ssn"] = ssn(rng)
                identifiers.append({"system": ID_SYSTEMS["ssn"], "value": ids["ssn"]})
                id_refs["ssn"] = held
            else:
                ids["nhs_compact"] = nhs_number(rng)
                ids["nhs_spaced"] = nhs_spaced(ids["nhs_compact"])
                identifiers.append({"system": ID_SYSTEMS["nhs"], "value": ids["nhs_compact"]})
                id_refs.update({"nhs_compact": held, "nhs_spaced": held})
            ids["member"] = letters(rng, 3) + digits(rng, 9)
            ids["policy"] = letters(rng, 3) + "-" + digits(rng, 9)
        if rng.random() < 0.5:
            identifiers.append({"system": ID_SYSTEMS["member"], "value": ids["member"],
                                "type": {"text": "member id"}})
            id_refs["member"] = held

        resource: dict[str, Any] = {
            "resourceType": "Patient", "id": pid, "identifier": identifiers, "active": True,
            "name": patient.fhir_names(),
            "telecom": [{"system": "phone", "value": fhir_phone(patient.phones["home"], locale),
                         "use": "home"},
                        {"system": "phone", "value": fhir_phone(patient.phones["mobile"], locale),
                         "use": "mobile"},
                        {"system": "email", "value": patient.email}],
            "gender": patient.gender, "birthDate": birth.isoformat(),
            "address": [patient.address.fhir()],  # type: ignore[union-attr]
            "contact": [self._contact(relatives[0], locale)],
        }
        if has_language:
            tag = {"fr_FR": "fr-FR", "en_US": "en-US", "en_GB": "en-GB"}[locale]
            resource["communication"] = [{"language": {"coding": [
                {"system": "urn:ietf:bcp:47", "code": tag}]}, "preferred": True}]
        self.out["Patient"].append(resource)
        r2 = relatives[1]
        related = {
            "resourceType": "RelatedPerson", "id": _uuid(rng), "active": True,
            "patient": {"reference": patient.reference},
            "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                          "code": r2.extra_code}],  # type: ignore[attr-defined]
                              "text": r2.relationship}],
            "name": r2.fhir_names(), "gender": r2.gender,
            "telecom": [{"system": "phone", "value": fhir_phone(r2.phones["mobile"], locale)},
                        {"system": "email", "value": r2.email}],
            "address": [r2.address.fhir()],  # type: ignore[union-attr]
        }
        r2.reference = f"RelatedPerson/{related['id']}"
        relatives[0].reference = patient.reference  # Patient.contact lives in the Patient
        self.out["RelatedPerson"].append(related)

        # coded history
        def sample(pool: tuple[Any, ...], k: int) -> list[Any]:
            return rng.sample(list(pool), k)

        conditions = sample(vocab.CONDITIONS, 3)
        medications = sample(vocab.MEDICATIONS, 3)
        labs = sample(vocab.LABS, 2)
        procedures = sample(vocab.PROCEDURES, 2)
        allergies = sample(vocab.ALLERGIES, 1)
        imms = sample(vocab.IMMUNIZATIONS, 2)
        first_note = _date_between(rng, dt.date(2019, 3, 1), dt.date(2024, 6, 30))
        onset = self._safe_date(first_note - dt.timedelta(days=rng.randint(400, 3000)), birth)
        proc_date = self._safe_date(first_note - dt.timedelta(days=rng.randint(60, 700)), birth)
        tz = TZ[locale]
        subject = {"reference": patient.reference}
        for concept in conditions:
            self.out["Condition"].append({
                "resourceType": "Condition", "id": _uuid(rng),
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                "code": _coding(concept, self.lang), "subject": subject,
                "onsetDateTime": onset.isoformat(), "recordedDate": onset.isoformat()})
        pool = self.clinicians[locale]
        for concept in medications:
            self.out["MedicationRequest"].append({
                "resourceType": "MedicationRequest", "id": _uuid(rng), "status": "active",
                "intent": "order", "medicationCodeableConcept": _coding(concept, self.lang),
                "subject": subject, "authoredOn": first_note.isoformat(),
                "requester": {"reference": rng.choice(pool).reference}})
        lab_values: list[tuple[vocab.Lab, str]] = []
        for lab in labs:
            value = round(rng.uniform(lab.low, lab.high), lab.decimals)
            shown = f"{value:.{lab.decimals}f}"
            if fr:
                shown = shown.replace(".", ",")
            lab_values.append((lab, f"{shown} {lab.unit}"))
            self.out["Observation"].append({
                "resourceType": "Observation", "id": _uuid(rng), "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
                "code": _coding(lab.concept, self.lang), "subject": subject,
                "effectiveDateTime": f"{first_note.isoformat()}T08:00:00{tz}",
                "valueQuantity": {"value": value, "unit": lab.unit, "system": vocab.UCUM}})
        for concept in procedures:
            self.out["Procedure"].append({
                "resourceType": "Procedure", "id": _uuid(rng), "status": "completed",
                "code": _coding(concept, self.lang), "subject": subject,
                "performedDateTime": proc_date.isoformat()})
        for concept in allergies:
            self.out["AllergyIntolerance"].append({
                "resourceType": "AllergyIntolerance", "id": _uuid(rng),
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
                "code": _coding(concept, self.lang), "patient": subject,
                "recordedDate": onset.isoformat()})
        for concept in imms:
            self.out["Immunization"].append({
                "resourceType": "Immunization", "id": _uuid(rng), "status": "completed",
                "vaccineCode": _coding(concept, self.lang), "patient": subject,
                "occurrenceDateTime": proc_date.isoformat()})

        # notes
        labels = []
        note_date = first_note
        for k in range(n_notes):
            if k:
                note_date = note_date + dt.timedelta(days=rng.randint(20, 200))
            note_date = self._safe_date(note_date, birth)
            labels.append(self.make_note(
                start_index + k, locale, patient, birth, relatives, ids, id_refs, conditions,
                medications, lab_values, procedures, allergies, imms, note_date, onset,
                proc_date, has_language))
        return labels

    def _contact(self, rel: Person, locale: str) -> dict[str, Any]:
        return {
            "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                          "code": rel.extra_code}],  # type: ignore[attr-defined]
                              "text": rel.relationship}],
            "name": rel.fhir_names()[0],
            "telecom": [{"system": "phone", "value": fhir_phone(rel.phones["mobile"], locale)},
                        {"system": "email", "value": rel.email}],
            "address": rel.address.fhir(),  # type: ignore[union-attr]
            "gender": rel.gender,
        }

    def _safe_date(self, date: dt.date, birth: dt.date) -> dt.date:
        while not _safe(date, birth):
            date += dt.timedelta(days=1)
        return date

    def make_note(self, index: int, locale: str, patient: Person, birth: dt.date,
                  relatives: list[Person], ids: dict[str, str],
                  id_refs: dict[str, tuple[str, str]], conditions: list[Any],
                  medications: list[Any], labs: list[Any], procedures: list[Any],
                  allergies: list[Any], imms: list[Any], note_date: dt.date, onset: dt.date,
                  proc_date: dt.date, has_language: bool) -> NoteLabels:
        rng = self.rng
        template_name = self.template_cycle.next()
        style, template = TEMPLATES[self.lang][template_name]

        def near(base: dt.date, lo: int, hi: int) -> dt.date:
            return self._safe_date(base + dt.timedelta(days=rng.randint(lo, hi)), birth)

        dates = {"note": note_date, "dis": note_date, "adm": near(note_date, -14, -2),
                 "prev": near(note_date, -400, -35), "prev2": near(note_date, -30, -3),
                 "next": near(note_date, 7, 120), "lab": near(note_date, -20, -1),
                 "onset": onset, "proc": proc_date}
        dates["next2"] = near(dates["next"], 7, 60)
        age = note_date.year - birth.year - ((note_date.month, note_date.day) <
                                             (birth.month, birth.day))
        encounter_id, doc_id = _uuid(rng), _uuid(rng)
        note_ids = dict(ids)
        note_ids["nda"] = digits(rng, 9)
        note_ids["dossier"] = (digits(rng, 7) if self.lang == "fr"
                               else letters(rng, 2) + digits(rng, 8))
        refs = dict(id_refs)
        refs["nda"] = ("patient", f"Encounter/{encounter_id}")
        fac = self.factories[locale]
        pool = self.clinicians[locale]
        for _attempt in range(40):
            clinicians = rng.sample(pool, 3)
            number, ref = self.clinician_ids[id(clinicians[0])]
            note_ids["rpps"] = number
            refs["rpps"] = ("clinician", ref)
            others = [fac.person("other", compound=0.2, accent=0.3 if self.lang == "fr" else 0.0)
                      for _ in range(2)]
            for o in others:
                o.phones = {"mobile": national_phone(rng, locale, True)}
            ctx = NoteContext(
                rng=rng, locale=locale, patient=patient, birth=birth, relatives=relatives,
                clinicians=clinicians, others=others, dates=dates, ids=note_ids,
                conditions=conditions, medications=medications, labs=labs,
                procedures=procedures, allergies=allergies, immunizations=imms, age=age,
                smoke_age=rng.randint(16, max(17, age - 2)),
                hospital=rng.choice(vocab.HOSPITALS[self.lang]), cyclers=self.cyclers,
                extra={"ville_h": rng.choice(HOSPITAL_CITIES[locale]),
                       "sex": "F" if patient.gender == "female" else "M",
                       **{f"id_ref:{k}": v for k, v in refs.items()}})
            held = set().union(*(p.name_tokens() for p in [patient, *relatives, *clinicians]))
            if others[0].name_tokens() & (held | others[1].name_tokens()) or (
                    others[1].name_tokens() & held):
                continue  # a miss on someone no resource holds would look like a held leak
            text, spans, terms = Renderer(ctx).render(template(ctx))
            if _names_stand_alone(text, spans):
                break
        else:
            raise RuntimeError(f"template {template_name}: a name token kept colliding")

        marker = f"{self.lang}-{index:05d}"
        tz = TZ[locale]
        inpatient = style in ("discharge", "er")
        encounter = {
            "resourceType": "Encounter", "id": encounter_id, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "IMP" if inpatient else "AMB"},
            "type": [_coding(vocab.ENCOUNTER_TYPES[1 if inpatient else 0], self.lang)],
            "identifier": [{"system": ID_SYSTEMS["nda"], "value": note_ids["nda"]}],
            "subject": {"reference": patient.reference},
            "participant": [{"individual": {"reference": clinicians[0].reference}}],
            "period": {"start": f"{(dates['adm'] if inpatient else note_date).isoformat()}T09:30:00{tz}",
                       "end": f"{note_date.isoformat()}T11:00:00{tz}"},
        }
        self.out["Encounter"].append(encounter)
        code, display = vocab.NOTE_TYPES[style]
        tag = {"fr_FR": "fr-FR", "en_US": "en-US", "en_GB": "en-GB"}[locale]
        self.out["DocumentReference"].append({
            "resourceType": "DocumentReference", "id": doc_id, "status": "current",
            "docStatus": "final",
            "type": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
            "category": [{"coding": [{"system": MARKER_SYSTEM, "code": marker}]}],
            "subject": {"reference": patient.reference},
            "date": f"{note_date.isoformat()}T10:15:00{tz}",
            "author": [{"reference": clinicians[0].reference}],
            "content": [{"attachment": {
                "contentType": "text/plain; charset=utf-8", "language": tag,
                "data": base64.b64encode(text.encode("utf-8")).decode("ascii")}}],
            "context": {"encounter": [{"reference": f"Encounter/{encounter_id}"}],
                        "period": {"start": encounter["period"]["start"],
                                   "end": encounter["period"]["end"]}},
        })
        return NoteLabels(
            resource_id=doc_id, patient_id=patient.reference.split("/")[1],  # type: ignore[union-attr]
            language=self.lang, locale=locale, template=template_name, marker=marker,
            note_date=note_date.isoformat(), birth_date=birth.isoformat(),
            patient_has_language=has_language, text=text, spans=spans, clinical_terms=terms)

    def write(self, out_dir: Path, labels: list[NoteLabels]) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, resources in self.out.items():
            (out_dir / f"{name}.ndjson").write_bytes(
                b"".join(orjson.dumps(r) + b"\n" for r in resources))
        (out_dir / "labels.jsonl").write_bytes(b"".join(n.to_json() + b"\n" for n in labels))


def _names_stand_alone(text: str, spans: list[Span]) -> bool:
    """True when no name token (3+ letters) of a NAME span also appears elsewhere in the note
    (outside names and e-mails): otherwise "the name survived" could not be measured."""
    blank = list(text)
    for s in spans:
        if s.label in ("NAME", "EMAIL"):
            blank[s.start:s.end] = " " * (s.end - s.start)
    rest = fold("".join(blank))
    for s in spans:
        if s.label != "NAME":
            continue
        for token in fold_words(s.text):
            if len(token) >= 3 and re.search(rf"(?<!\w){re.escape(token)}(?!\w)", rest):
                return False
    return True


def write_corpus(out_dir: Path, *, language: Literal["en", "fr"], notes: int,
                 seed: int) -> list[NoteLabels]:
    """Write a FHIR R4 export of ``notes`` labelled notes in ``language`` to ``out_dir``.

    One ``<Type>.ndjson`` per resource type (Patient, Practitioner, PractitionerRole,
    RelatedPerson, Condition, MedicationRequest, Observation, Procedure, AllergyIntolerance,
    Immunization, Encounter, DocumentReference) and ``labels.jsonl`` (one :class:`NoteLabels`
    per note, in DocumentReference order). Deterministic for a given language, size and seed.
    """
    if language not in ("en", "fr"):
        raise ValueError(f"language must be 'en' or 'fr', not {language!r}")
    if notes < 1:
        raise ValueError("notes must be at least 1")
    corpus = _Corpus(language, seed)
    corpus.make_clinicians(max(6, notes // 8))
    labels: list[NoteLabels] = []
    while len(labels) < notes:
        k = min(corpus.rng.randint(1, 4), notes - len(labels))
        labels += corpus.make_patient(k, len(labels))
    corpus.write(Path(out_dir), labels)
    return labels
