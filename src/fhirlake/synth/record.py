"""One patient's record: walks the planned visits and builds the FHIR resources of each.

:func:`render_patient` is the unit of work of the generator: given the run context and a
patient index it returns that patient's resources (grouped by type) and the identifying
strings that go to ``truth.json``. It draws only from the patient's own random stream, so
the result depends on (seed, index, run options) and nothing else.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from fhirlake.synth.builder import RunContext, Vitals
from fhirlake.synth.clock import DAY, YEAR
from fhirlake.synth.documents import Documents
from fhirlake.synth.elements import (
    AI_ACTIVE,
    AI_CONFIRMED,
    ALLERGY_CATEGORY,
    CONDITION_ACTIVE,
    CONDITION_CONFIRMED,
    CONDITION_ENCOUNTER_DIAGNOSIS,
    CONDITION_PROBLEM,
    CONDITION_RESOLVED,
    ENCOUNTER_CLASS,
    OBS_VITAL_SIGNS,
    PRIMARY_PERFORMER,
    dosage,
    marital_status,
)
from fhirlake.synth.health import CHRONIC_ORDER, Health, make_health
from fhirlake.synth.history import Visit, plan_visits
from fhirlake.synth.ids import stream, uuid_from_rng
from fhirlake.synth.measurements import Measurements
from fhirlake.synth.people import Person, make_person
from fhirlake.synth.terminology import CONCEPTS, label

__all__ = ["PatientOutput", "render_patient"]

# Medicines started when a chronic condition is diagnosed; one alternative is drawn per patient.
CHRONIC_MEDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "hypertension": (("med_lisinopril",), ("med_hctz",), ("med_amlodipine",)),
    "diabetes": (("med_metformin",), ("med_metformin", "med_insulin")),
    "hyperlipidemia": (("med_simvastatin",), ("med_atorvastatin",)),
    "asthma": (("med_fluticasone", "med_albuterol"),),
    "copd": (("med_fluticasone_salmeterol", "med_albuterol"),),
    "chd": (("med_clopidogrel", "med_nitroglycerin"),),
    "afib": (("med_warfarin", "med_digoxin"), ("med_warfarin",)),
    "alzheimers": (("med_galantamine",),),
    "osteoarthritis": (("med_naproxen",),),
}
AS_NEEDED = frozenset(
    {"med_albuterol", "med_nitroglycerin", "med_acetaminophen", "med_ibuprofen", "med_naproxen", "med_oxycodone_apap"}
)
# Acute condition -> (medicine, probability it is prescribed, days until resolved, procedure)
ACUTE: dict[str, tuple[str, float, int, str | None]] = {
    "otitis": ("med_amox_clav", 0.6, 10, None),
    "strep_throat": ("med_penicillin_v", 1.0, 10, "proc_throat_culture"),
    "viral_sinusitis": ("med_amox_clav", 0.3, 14, None),
    "pharyngitis": ("med_acetaminophen", 0.5, 8, "proc_throat_culture"),
    "bronchitis": ("med_acetaminophen", 0.5, 18, None),
    "cystitis": ("med_amox_clav", 0.8, 7, None),
    "ankle_sprain": ("med_ibuprofen", 0.8, 28, None),
    "wrist_sprain": ("med_ibuprofen", 0.8, 28, None),
    "forearm_fracture": ("med_oxycodone_apap", 0.7, 56, None),
    "concussion": ("med_acetaminophen", 0.8, 21, None),
    "foot_laceration": ("med_acetaminophen", 0.5, 14, "proc_suture"),
}
# Visit kind -> (encounter class, encounter type, note type, probability of a note)
KINDS: dict[str, tuple[str, str, str, float]] = {
    "wellness": ("AMB", "enc_wellness_adult", "note_history_physical", 1.0),
    "symptom": ("AMB", "enc_symptom", "note_progress", 0.6),
    "urgent": ("AMB", "enc_urgent_care", "note_progress", 0.6),
    "emergency": ("EMER", "enc_emergency", "note_emergency", 1.0),
    "inpatient": ("IMP", "enc_inpatient", "note_discharge", 1.0),
    "followup": ("AMB", "enc_followup", "note_progress", 0.5),
    "prenatal_initial": ("AMB", "enc_prenatal_initial", "note_progress", 1.0),
    "prenatal": ("AMB", "enc_prenatal", "note_progress", 0.0),
    "postnatal": ("AMB", "enc_postnatal", "note_progress", 0.5),
}
_NOTE_KIND = {"urgent": "symptom", "prenatal_initial": "prenatal", "postnatal": "prenatal"}
_DIAGNOSING = frozenset({"wellness", "followup", "symptom", "urgent", "emergency", "inpatient"})
_AT_HOSPITAL = frozenset({"urgent", "emergency", "inpatient"})
# (vaccine, age in years when due); influenza is given at every wellness visit instead.
VACCINE_SCHEDULE: tuple[tuple[str, float], ...] = (
    ("vax_hepb_ped", 0.0), ("vax_hepb_ped", 1 / 12), ("vax_hepb_ped", 0.5),
    ("vax_dtap", 2 / 12), ("vax_dtap", 4 / 12), ("vax_dtap", 0.5), ("vax_dtap", 1.25), ("vax_dtap", 4.5),
    ("vax_ipv", 2 / 12), ("vax_ipv", 4 / 12), ("vax_ipv", 0.5), ("vax_ipv", 4.5),
    ("vax_hib", 2 / 12), ("vax_hib", 4 / 12), ("vax_hib", 1.0),
    ("vax_pcv13", 2 / 12), ("vax_pcv13", 4 / 12), ("vax_pcv13", 0.5), ("vax_pcv13", 1.0),
    ("vax_rotavirus", 2 / 12), ("vax_rotavirus", 4 / 12),
    ("vax_mmr", 1.0), ("vax_mmr", 4.5), ("vax_varicella", 1.0), ("vax_varicella", 4.5),
    ("vax_hepa", 1.0), ("vax_hepa", 1.5), ("vax_hpv", 11.0), ("vax_hpv", 11.5), ("vax_tdap", 11.0),
    ("vax_mcv4", 11.0), ("vax_mcv4", 16.0), ("vax_td", 21.0), ("vax_td", 31.0), ("vax_td", 41.0),
    ("vax_td", 51.0), ("vax_td", 61.0), ("vax_td", 71.0), ("vax_td", 81.0), ("vax_zoster", 60.0),
    ("vax_ppsv23", 65.0), ("vax_pcv13", 65.0),
)
ALLERGENS = tuple(ALLERGY_CATEGORY)
REACTIONS = {
    "food": ("reaction_wheal", "reaction_rash", "reaction_anaphylaxis"),
    "environment": ("reaction_rhinoconjunctivitis", "reaction_wheal", "reaction_dyspnea"),
    "medication": ("reaction_rash", "reaction_wheal", "reaction_anaphylaxis"),
}

@dataclass(slots=True)
class PatientOutput:
    """The resources of one patient, by resource type, and its ``truth.json`` entry."""

    resources: dict[str, list[dict[str, Any]]]
    truth: dict[str, Any]


def render_patient(ctx: RunContext, index: int) -> PatientOutput:
    """Generate patient number ``index`` of the run and everything in their record."""
    rng = stream(ctx.seed, "patient", index)
    patient_id = uuid_from_rng(rng)
    person = make_person(
        rng, ctx.locale, ctx.clock, index=index, patient_id=patient_id, as_of=ctx.as_of, history_start=ctx.history_start
    )
    end = person.death_ts if person.death_ts is not None else ctx.as_of
    health = make_health(rng, person.sex, (end - person.birth_ts) / YEAR)
    start = max(ctx.history_start, person.birth_ts)
    visits = plan_visits(rng, health, person.birth_ts, start, end, ctx.locale.utc_offset_minutes * 60)
    recorder = _Recorder(ctx, rng, person, health)
    for visit in visits:
        recorder.visit(visit)
    return recorder.finish()



class _Recorder(Measurements, Documents):
    """Builds the resources of one patient, visit after visit."""

    def __init__(self, ctx: RunContext, rng: random.Random, person: Person, health: Health) -> None:
        super().__init__(ctx, rng, person, health)
        self.med_plan = {c: rng.choice(alternatives) for c, alternatives in CHRONIC_MEDS.items()}
        self.contraceptive = rng.choice(("med_yaz", "med_errin")) if rng.random() < 0.35 else None
        self.allergies = self._draw_allergies()
        self.last_wellness_age: float | None = None

    def _draw_allergies(self) -> list[str]:
        if self.rng.random() >= 0.3:
            return []
        return self.rng.sample(ALLERGENS, self.rng.choice((1, 1, 1, 2, 2, 3)))

    # ----- visits ------------------------------------------------------------------------
    def visit(self, visit: Visit) -> None:
        """Record one visit and everything done during it."""
        self._begin(visit)
        vitals: Vitals | None = None
        kind = visit.kind
        if kind in _DIAGNOSING:
            self._diagnose(kind)
        if not self.allergies_recorded and self.allergies and kind == "wellness" and self.age >= 2:
            self._record_allergies()
        reason_key = visit.reason
        if kind == "wellness":
            vitals = self._vitals(full=True)
            self._wellness_labs()
            self._immunizations()
            self._renew_meds()
            self._wellness_procedures()
        elif kind == "followup":
            vitals = self._vitals(full=False)
            self._followup_care()
        elif kind in ("symptom", "urgent") or (kind == "emergency" and reason_key != "mi"):
            assert reason_key is not None
            self._acute(reason_key)
        elif reason_key == "mi":
            self._heart_attack(kind)
        elif reason_key == "childbirth":
            self._childbirth()
        else:
            vitals = self._pregnancy_visit(kind)
        _class, _type, note_type, note_p = KINDS[kind]
        if note_p and self.rng.random() < note_p:
            self._note(kind, note_type, reason_key, vitals)

    def _begin(self, visit: Visit) -> None:
        clock = self.ctx.clock
        rng = self.rng
        ts = visit.ts
        end = ts + visit.duration
        self.visit_ts = ts
        self.age = (ts - self.person.birth_ts) / YEAR
        updated_ts = min(end + rng.randint(600, 3 * DAY), self.ctx.as_of - 1)
        self.updated = clock.instant(updated_ts, rng.randrange(1000))
        self.last_updated = self.updated
        self.effective = clock.datetime(ts)
        self.issued = clock.instant(ts, rng.randrange(1000))
        self.issued_lab = clock.instant(ts + rng.randint(2 * 3600, 8 * 3600), rng.randrange(1000))
        if visit.kind in _AT_HOSPITAL:
            self.organization = self.hospital
            self.practitioner = self.ctx.directory.practitioner_at(rng, self.hospital.index)
        else:
            self.organization = self.practice
            self.practitioner = self.gp
        class_, type_key, _note, _p = KINDS[visit.kind]
        if visit.kind == "wellness" and self.age < 18:
            type_key = "enc_wellness_child"
        encounter_id = self._id()
        self.encounter_ref = {"reference": f"Encounter/{encounter_id}"}
        period = {"start": self.effective, "end": clock.datetime(end)}
        encounter: dict[str, Any] = {
            "resourceType": "Encounter",
            "id": encounter_id,
            "meta": self._meta("Encounter"),
            "status": "finished",
            "class": ENCOUNTER_CLASS[class_],
            "type": [self._cc(type_key)],
            "subject": self.subject_display,
            "participant": [{"type": PRIMARY_PERFORMER, "period": period, "individual": self.practitioner.reference}],
            "period": period,
        }
        reason = visit.reason if visit.reason in CONCEPTS else None
        if visit.kind == "followup":
            reason = next((c for c in ("diabetes", "hypertension", "chd", "copd", "asthma", "afib", "ckd") if c in self.conditions), None)
        if reason is not None:
            encounter["reasonCode"] = [self._cc(reason)]
        encounter["serviceProvider"] = self.organization.reference
        self._add(encounter)

    # ----- conditions --------------------------------------------------------------------
    def _condition(self, key: str, onset_ts: int, chronic: bool, abatement_ts: int | None = None) -> dict[str, Any]:
        clock = self.ctx.clock
        resolved = abatement_ts is not None and abatement_ts < self.ctx.as_of
        condition: dict[str, Any] = {
            "resourceType": "Condition",
            "id": self._id(),
            "meta": self._meta("Condition"),
            "clinicalStatus": CONDITION_RESOLVED if resolved else CONDITION_ACTIVE,
            "verificationStatus": CONDITION_CONFIRMED,
            "category": CONDITION_PROBLEM if chronic else CONDITION_ENCOUNTER_DIAGNOSIS,
            "code": self._cc(key),
            "subject": self.subject,
            "encounter": self.encounter_ref,
            "onsetDateTime": clock.datetime(onset_ts),
        }
        if resolved and abatement_ts is not None:
            condition["abatementDateTime"] = clock.datetime(abatement_ts)
        condition["recordedDate"] = self.effective
        return self._add(condition)

    def _diagnose(self, kind: str) -> None:
        onsets = self.health.onsets
        for key in CHRONIC_ORDER:
            onset = onsets.get(key)
            if onset is None or onset > self.age or key in self.conditions:
                continue
            if key == "obesity" and kind != "wellness":
                continue
            onset_ts = self.person.birth_ts + int(onset * YEAR)
            condition = self._condition(key, min(onset_ts, self.visit_ts), chronic=True)
            self.conditions[key] = condition
            self.problems.append(label(key, self.lang))
            if key == "diabetes" and "prediabetes" in self.conditions:
                self._resolve("prediabetes")
            for med in self.med_plan.get(key, ()):
                self._prescribe(med, key)

    def _resolve(self, key: str) -> None:
        condition = self.conditions[key]
        condition["clinicalStatus"] = CONDITION_RESOLVED
        condition["abatementDateTime"] = self.effective
        text = label(key, self.lang)
        if text in self.problems:
            self.problems.remove(text)

    def _record_allergies(self) -> None:
        self.allergies_recorded = True
        for key in self.allergies:
            category = ALLERGY_CATEGORY[key]
            onset_age = self.rng.uniform(0.5, max(self.age, 0.6))
            self._add(
                {
                    "resourceType": "AllergyIntolerance",
                    "id": self._id(),
                    "meta": self._meta("AllergyIntolerance"),
                    "clinicalStatus": AI_ACTIVE,
                    "verificationStatus": AI_CONFIRMED,
                    "type": "allergy",
                    "category": [category],
                    "criticality": "high" if self.rng.random() < 0.15 else "low",
                    "code": self._cc(key),
                    "patient": self.subject,
                    "encounter": self.encounter_ref,
                    "onsetDateTime": self.ctx.clock.datetime(self.person.birth_ts + int(onset_age * YEAR)),
                    "recordedDate": self.effective,
                    "reaction": [
                        {
                            "manifestation": [self._cc(self.rng.choice(REACTIONS[category]))],
                            "severity": self.rng.choice(("mild", "mild", "moderate", "severe")),
                        }
                    ],
                }
            )

    # ----- medications, procedures, immunizations ---------------------------------------------
    def _prescribe(self, med: str, condition_key: str | None, chronic: bool = True) -> None:
        request: dict[str, Any] = {
            "resourceType": "MedicationRequest",
            "id": self._id(),
            "meta": self._meta("MedicationRequest"),
            "status": "active" if chronic else "completed",
            "intent": "order",
            "medicationCodeableConcept": self._cc(med),
            "subject": self.subject,
            "encounter": self.encounter_ref,
            "authoredOn": self.effective,
            "requester": self.practitioner.reference,
        }
        condition = self.conditions.get(condition_key) if condition_key else None
        if condition is not None:
            request["reasonReference"] = [{"reference": f"Condition/{condition['id']}"}]
        request["dosageInstruction"] = dosage(self.ctx.locale.dosage_text, med in AS_NEEDED)
        self._add(request)
        if chronic:
            previous = self.meds.get(med)
            if previous is not None:
                previous[0]["status"] = "completed"
            self.meds[med] = (request, condition_key)

    def _renew_meds(self) -> None:
        for med, (_request, condition) in list(self.meds.items()):
            self._prescribe(med, condition)
        if self.contraceptive and self.person.sex == "female" and 16 <= self.age <= 45:
            self._prescribe(self.contraceptive, None)
        elif self.contraceptive in self.meds:
            request, _ = self.meds.pop(self.contraceptive)
            request["status"] = "stopped"

    def _procedure(self, key: str, minutes: int = 15, reason: str | None = None) -> None:
        clock = self.ctx.clock
        procedure: dict[str, Any] = {
            "resourceType": "Procedure",
            "id": self._id(),
            "meta": self._meta("Procedure"),
            "status": "completed",
            "code": self._cc(key),
            "subject": self.subject,
            "encounter": self.encounter_ref,
            "performedPeriod": {"start": self.effective, "end": clock.datetime(self.visit_ts + minutes * 60)},
        }
        condition = self.conditions.get(reason) if reason else None
        if condition is not None:
            procedure["reasonReference"] = [{"reference": f"Condition/{condition['id']}"}]
        self._add(procedure)

    def _immunization(self, key: str) -> None:
        self._add(
            {
                "resourceType": "Immunization",
                "id": self._id(),
                "meta": self._meta("Immunization"),
                "status": "completed",
                "vaccineCode": self._cc(key),
                "patient": self.subject,
                "encounter": self.encounter_ref,
                "occurrenceDateTime": self.effective,
                "primarySource": True,
            }
        )

    def _immunizations(self) -> None:
        age = self.age
        since = self.last_wellness_age if self.last_wellness_age is not None else age - 1.0
        self.last_wellness_age = age
        for key, due in VACCINE_SCHEDULE:
            if since < due <= age:
                self._immunization(key)
        if age >= 0.5 and self.rng.random() < 0.6:
            self._immunization("vax_flu")

    def _wellness_procedures(self) -> None:
        if self.meds:
            self._procedure("proc_med_reconciliation")
        if self.age >= 12 and self.rng.random() < 0.35:
            self._procedure("proc_depression_screening")
        if 50 <= self.age <= 75 and self.rng.random() < 0.08:
            self._procedure("proc_colonoscopy", 45)

    def _followup_care(self) -> None:
        rng = self.rng
        if "diabetes" in self.conditions:
            self._hba1c()
            if rng.random() < 0.3:
                self._procedure("proc_urine_diabetes", 10, "diabetes")
        if ("copd" in self.conditions or "asthma" in self.conditions) and rng.random() < 0.3:
            self._procedure("proc_spirometry", 20, "copd" if "copd" in self.conditions else "asthma")
        if ("afib" in self.conditions or "chd" in self.conditions) and rng.random() < 0.3:
            self._procedure("proc_ecg", 15, "afib" if "afib" in self.conditions else "chd")
        if "alzheimers" in self.conditions and rng.random() < 0.3:
            self._procedure("proc_cbt", 45, "alzheimers")
        self._renew_meds()
        if self.meds:
            self._procedure("proc_med_reconciliation")

    # ----- acute care, heart attacks, pregnancies --------------------------------------------
    def _acute(self, key: str) -> None:
        rng = self.rng
        med, p_med, days, procedure = ACUTE[key]
        abatement = self.visit_ts + (days + rng.randint(-3, 5)) * DAY
        self.conditions.pop(key, None)
        condition = self._condition(key, self.visit_ts - rng.randint(1, 4) * DAY, chronic=False, abatement_ts=abatement)
        self.conditions[key] = condition
        infection = days <= 18
        if infection:
            fever = 38.3 + rng.gauss(0, 0.5) if rng.random() < 0.6 else 37.0 + rng.gauss(0, 0.3)
            self._quantity_obs("obs_temperature", OBS_VITAL_SIGNS, round(fever, 1), "Cel", self.issued)
        else:
            self._quantity_obs("obs_pain", OBS_VITAL_SIGNS, rng.randint(4, 8), "{score}", self.issued)
        if procedure is not None:
            self._procedure(procedure, 20, key)
        if rng.random() < p_med:
            self._prescribe(med, key, chronic=False)

    def _heart_attack(self, kind: str) -> None:
        if kind == "emergency":
            self.conditions.pop("mi", None)
            self.conditions["mi"] = self._condition("mi", self.visit_ts - 3600, chronic=False, abatement_ts=self.visit_ts + 30 * DAY)
            self._procedure("proc_ecg", 15, "mi")
            self._quantity_obs("obs_pain", OBS_VITAL_SIGNS, self.rng.randint(6, 10), "{score}", self.issued)
        else:
            self._procedure("proc_pci", 120, "mi")
            self._blood_count()
            self._basic_metabolic_panel()

    def _pregnancy_visit(self, kind: str) -> Vitals | None:
        if kind == "prenatal_initial":
            self.conditions.pop("pregnancy", None)
            self.conditions["pregnancy"] = self._condition("pregnancy", self.visit_ts - 6 * 7 * DAY, chronic=False)
            self._procedure("proc_pregnancy_test", 10, "pregnancy")
            self._procedure("proc_fetal_ultrasound", 30, "pregnancy")
        elif kind == "prenatal":
            self._procedure("proc_fundal_height", 10, "pregnancy")
            self._procedure("proc_fetal_heart", 10, "pregnancy")
        else:
            self._procedure("proc_depression_screening", 15)
        return self._vitals(full=False)

    def _childbirth(self) -> None:
        self._procedure("proc_childbirth", 240, "pregnancy")
        pregnancy = self.conditions.get("pregnancy")
        if pregnancy is not None and pregnancy["clinicalStatus"] is CONDITION_ACTIVE:
            pregnancy["clinicalStatus"] = CONDITION_RESOLVED
            pregnancy["abatementDateTime"] = self.effective
        self._blood_count()

    # ----- the patient ---------------------------------------------------------------------
    def finish(self) -> PatientOutput:
        """Close the record: last prescriptions stay active, then build the Patient."""
        person = self.person
        if person.death_ts is not None:
            for request, _condition in self.meds.values():
                request["status"] = "stopped"
        self._add_patient()
        return PatientOutput(self.out, self._truth())

    def _add_patient(self) -> None:
        person = self.person
        locale = self.ctx.locale
        clock = self.ctx.clock
        name: dict[str, Any] = {"use": "official", "family": person.family, "given": [person.given]}
        if locale.code == "en" and self.age >= 18:
            name["prefix"] = ["Mr." if person.sex == "male" else "Ms."]
        telecom: list[dict[str, Any]] = [{"system": "phone", "value": person.phone, "use": "home"}]
        if person.email:
            telecom.append({"system": "email", "value": person.email, "use": "home"})
        address: dict[str, Any] = {"use": "home", "line": [person.address_line], "city": person.city.name}
        if person.city.district:
            address["district"] = person.city.district
        address["state"] = person.city.state
        address["postalCode"] = person.postal_code
        address["country"] = locale.country
        profile = locale.profiles.get("Patient")
        meta: dict[str, Any] = {"lastUpdated": self.last_updated}
        if profile:
            meta["profile"] = [profile]
        patient: dict[str, Any] = {
            "resourceType": "Patient",
            "id": person.id,
            "meta": meta,
            "extension": person.identity.extensions,
            "identifier": person.identity.identifiers,
            "active": person.death_ts is None,
            "name": [name],
            "telecom": telecom,
            "gender": person.sex,
            "birthDate": person.birth_date.isoformat(),
        }
        if person.death_ts is not None:
            patient["deceasedDateTime"] = clock.datetime(person.death_ts)
        patient.update(
            {
                "address": [address],
                "maritalStatus": marital_status(person.marital, locale.marital_text[person.marital]),
                "multipleBirthBoolean": False,
                "communication": [
                    {
                        "language": {
                            "coding": [{"system": "urn:ietf:bcp:47", "code": locale.language}],
                            "text": "English" if locale.code == "en" else "Français",
                        }
                    }
                ],
                "generalPractitioner": [self.gp.reference],
                "managingOrganization": self.practice.reference,
            }
        )
        self.out.setdefault("Patient", []).append(patient)

    def _truth(self) -> dict[str, Any]:
        person = self.person
        direct = {
            "given": person.given,
            "family": person.family,
            "full_name": person.full_name,
            "birth_date": person.birth_date.isoformat(),
            "birth_date_text": self.ctx.locale.format_date(person.birth_date),
            "address_line": person.address_line,
            "phone": person.phone,
        }
        if person.email:
            direct["email"] = person.email
        direct.update(person.identity.truth)
        return {
            "patient": f"Patient/{person.id}",
            "direct": direct,
            "quasi": {"city": person.city.name, "postal_code": person.postal_code, "state": person.city.state},
        }
