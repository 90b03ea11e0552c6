"""Who a generated patient is: name, sex, birth, death, address, contact and identifiers.

Ages follow a population pyramid close to the US/French ones; a few old patients have died
within the history window (their record stops there and ``Patient.deceasedDateTime`` is
set). Everything is drawn from the patient's own random stream.
"""

from __future__ import annotations

import math
import random
import unicodedata
from dataclasses import dataclass
from datetime import date
from itertools import accumulate

from fhirlake.synth.clock import DAY, YEAR, Clock
from fhirlake.synth.locales import City, Identity, Locale, PersonCore

__all__ = ["Person", "ascii_slug", "make_person", "pick_city"]

# Share of people in each decade of age: 0-9, 10-19, ..., 90-99.
_DECADES = (0.12, 0.125, 0.135, 0.135, 0.125, 0.13, 0.115, 0.07, 0.035, 0.01)
_DECADE_CUMULATIVE = tuple(accumulate(_DECADES))


@dataclass(slots=True)
class Person:
    """A generated patient; ``identity.truth`` holds the locale's identifying strings."""

    index: int
    id: str
    sex: str
    given: str
    family: str
    birth_ts: int
    birth_date: date
    death_ts: int | None
    city: City
    postal_code: str
    address_line: str
    phone: str
    email: str | None
    marital: str
    identity: Identity

    @property
    def full_name(self) -> str:
        """Given name then family name."""
        return f"{self.given} {self.family}"


_CITY_CUMULATIVE: dict[int, tuple[float, ...]] = {}


def pick_city(rng: random.Random, locale: Locale) -> City:
    """A city of the locale, weighted by population."""
    cumulative = _CITY_CUMULATIVE.get(id(locale.cities))
    if cumulative is None:
        cumulative = tuple(accumulate(c.weight for c in locale.cities))
        _CITY_CUMULATIVE[id(locale.cities)] = cumulative
    return rng.choices(locale.cities, cum_weights=cumulative)[0]


def ascii_slug(text: str) -> str:
    """``"Léa Da Silva"`` -> ``"leadasilva"``: for e-mail addresses."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return folded.lower().replace(" ", "").replace("'", "")


def _age(rng: random.Random) -> float:
    x = rng.random()
    for decade, bound in enumerate(_DECADE_CUMULATIVE):
        if x < bound:
            return 10 * decade + rng.random() * 10
    return 99.0


def _marital(rng: random.Random, age: float) -> str:
    if age < 20:
        return "S"
    x = rng.random()
    married = 0.25 if age < 28 else 0.55
    if x < married:
        return "M"
    if x < married + (0.12 if age > 40 else 0.04):
        return "D"
    if age > 65 and x < married + 0.35:
        return "W"
    return "S"


def make_person(
    rng: random.Random,
    locale: Locale,
    clock: Clock,
    *,
    index: int,
    patient_id: str,
    as_of: int,
    history_start: int,
) -> Person:
    """Draw patient number ``index``; ``history_start`` bounds when a death may fall."""
    sex = "male" if rng.random() < 0.49 else "female"
    given = rng.choice(locale.given_male if sex == "male" else locale.given_female)
    family = rng.choice(locale.family)
    age = _age(rng)
    birth_ts = as_of - int(age * YEAR) - rng.randint(0, DAY - 1)
    death_ts = None
    p_dead = 0.01 + 0.45 / (1 + math.exp(-(age - 82) / 5))
    if rng.random() < p_dead:
        earliest = max(history_start, birth_ts + 30 * DAY)
        death_ts = rng.randint(earliest, as_of - DAY) if earliest < as_of - DAY else None
    city = pick_city(rng, locale)
    birth_city = city if rng.random() < 0.7 else pick_city(rng, locale)
    postal_code = rng.choice(city.postal_codes)
    birth_date = clock.date(birth_ts)
    core = PersonCore(sex, given, family, birth_date, city, birth_city, postal_code)
    identity = locale.identity(rng, core)
    email = None
    if age >= 16 and rng.random() < 0.7:
        email = f"{ascii_slug(given)}.{ascii_slug(family)}{rng.randint(1, 99)}@{locale.email_domain}"
    return Person(
        index=index,
        id=patient_id,
        sex=sex,
        given=given,
        family=family,
        birth_ts=birth_ts,
        birth_date=birth_date,
        death_ts=death_ts,
        city=city,
        postal_code=postal_code,
        address_line=locale.address_line(rng),
        phone=locale.phone(rng, city),
        email=email,
        marital=_marital(rng, age),
        identity=identity,
    )
