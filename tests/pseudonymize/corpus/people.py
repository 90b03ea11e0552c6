"""People of the corpus (Faker-generated) and the ways a note writes their names and numbers.

Every identifier, phone, e-mail and address here is made up; the shapes are the real ones
(a French NIR with its mod-97 key, an NHS number with its mod-11 check digit, phone numbers
that fit the numbering plan when ``phonenumbers`` is installed).
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from faker import Faker

try:  # shipped with presidio-analyzer; used only to keep generated numbers plausible
    import phonenumbers
except ImportError:  # pragma: no cover
    phonenumbers = None


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def has_accent(text: str) -> bool:
    return strip_accents(text) != text


@dataclass
class Address:
    line: str
    city: str
    postal_code: str
    state: str | None
    country: str

    def city_line(self, locale: str) -> str:
        """How the second line of the address is written in a note."""
        if locale == "fr_FR":
            return f"{self.postal_code} {self.city}"
        if locale == "en_US":
            return f"{self.city}, {self.state} {self.postal_code}"
        return f"{self.city} {self.postal_code}"

    def fhir(self) -> dict[str, Any]:
        out: dict[str, Any] = {"use": "home", "line": [self.line], "city": self.city,
                               "postalCode": self.postal_code, "country": self.country}
        if self.state:
            out["state"] = self.state
        return out


@dataclass
class Person:
    role: str  # patient | relative | clinician | other
    locale: str
    given: list[str]
    family: str
    gender: str  # male | female
    maiden: str | None = None
    phones: dict[str, str] = field(default_factory=dict)  # use -> digits in national form
    email: str | None = None
    address: Address | None = None
    relationship: str | None = None  # for relatives, in the note's language
    specialty: str | None = None  # for clinicians, in the note's language
    reference: str | None = None  # "Patient/…", "RelatedPerson/…", "Practitioner/…"

    @property
    def lang(self) -> str:
        return self.locale.split("_")[0]

    def name_tokens(self) -> set[str]:
        """Every name token of 3 or more letters, folded (what must not survive)."""
        words = [*self.given, self.family, *([self.maiden] if self.maiden else [])]
        return {t for w in words for t in fold_words(w) if len(t) >= 3}

    def fhir_names(self) -> list[dict[str, Any]]:
        names: list[dict[str, Any]] = [{"use": "official", "family": self.family,
                                        "given": list(self.given)}]
        if self.maiden:
            names.append({"use": "maiden", "family": self.maiden, "given": list(self.given)})
        return names


def fold(text: str) -> str:
    """Case- and accent-insensitive form, with typographic spaces and dashes made plain."""
    text = text.replace("\u00a0", " ").replace("\u202f", " ").replace("\u2011", "-")
    text = text.replace("\u2019", "'").replace("\u2013", "-")
    return strip_accents(text).casefold()


def fold_words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]+", fold(text))


# --- name variants -------------------------------------------------------------------------

NAME_VARIANTS = (
    "full",            # Jean-Pierre Dupont-Lefèvre
    "given_FAMILY",    # Jean-Pierre DUPONT-LEFÈVRE
    "FAMILY_given",    # DUPONT-LEFÈVRE Jean-Pierre (word order swapped)
    "family_given",    # Dupont-Lefèvre Jean-Pierre
    "FAMILY_noaccent",  # DUPONT-LEFEVRE
    "full_noaccent",   # Jean-Pierre Dupont-Lefevre
    "family",          # Dupont-Lefèvre
    "hyphen_part",     # Lefèvre (one part of a compound family name, else of a given name)
    "initial_family",  # J.-P. Dupont-Lefèvre
    "FAMILY_initial",  # DUPONT-LEFÈVRE J.-P.
    "given",           # Jean-Pierre
    "lower",           # jean-pierre dupont-lefèvre
    "maiden",          # Lefèvre (the maiden name, where there is one)
    "all_given",       # Jean-Pierre Marie Dupont-Lefèvre (every given name)
)

CLINICIAN_VARIANTS = ("full", "family", "FAMILY", "initial_family", "FAMILY_given",
                      "full_noaccent")


def _initials(given: str) -> str:
    parts = [p for p in re.split(r"([- ])", given) if p]
    out = []
    for p in parts:
        if p in "- ":
            out.append("-" if p == "-" else " ")
        else:
            out.append(p[0].upper() + ".")
    return "".join(out)


def name_variant(person: Person, variant: str, rng: random.Random) -> str:
    given = person.given[0]
    family = person.family
    match variant:
        case "full":
            return f"{given} {family}"
        case "given_FAMILY":
            return f"{given} {family.upper()}"
        case "FAMILY_given":
            return f"{family.upper()} {given}"
        case "family_given":
            return f"{family} {given}"
        case "FAMILY_noaccent":
            return strip_accents(family).upper()
        case "full_noaccent":
            return strip_accents(f"{given} {family}")
        case "family" | "FAMILY":
            return family.upper() if variant == "FAMILY" else family
        case "hyphen_part":
            for compound in (family, given):
                parts = [p for p in re.split(r"[- ]", compound) if len(p) >= 3]
                if len(parts) > 1:
                    return rng.choice(parts)
            return family
        case "initial_family":
            return f"{_initials(given)} {family}"
        case "FAMILY_initial":
            return f"{family.upper()} {_initials(given)}"
        case "given":
            return given
        case "lower":
            return f"{given} {family}".lower()
        case "maiden":
            return person.maiden or family
        case "all_given":
            return f"{' '.join(person.given)} {family}"
    raise ValueError(f"unknown name variant {variant!r}")


# --- identifiers ---------------------------------------------------------------------------

def nir(rng: random.Random, gender: str, birth_year: int, birth_month: int) -> str:
    """A 15-digit French NIR (13 digits + mod-97 key), compact."""
    body = (f"{1 if gender == 'male' else 2}{birth_year % 100:02d}{birth_month:02d}"
            f"{rng.randint(1, 95):02d}{rng.randint(1, 999):03d}{rng.randint(1, 999):03d}")
    key = 97 - int(body) % 97
    return f"{body}{key:02d}"


def nir_spaced(compact: str) -> str:
    c = compact
    return f"{c[0]} {c[1:3]} {c[3:5]} {c[5:7]} {c[7:10]} {c[10:13]} {c[13:15]}"


def nhs_number(rng: random.Random) -> str:
    while True:
        digits = [rng.randint(0, 9) for _ in range(9)]
        if digits[0] == 0:
            continue
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        if check == 11:
            check = 0
        if check == 10:
            continue
        return "".join(map(str, digits)) + str(check)


def nhs_spaced(compact: str) -> str:
    return f"{compact[:3]} {compact[3:6]} {compact[6:]}"


def digits(rng: random.Random, n: int, first_nonzero: bool = True) -> str:
    first = str(rng.randint(1 if first_nonzero else 0, 9))
    return first + "".join(str(rng.randint(0, 9)) for _ in range(n - 1))


def letters(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(n))


def ssn(rng: random.Random) -> str:
    area = rng.choice([n for n in range(100, 899) if n != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


# --- phones --------------------------------------------------------------------------------

_US_AREAS = ("212", "617", "415", "312", "206", "303", "404", "512", "614", "718", "919", "503")
_GB_MOBILE = ("071", "073", "074", "075", "077", "078", "079")


def _valid(number: str, region: str) -> bool:
    if phonenumbers is None:
        return True
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(parsed))


def national_phone(rng: random.Random, locale: str, mobile: bool) -> str:
    """Digits of a plausible national number: 10 for FR and US, 11 for GB."""
    for _ in range(200):
        if locale == "fr_FR":
            prefix = rng.choice(["06", "07"]) if mobile else rng.choice(["01", "02", "03", "04", "05", "09"])
            number = prefix + digits(rng, 8, first_nonzero=False)
            region = "FR"
        elif locale == "en_US":
            number = rng.choice(_US_AREAS) + str(rng.randint(2, 9)) + digits(rng, 6, False)
            if number[3:6] in ("555", "911") or number[4:6] == "11":
                continue
            region = "US"
        else:
            if mobile:
                number = rng.choice(_GB_MOBILE) + digits(rng, 8, False)
            else:
                number = "020" + rng.choice("378") + digits(rng, 7, False)
            region = "GB"
        if _valid(number, region):
            return number
    raise RuntimeError("no valid phone number drawn")


PHONE_FORMATS = {
    "fr_FR": ("fr_spaced", "fr_dotted", "fr_compact", "fr_intl", "fr_intl_paren0", "fr_dashed"),
    "en_US": ("us_paren", "us_dashed", "us_dotted", "us_intl", "us_compact"),
    "en_GB": ("gb_spaced", "gb_intl", "gb_compact", "gb_paren"),
}


def format_phone(number: str, fmt: str) -> str:
    n = number
    match fmt:
        case "fr_spaced":
            return " ".join(n[i:i + 2] for i in range(0, 10, 2))
        case "fr_dotted":
            return ".".join(n[i:i + 2] for i in range(0, 10, 2))
        case "fr_dashed":
            return "-".join(n[i:i + 2] for i in range(0, 10, 2))
        case "fr_compact" | "us_compact" | "gb_compact":
            return n
        case "fr_intl":
            return "+33 " + n[1] + " " + " ".join(n[i:i + 2] for i in range(2, 10, 2))
        case "fr_intl_paren0":
            return "+33 (0)" + n[1] + " " + " ".join(n[i:i + 2] for i in range(2, 10, 2))
        case "us_paren":
            return f"({n[:3]}) {n[3:6]}-{n[6:]}"
        case "us_dashed":
            return f"{n[:3]}-{n[3:6]}-{n[6:]}"
        case "us_dotted":
            return f"{n[:3]}.{n[3:6]}.{n[6:]}"
        case "us_intl":
            return f"+1 {n[:3]} {n[3:6]} {n[6:]}"
        case "gb_spaced":
            return f"{n[:3]} {n[3:7]} {n[7:]}" if n.startswith("020") else f"{n[:5]} {n[5:]}"
        case "gb_intl":
            rest = n[1:]
            return f"+44 {rest[:2]} {rest[2:6]} {rest[6:]}" if n.startswith("020") else f"+44 {rest[:4]} {rest[4:]}"
        case "gb_paren":
            return f"({n[:3]}) {n[3:7]} {n[7:]}" if n.startswith("020") else f"({n[:5]}) {n[5:]}"
    raise ValueError(f"unknown phone format {fmt!r}")


def fhir_phone(number: str, locale: str) -> str:
    """How the structured telecom holds the number (one canonical form per country)."""
    if locale == "fr_FR":
        return format_phone(number, "fr_spaced")
    if locale == "en_US":
        return format_phone(number, "us_dashed")
    return format_phone(number, "gb_spaced")


# --- Faker people --------------------------------------------------------------------------

_FAMILY_SHAPE = re.compile(r"^[^\W\d_][^\W\d_' -]*(?:[ '-][^\W\d_]+)*$")


class PeopleFactory:
    """Draws people from Faker, refusing names that collide with the corpus's own words."""

    def __init__(self, locale: str, rng: random.Random, stop_tokens: set[str]) -> None:
        self.locale = locale
        self.rng = rng
        self.faker = Faker(locale)
        self.faker.seed_instance(rng.getrandbits(32))
        self.stop = stop_tokens
        self.used: set[str] = set()

    def _ok(self, *words: str) -> bool:
        for w in words:
            if not _FAMILY_SHAPE.match(w):
                return False
            toks = [t for t in fold_words(w) if len(t) >= 3]
            if not toks or any(t in self.stop for t in toks):
                return False
        return True

    def _first(self, gender: str) -> str:
        f = self.faker
        for _ in range(100):
            name = f.first_name_male() if gender == "male" else f.first_name_female()
            if self._ok(name):
                return name
        raise RuntimeError("no usable first name")

    def _last(self) -> str:
        for _ in range(100):
            name = self.faker.last_name()
            if self._ok(name) and len(name) >= 3:
                return name
        raise RuntimeError("no usable last name")

    def _accented_last(self) -> str:
        for _ in range(200 if self.locale == "fr_FR" else 20):
            name = self._last()
            if has_accent(name):
                return name
        return self._last()

    def person(self, role: str, *, gender: str | None = None, compound: float = 0.0,
               accent: float = 0.0, two_given: float = 0.0, maiden: float = 0.0) -> Person:
        rng = self.rng
        gender = gender or rng.choice(["male", "female"])
        for _ in range(50):
            first = self._first(gender)
            if self.locale == "fr_FR" and rng.random() < compound and "-" not in first:
                second = self._first(gender)
                if second != first:
                    first = f"{first}-{second}"
            family = self._accented_last() if rng.random() < accent else self._last()
            if rng.random() < compound and "-" not in family and " " not in family:
                other = self._accented_last() if rng.random() < accent else self._last()
                if other != family:
                    family = f"{family}-{other}"
            given = [first]
            if rng.random() < two_given:
                extra = self._first(gender)
                if extra not in first:
                    given.append(extra)
            maiden_name = None
            if gender == "female" and rng.random() < maiden:
                maiden_name = self._last()
                if maiden_name == family:
                    maiden_name = None
            key = fold(f"{' '.join(given)} {family}")
            if key not in self.used:
                self.used.add(key)
                return Person(role, self.locale, given, family, gender, maiden_name)
        raise RuntimeError("could not draw a new person")

    def address(self) -> Address:
        f = self.faker
        for _ in range(100):
            line = f.street_address().replace("\n", " ")
            if self.locale == "fr_FR":
                city, postal, state, country = f.city(), f.postcode(), None, "FR"
            elif self.locale == "en_US":
                city, postal, state, country = f.city(), f.zipcode(), f.state_abbr(), "US"
            else:
                city, postal, state, country = f.city(), f.postcode(), None, "GB"
            toks = set(fold_words(f"{line} {city}"))
            if not toks & self.stop:
                return Address(line, city, postal, state, country)
        raise RuntimeError("no usable address")

    def email(self, person: Person, *, professional: str | None = None) -> str:
        g = strip_accents(person.given[0]).lower().replace(" ", "").replace("'", "")
        fam = strip_accents(person.family).lower().replace(" ", "").replace("'", "")
        domains = {"fr_FR": ("orange.fr", "gmail.com", "free.fr", "laposte.net", "sfr.fr"),
                   "en_US": ("gmail.com", "yahoo.com", "outlook.com", "aol.com"),
                   "en_GB": ("gmail.com", "btinternet.com", "outlook.com", "yahoo.co.uk")}
        if professional:
            return f"{g[0]}.{fam}@{professional}"
        shape = self.rng.randrange(3)
        domain = self.rng.choice(domains[self.locale])
        if shape == 0:
            return f"{g}.{fam}@{domain}"
        if shape == 1:
            return f"{g[0]}{fam}{self.rng.randint(10, 99)}@{domain}"
        return f"{fam}.{g}{self.rng.randint(1, 9)}@{domain}"
