"""Locales: the names, places, identifiers, profiles and note language of generated patients.

A :class:`Locale` is plain data plus a few functions (phone numbers, identifiers, notes), so
adding a country means adding one module that builds one ``Locale``. Only ``en`` (United
States, US Core profiles) and ``fr`` (France, FR Core profiles, NIR/INS) exist today.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

__all__ = ["LOCALES", "City", "Identity", "Locale", "NoteFacts", "PersonCore", "get_locale"]


@dataclass(frozen=True, slots=True)
class City:
    """A real place: its name, postal codes, state/region, district and dialling prefix.

    ``insee`` is the French commune code (empty in other locales); ``weight`` is the relative
    share of generated people who live there.
    """

    name: str
    postal_codes: tuple[str, ...]
    state: str
    district: str | None
    insee: str
    phone_prefix: str
    weight: float


@dataclass(frozen=True, slots=True)
class Identity:
    """What a locale adds to a patient: identifiers, extensions and the strings that identify.

    ``truth`` maps a kind (``"mrn"``, ``"nir"``, ...) to the exact string as written in the
    resources and notes; the generator copies it into ``truth.json``.
    """

    identifiers: list[dict[str, Any]]
    extensions: list[dict[str, Any]]
    truth: dict[str, str]


@dataclass(frozen=True, slots=True)
class NoteFacts:
    """Everything a clinical note may mention, already formatted for the locale."""

    when: date
    kind: str
    given: str
    family: str
    sex: str
    age: int
    birth_date: date
    address_line: str
    city: str
    state: str
    postal_code: str
    phone: str
    identity: Mapping[str, str]
    practitioner: str
    organization: str
    reason: str | None
    problems: tuple[str, ...]
    medications: tuple[str, ...]
    allergies: tuple[str, ...]
    vitals: tuple[float, float, float, float, float] | None  # systolic, diastolic, hr, kg, bmi
    months_to_next: int


@dataclass(frozen=True, slots=True)
class Locale:
    """All that differs between countries; see :mod:`fhirlake.synth.locales.en` for one."""

    code: str
    language: str  # BCP 47 tag for Patient.communication and note attachments
    country: str
    utc_offset_minutes: int
    given_male: tuple[str, ...]
    given_female: tuple[str, ...]
    family: tuple[str, ...]
    practitioner_given: tuple[str, ...]
    practitioner_family: tuple[str, ...]
    cities: tuple[City, ...]
    profiles: Mapping[str, str]
    marital_text: Mapping[str, str]
    address_line: Callable[[random.Random], str]
    phone: Callable[[random.Random, City], str]
    email_domain: str
    identity: Callable[[random.Random, PersonCore], Identity]
    practitioner_identifier: Callable[[random.Random], dict[str, Any]]
    organization_identifier: Callable[[random.Random, City], dict[str, Any]]
    organization_name: Callable[[random.Random, City, bool], str]
    format_date: Callable[[date], str]
    render_note: Callable[[random.Random, NoteFacts], str]
    dosage_text: str


@dataclass(frozen=True, slots=True)
class PersonCore:
    """The facts a locale needs to build identifiers (sex, birth date, birthplace, names)."""

    sex: str
    given: str
    family: str
    birth_date: date
    city: City
    birth_city: City
    postal_code: str


def get_locale(code: str) -> Locale:
    """The locale named ``code`` (``"en"`` or ``"fr"``); KeyError if there is none."""
    return LOCALES[code]


def _load() -> dict[str, Locale]:
    from fhirlake.synth.locales import en, fr

    return {"en": en.LOCALE, "fr": fr.LOCALE}


LOCALES: Mapping[str, Locale] = _load()
