"""Turning a template into a note: each ``{field}`` becomes text, and a labelled span or a
clinical term where it is one.

Fields (dotted; ``*`` means "the next one in the corpus-wide cycle", so a small corpus still
holds every variant):

=====================  =======================================================================
``P.<variant>``        the patient's name (variants in ``people.NAME_VARIANTS``)
``R1`` / ``R2``        relatives: the Patient.contact / the RelatedPerson
``C1`` / ``C2`` / ``C3``  clinicians (Practitioner; C1 is the note's author)
``O1`` / ``O2``        other people, held by no resource
``D.<slot>.<fmt>``     a date: slot (note, adm, dis, prev, prev2, next, lab, onset, proc),
                       format id, or a group: ``any``, ``num``, ``written``, ``noyear``, ``my``
``BD.<fmt>``           the birth date (``any`` = next birth format of the locale)
``ID.<kind>``          an identifier (nir_spaced, nir_compact, ipp, nda, mrn, ssn, nhs_spaced,
                       nhs_compact, member, policy, dossier, rpps)
``PH.<who>.<fmt>``     a phone of P/R1/R2/O1 (``any`` cycles the locale's formats)
``EM.<who>``           an e-mail of P/R1/C1/C2
``AD.<who>.<part>``    an address of P/R1/R2: ``line`` or ``city``
``H.<text>`` etc.      clinical terms: H heading, T test, DR drug, DX diagnosis (given text); COND.i, MED.i,
                       LAB.i, PROC.i, ALG.i, IMM.i (the patient's coded displays); SMOKE (age)
plain words            TP, TR1, TR2, TC1.. (titles), NE (né/née), AGE, LABV.i (value), REL1,
                       REL2, SPEC1.., HOSP, PRON (il/elle, he/she), POSS (his/her)
=====================  =======================================================================
"""

from __future__ import annotations

import datetime as dt
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import dates as D
from .labels import Span, Term
from .people import CLINICIAN_VARIANTS, NAME_VARIANTS, Person, format_phone, name_variant
from .vocab import DIAGNOSES, DRUGS, HEADINGS, SMOKING_AGES, TESTS, Concept, Lab


class Cycler:
    """Yields items in shuffled rounds: every item appears once per round."""

    def __init__(self, items: Sequence[str], rng: random.Random) -> None:
        self.items = list(items)
        self.rng = rng
        self.queue: list[str] = []

    def next(self, accept: Any = None) -> str:
        """The next item ``accept`` allows; one it refuses stays queued for a later call."""
        for _ in range(3):
            for i in range(len(self.queue) - 1, -1, -1):
                if accept is None or accept(self.queue[i]):
                    return self.queue.pop(i)
            fresh = list(self.items)
            self.rng.shuffle(fresh)
            self.queue = fresh + self.queue
        raise ValueError("no acceptable item")


@dataclass
class NoteContext:
    rng: random.Random
    locale: str
    patient: Person
    birth: dt.date
    relatives: list[Person]
    clinicians: list[Person]
    others: list[Person]
    dates: dict[str, dt.date]
    ids: dict[str, str]
    conditions: list[Concept]
    medications: list[Concept]
    labs: list[tuple[Lab, str]]
    procedures: list[Concept]
    allergies: list[Concept]
    immunizations: list[Concept]
    age: int
    smoke_age: int
    hospital: str
    cyclers: dict[tuple[str, ...], Cycler]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def lang(self) -> str:
        return D.language_of(self.locale)

    @property
    def female(self) -> bool:
        return self.patient.gender == "female"

    @property
    def us(self) -> bool:
        return self.locale == "en_US"

    def pick(self, *options: str) -> str:
        return self.rng.choice(options)

    def maybe(self, text: str, p: float = 0.5) -> str:
        return text if self.rng.random() < p else ""

    def cycle(self, key: tuple[str, ...], items: Sequence[str], accept: Any = None) -> str:
        if key not in self.cyclers:
            self.cyclers[key] = Cycler(items, random.Random(self.rng.getrandbits(32)))
        return self.cyclers[key].next(accept)


def title(person: Person, lang: str, rng: random.Random) -> str:
    if person.role == "clinician":
        return rng.choice(["Dr", "Dr", "Pr"]) if lang == "fr" else rng.choice(["Dr", "Dr."])
    if lang == "fr":
        return "Mme" if person.gender == "female" else rng.choice(["M.", "Monsieur"])
    return rng.choice(["Mrs", "Ms"]) if person.gender == "female" else "Mr"


_DATE_GROUPS = {
    "any": lambda loc: tuple(f for f in D.FORMATS[loc] if f not in D.PARTIAL),
    "num": lambda loc: tuple(f for f in D.FORMATS[loc] if f in D.NUMERIC),
    "written": lambda loc: tuple(f for f in D.FORMATS[loc]
                                 if f not in D.NUMERIC and f not in D.PARTIAL),
    "noyear": lambda loc: tuple(f for f in D.FORMATS[loc] if f.endswith("no_year")),
    "my": lambda loc: ("month_year",),
}


