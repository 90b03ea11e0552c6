"""Organizations and practitioners, each a pure function of (seed, index).

Patients refer to providers by index, so a worker process can name a patient's doctor
without holding the whole directory: it rebuilds the few providers it needs from their
index. Every fifth organization (index 0, 5, 10, ...) is a hospital, the others are practices,
and each organization has :data:`PRACTITIONERS_PER_ORGANIZATION` practitioners.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fhirlake.synth.clock import DAY, Clock
from fhirlake.synth.ids import stream, uuid_from_rng
from fhirlake.synth.locales import City, Locale
from fhirlake.synth.people import ascii_slug, pick_city

__all__ = ["PRACTITIONERS_PER_ORGANIZATION", "Directory", "Organization", "Practitioner", "organization_count"]

PRACTITIONERS_PER_ORGANIZATION = 3
_HOSPITAL_EVERY = 5
_ORG_TYPE = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov", "display": "Healthcare Provider"}
    ],
    "text": "Healthcare Provider",
}


def organization_count(patients: int) -> int:
    """How many organizations serve ``patients`` patients: one per 20, at least five."""
    return max(5, math.ceil(patients / 20))


@dataclass(frozen=True, slots=True)
class Organization:
    """What patients' resources need to know about an organization."""

    index: int
    id: str
    name: str
    hospital: bool
    city: City
    reference: dict[str, str]


@dataclass(frozen=True, slots=True)
class Practitioner:
    """What patients' resources need to know about a practitioner."""

    index: int
    id: str
    given: str
    family: str
    sex: str
    display: str
    reference: dict[str, str]


class Directory:
    """The providers of one generation run (``seed``, ``locale``, number of organizations)."""

    def __init__(self, seed: int, locale: Locale, clock: Clock, organizations: int, as_of: int) -> None:
        self.seed = seed
        self.locale = locale
        self.clock = clock
        self.organizations = organizations
        self.practitioners = organizations * PRACTITIONERS_PER_ORGANIZATION
        self.as_of = as_of
        self.organization = lru_cache(maxsize=4096)(self._organization)
        self.practitioner = lru_cache(maxsize=4096)(self._practitioner)

    def _organization(self, index: int) -> Organization:
        rng = stream(self.seed, "organization", index)
        oid = uuid_from_rng(rng)
        hospital = index % _HOSPITAL_EVERY == 0
        city = pick_city(rng, self.locale)
        name = self.locale.organization_name(rng, city, hospital)
        return Organization(index, oid, name, hospital, city, {"reference": f"Organization/{oid}", "display": name})

    def _practitioner(self, index: int) -> Practitioner:
        rng = stream(self.seed, "practitioner", index)
        pid = uuid_from_rng(rng)
        given = rng.choice(self.locale.practitioner_given)
        family = rng.choice(self.locale.practitioner_family)
        sex = rng.choice(("male", "female"))
        title = "Dr." if self.locale.code == "en" else "Dr"
        display = f"{title} {given} {family}"
        return Practitioner(index, pid, given, family, sex, display, {"reference": f"Practitioner/{pid}", "display": display})

    def practice_for(self, rng: random.Random) -> int:
        """A random practice (non-hospital organization) index."""
        index = rng.randrange(self.organizations)
        if index % _HOSPITAL_EVERY == 0:
            index = index + 1 if index + 1 < self.organizations else index - 1
        return index

    def hospital_for(self, rng: random.Random) -> int:
        """A random hospital index."""
        return _HOSPITAL_EVERY * rng.randrange(math.ceil(self.organizations / _HOSPITAL_EVERY))

    def practitioner_at(self, rng: random.Random, organization: int) -> Practitioner:
        """One of the practitioners of ``organization``."""
        return self.practitioner(organization * PRACTITIONERS_PER_ORGANIZATION + rng.randrange(PRACTITIONERS_PER_ORGANIZATION))

    def _meta(self, rng: random.Random, resource_type: str) -> dict[str, Any]:
        meta: dict[str, Any] = {"lastUpdated": self.clock.instant(self.as_of - rng.randint(30 * DAY, 700 * DAY), rng.randrange(1000))}
        profile = self.locale.profiles.get(resource_type)
        if profile:
            meta["profile"] = [profile]
        return meta

    def _address(self, rng: random.Random, city: City) -> dict[str, Any]:
        address: dict[str, Any] = {"line": [self.locale.address_line(rng)], "city": city.name}
        if city.district:
            address["district"] = city.district
        address["state"] = city.state
        address["postalCode"] = rng.choice(city.postal_codes)
        address["country"] = self.locale.country
        return address

    def organization_resource(self, index: int) -> dict[str, Any]:
        """The FHIR Organization number ``index``."""
        org = self.organization(index)
        rng = stream(self.seed, "organization-resource", index)
        return {
            "resourceType": "Organization",
            "id": org.id,
            "meta": self._meta(rng, "Organization"),
            "identifier": [self.locale.organization_identifier(rng, org.city)],
            "active": True,
            "type": [_ORG_TYPE],
            "name": org.name,
            "telecom": [{"system": "phone", "value": self.locale.phone(rng, org.city), "use": "work"}],
            "address": [self._address(rng, org.city)],
        }

    def practitioner_resource(self, index: int) -> dict[str, Any]:
        """The FHIR Practitioner number ``index`` (working at organization ``index // 3``)."""
        p = self.practitioner(index)
        org = self.organization(index // PRACTITIONERS_PER_ORGANIZATION)
        rng = stream(self.seed, "practitioner-resource", index)
        email = f"{ascii_slug(p.given)}.{ascii_slug(p.family)}@{self.locale.email_domain}"
        return {
            "resourceType": "Practitioner",
            "id": p.id,
            "meta": self._meta(rng, "Practitioner"),
            "identifier": [self.locale.practitioner_identifier(rng)],
            "active": True,
            "name": [{"use": "official", "family": p.family, "given": [p.given], "prefix": [p.display.split(" ", 1)[0]]}],
            "telecom": [{"system": "email", "value": email, "use": "work"}],
            "address": [self._address(rng, org.city)],
            "gender": p.sex,
        }
