"""The state and small helpers shared by everything that builds one patient's resources.

:class:`ResourceBuilder` holds the run context, the patient, their random stream, what is
known so far (diagnosed conditions, running prescriptions) and the current visit (its
encounter reference, times, place). The measurement and document builders and the record
itself are subclasses that add the resources they know about.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from fhirlake.synth.clock import DAY, Clock
from fhirlake.synth.elements import OBS_VITAL_SIGNS, quantity
from fhirlake.synth.health import Health
from fhirlake.synth.ids import uuid_from_rng
from fhirlake.synth.locales import Locale
from fhirlake.synth.people import Person
from fhirlake.synth.providers import Directory, Organization, Practitioner
from fhirlake.synth.terminology import codeable

__all__ = ["ResourceBuilder", "RunContext", "Vitals"]

#: (systolic, diastolic, heart rate, weight kg, BMI) measured at a visit, for the note.
Vitals = tuple[float, float, float, float, float]


@dataclass(frozen=True, slots=True)
class RunContext:
    """Everything shared by all patients of one run."""

    seed: int
    locale: Locale
    clock: Clock
    as_of: int
    history_start: int
    directory: Directory


class ResourceBuilder:
    """Patient-level and visit-level state, and the helpers every resource builder uses."""

    def __init__(self, ctx: RunContext, rng: random.Random, person: Person, health: Health) -> None:
        self.ctx = ctx
        self.rng = rng
        self.person = person
        self.health = health
        self.lang = ctx.locale.code
        self.profiles = ctx.locale.profiles
        self.out: dict[str, list[dict[str, Any]]] = {}
        self.subject = {"reference": f"Patient/{person.id}"}
        self.subject_display = {"reference": f"Patient/{person.id}", "display": person.full_name}
        directory = ctx.directory
        self.practice = directory.organization(directory.practice_for(rng))
        self.gp = directory.practitioner_at(rng, self.practice.index)
        self.hospital = directory.organization(directory.hospital_for(rng))
        self.conditions: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []
        self.meds: dict[str, tuple[dict[str, Any], str | None]] = {}  # med -> (last request, condition)
        self.allergies: list[str] = []
        self.allergies_recorded = False
        self.last_updated = ctx.clock.instant(max(person.birth_ts + DAY, ctx.history_start), 0)
        # the current visit, set by the record for each visit
        self.visit_ts = 0
        self.age = 0.0
        self.encounter_ref: dict[str, str] = {}
        self.effective = ""
        self.issued = ""
        self.issued_lab = ""
        self.updated = ""
        self.organization: Organization = self.practice
        self.practitioner: Practitioner = self.gp

    def _id(self) -> str:
        return uuid_from_rng(self.rng)

    def _cc(self, key: str) -> dict[str, Any]:
        return codeable(key, self.lang)

    def _meta(self, profile_key: str) -> dict[str, Any]:
        profile = self.profiles.get(profile_key)
        if profile is None:
            return {"lastUpdated": self.updated}
        return {"lastUpdated": self.updated, "profile": [profile]}

    def _add(self, resource: dict[str, Any]) -> dict[str, Any]:
        rtype = resource["resourceType"]
        bucket = self.out.get(rtype)
        if bucket is None:
            bucket = self.out[rtype] = []
        bucket.append(resource)
        return resource

    def _quantity_obs(self, key: str, category: list[dict[str, Any]], value: float, unit: str, issued: str) -> dict[str, Any]:
        return self._add(
            {
                "resourceType": "Observation",
                "id": self._id(),
                "meta": self._observation_meta(key, category),
                "status": "final",
                "category": category,
                "code": self._cc(key),
                "subject": self.subject,
                "encounter": self.encounter_ref,
                "effectiveDateTime": self.effective,
                "issued": issued,
                "valueQuantity": quantity(value, unit),
            }
        )

    def _observation_meta(self, key: str, category: list[dict[str, Any]]) -> dict[str, Any]:
        profile_key = "Observation:" + key
        if profile_key not in self.profiles:
            profile_key = "Observation:vital-signs" if category is OBS_VITAL_SIGNS else "Observation:laboratory"
        return self._meta(profile_key)