class Renderer:
    def __init__(self, ctx: NoteContext) -> None:
        self.c = ctx
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[Span] = []
        self.terms: list[Term] = []

    # -- output --
    def _emit(self, text: str) -> tuple[int, int]:
        start = self.length
        self.parts.append(text)
        self.length += len(text)
        return start, self.length

    def span(self, text: str, label: str, **meta: Any) -> None:
        start, end = self._emit(text)
        self.spans.append(Span(start, end, label, text, **meta))

    def term(self, text: str, source: str) -> None:
        start, end = self._emit(text)
        self.terms.append(Term(start, end, text, source))

    def render(self, template: str) -> tuple[str, list[Span], list[Term]]:
        for literal, name, spec, _conv in string.Formatter().parse(template):
            if literal:
                self._emit(literal)
            if name is not None:
                self.field(name + (":" + spec if spec else ""))
        return "".join(self.parts), self.spans, self.terms

    # -- fields --
    def person(self, key: str) -> Person:
        c = self.c
        if key == "P":
            return c.patient
        group = {"R": c.relatives, "C": c.clinicians, "O": c.others}[key[0]]
        return group[int(key[1:]) - 1]

    def field(self, name: str) -> None:
        c = self.c
        head, _, rest = name.partition(".")
        lang = c.lang
        if head in ("P", "R1", "R2", "C1", "C2", "C3", "O1", "O2"):
            p = self.person(head)
            variants = CLINICIAN_VARIANTS if p.role == "clinician" else NAME_VARIANTS
            variant = rest
            if rest == "*":
                variant = c.cycle(("name", p.role), variants,
                                  lambda v: v != "maiden" or p.maiden is not None)
            self.span(name_variant(p, variant, c.rng), "NAME", variant=variant, role=p.role,
                      reference=p.reference, person=head)
        elif head == "D":
            slot, _, fmt = rest.partition(".")
            date = c.dates[slot]
            if fmt in _DATE_GROUPS:
                fmt = c.cycle(("date", c.locale, fmt), _DATE_GROUPS[fmt](c.locale))
            self.span(D.render(date, fmt, lang), "DATE", date=date.isoformat(), format=fmt,
                      variant=slot)
        elif head == "BD":
            fmt = rest
            if fmt == "any":
                fmt = c.cycle(("birth", c.locale), D.BIRTH_FORMATS[c.locale])
            self.span(D.render(c.birth, fmt, lang), "BIRTH_DATE", date=c.birth.isoformat(),
                      format=fmt, role="patient", reference=c.patient.reference)
        elif head == "ID":
            role, ref = c.extra.get(f"id_ref:{rest}", (None, None))
            self.span(c.ids[rest], "ID", variant=rest, role=role, reference=ref)
        elif head == "PH":
            who, _, fmt = rest.partition(".")
            p = self.person(who)
            if fmt == "any":
                from .people import PHONE_FORMATS

                fmt = c.cycle(("phone", c.locale), PHONE_FORMATS[c.locale])
            use = "mobile" if "mobile" in p.phones and (who != "P" or c.rng.random() < 0.6) else "home"
            number = p.phones.get(use) or next(iter(p.phones.values()))
            self.span(format_phone(number, fmt), "PHONE", variant=fmt, role=p.role,
                      reference=p.reference, person=who)
        elif head == "EM":
            p = self.person(rest)
            assert p.email, rest
            self.span(p.email, "EMAIL", role=p.role, reference=p.reference, person=rest)
        elif head == "AD":
            who, _, part = rest.partition(".")
            p = self.person(who)
            assert p.address is not None, who
            text = p.address.line if part == "line" else p.address.city_line(c.locale)
            self.span(text, "ADDRESS", variant=part, role=p.role, reference=p.reference,
                      person=who)
        elif head == "H":
            assert rest in HEADINGS[lang], rest
            self.term(rest, "heading")
        elif head == "T":
            assert rest in TESTS[lang], rest
            self.term(rest, "test")
        elif head == "DR":
            assert rest in DRUGS[lang], rest
            self.term(rest, "drug")
        elif head == "DX":
            assert rest in DIAGNOSES[lang], rest
            self.term(rest, "diagnosis")
        elif head in ("COND", "MED", "PROC", "ALG", "IMM", "LAB"):
            pool: list[Concept] = {
                "COND": c.conditions, "MED": c.medications, "PROC": c.procedures,
                "ALG": c.allergies, "IMM": c.immunizations,
                "LAB": [lab.concept for lab, _ in c.labs]}[head]
            self.term(pool[int(rest) % len(pool)].text(lang), "coded")
        elif head == "LABV":
            self._emit(c.labs[int(rest) % len(c.labs)][1])
        elif head == "SMOKE":
            self.term(SMOKING_AGES[lang].format(age=c.smoke_age), "age")
        elif head in ("TP", "TR1", "TR2", "TC1", "TC2", "TC3", "TO1", "TO2"):
            p = self.person(head[1:])
            self._emit(c.extra.setdefault(f"title:{head}", title(p, lang, c.rng)))
        elif head == "NE":
            self._emit(("née" if c.female else "né") if lang == "fr" else "born")
        elif head == "PRON":
            fr = ("elle" if c.female else "il")
            en = ("she" if c.female else "he")
            self._emit(fr if lang == "fr" else en)
        elif head == "POSS":
            self._emit("her" if c.female else "his")
        elif head == "AGE":
            self._emit(str(c.age))
        elif head in ("REL1", "REL2"):
            p = c.relatives[int(head[3]) - 1]
            self._emit(p.relationship or "")
        elif head in ("SPEC1", "SPEC2", "SPEC3"):
            self._emit(c.clinicians[int(head[4]) - 1].specialty or "")
        elif head == "HOSP":
            self._emit(c.hospital)
        elif head == "X":  # a plain extra word set by the template builder
            self._emit(str(c.extra[rest]))
        else:
            raise KeyError(f"unknown template field {name!r}")
