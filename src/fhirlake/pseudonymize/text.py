"""Free text: names, places, dates and identifiers found and replaced, fast, EN and FR.

For every text element of a batch of resources (:class:`~fhirlake.pseudonymize.rules.TextSlot`):

1. **Analysis, once per distinct text** (cached by a hash of language and text): the spaCy
   NER pass (``ner``: PERSON, LOCATION, ORGANIZATION, with the NER pipe alone, in batches),
   Presidio's recognizers on the same Doc (``presidio``: e-mail, phone, IBAN, credit card, IP,
   URL, SSN, NIR, MRN, as the analyzer file lists them), the patterns (``patterns``: e-mails, phones, NIR, identifiers by shape and label, street
   addresses, names after a title) and the dates (``textdates``). The language is the text's
   own (its function words), else the patient's, else the policy's default.
2. **The export's deny-lists**, per text: every person the export names (``persons``: the
   patient, their relatives, the clinicians; accents, case, hyphens, word order and initials
   do not matter) and the patient's own phones, e-mails, addresses and identifiers.
3. **The clinical allow-list** (``clinical``): a span NER found that is clinical vocabulary
   ("Metformine", "# Social History", "Holter ECG") is kept, unless a deny-list or a pattern
   marks it too.
4. **Replacement**: overlapping findings merge (deny-lists first, then dates, patterns, NER);
   a person of the export gets one keyed token whatever the spelling (``[PERSON_3fa94c0e1b]``),
   other names a token of their text, places a tag, and each date is moved by the patient's
   offset and written back in its own format (a birth date keeps its year only).

XHTML narratives are analysed with their tags blanked out, and replacements never touch markup.

>>> shift_date_text("12/06/2003", 3, "fr", 89), shift_date_text("June 12, 2003", 3, "en", 89)
('15/06/2003', 'June 15, 2003')
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from fhirlake.pseudonymize.keys import PseudonymKey
from fhirlake.pseudonymize.ner import NerModels, guess_language, load_ner_settings
from fhirlake.pseudonymize.patients import PatientDirectory
from fhirlake.pseudonymize.patterns import AGE_PATTERN, find_patterns
from fhirlake.pseudonymize.persons import Person
from fhirlake.pseudonymize.policy import TextSettings
from fhirlake.pseudonymize.rules import TextSlot
from fhirlake.pseudonymize.terms import TermMatcher
from fhirlake.pseudonymize.textdates import TextDate, find_dates

__all__ = ["Span", "TextScrubber", "TextStats", "load_models", "shift_date_text"]

# (start, end, entity type, score, what was found: a TextDate, a Person or None)
Span = tuple[int, int, str, float, object]
_DENY_SCORE = 2.0  # a string of the export: wins every overlap
_DATE_SCORE = 1.5
_PATTERN_SCORES = {
    "EMAIL_ADDRESS": 1.0,
    "FR_NIR": 1.0,
    "US_SSN": 0.95,
    "PHONE_NUMBER": 0.95,
    "URL": 0.9,
    "IP_ADDRESS": 0.9,
    "PERSON": 0.9,
    "LOCATION": 0.8,
    "IDENTIFIER": 0.7,
}
# Presidio's entity types named as fhirlake's own (the others keep Presidio's name)
_PRESIDIO_TYPES = {"MEDICAL_RECORD_NUMBER": "IDENTIFIER"}
_TAG = re.compile(r"<[^>]*>")
_LINE_PART = re.compile(r"[^\W_](?:[^\n]*[^\W_])?")  # a span's part on one line, trimmed
# a capitalised word right before or after a person NER found ("Cécile" of "Cécile Hamon" when only
# "Hamon" was tagged): the small models often tag half of a name
_NAME_WORD = r"[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'’]{2,}(?:-[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'’]+)?|[A-ZÀ-ÖØ-Þ]{3,}(?:-[A-ZÀ-ÖØ-Þ]{2,})?"
_WORD_BEFORE = re.compile(rf"(?:^|(?<=[\s(\[\"«]))({_NAME_WORD})[ \t]+$")
_WORD_AFTER = re.compile(rf"[ \t]+({_NAME_WORD})(?=$|[\s,.;:)\]\"»])")


@dataclass(frozen=True, slots=True)
class _Analysis:
    """What a text holds, whoever it belongs to (so it is cached by the text alone)."""

    language: str
    ner: tuple[Span, ...]
    patterns: tuple[Span, ...]
    dates: tuple[TextDate, ...]
    ages: tuple[tuple[int, int, int], ...]  # (start, end of the number, age)


def load_models(settings: TextSettings) -> NerModels:
    """The NER models the policy's analyzer file names, loaded now (once per process)."""
    models = NerModels(load_ner_settings(settings.analyzer))
    models.load_all()
    return models


def shift_date_text(text: str, offset: int, language: str, max_age: int) -> str | None:
    """A date written in text, moved by ``offset`` days in its own format (``None``: a tag).

    Kept for callers of the former API; :mod:`fhirlake.pseudonymize.textdates` does the work.
    """
    found = find_dates(text, language)
    if len(found) != 1:
        return None if any(c.isdigit() for c in text) else text
    date = found[0]
    moved = date.render(offset)
    return None if moved is None else text[: date.start] + moved + text[date.end :]


@dataclass(slots=True)
class TextStats:
    """Counts for the privacy report."""

    elements: int = 0
    characters: int = 0
    analysed: int = 0
    cache_hits: int = 0
    deny_list_hits: int = 0
    seconds: float = 0.0  # time spent scrubbing (analysis, deny-lists, replacement)
    entities: Counter[str] = field(default_factory=Counter)

    def merge(self, other: TextStats) -> None:
        self.seconds += other.seconds
        self.elements += other.elements
        self.characters += other.characters
        self.analysed += other.analysed
        self.cache_hits += other.cache_hits
        self.deny_list_hits += other.deny_list_hits
        self.entities.update(other.entities)


def _blank_tags(xhtml: str) -> tuple[str, list[tuple[int, int]]]:
    """The XHTML with each tag replaced by spaces of the same length, and the tags' ranges."""
    tags = [(m.start(), m.end()) for m in _TAG.finditer(xhtml)]
    chars = list(xhtml)
    for start, end in tags:
        chars[start:end] = " " * (end - start)
    return "".join(chars), tags


def _outside(span: Span, tags: list[tuple[int, int]]) -> Iterable[Span]:
    """The parts of ``span`` that are not inside a tag."""
    start, end, entity, score, found = span
    for tag_start, tag_end in tags:
        if tag_end <= start:
            continue
        if tag_start >= end:
            break
        if tag_start > start:
            yield (start, tag_start, entity, score, found)
        start = max(start, tag_end)
    if start < end:
        yield (start, end, entity, score, found)


def _merge(spans: list[Span]) -> list[Span]:
    """Overlapping spans become one; the highest score (the deny-list first) names it."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s[0], -s[1])):
        if merged and span[0] < merged[-1][1]:
            last = merged[-1]
            best = last if last[3] >= span[3] else span
            merged[-1] = (last[0], max(last[1], span[1]), best[2], best[3], best[4])
        else:
            merged.append(span)
    return merged


def _overlaps(span: Span, others: Iterable[Span]) -> bool:
    return any(span[0] < o[1] and o[0] < span[1] for o in others)


class TextScrubber:
    """Scrubs batches of text slots in place; one per worker process (models loaded once)."""

    def __init__(
        self, settings: TextSettings, key: PseudonymKey, models: NerModels, max_age: int
    ) -> None:
        self.settings = settings
        self.key = key
        self.models = models
        self.max_age = max_age
        self.languages = models.languages
        self.stats = TextStats()
        self.directory = PatientDirectory()
        self._cache: OrderedDict[bytes, _Analysis] = OrderedDict()
        self._matchers: OrderedDict[int, TermMatcher] = OrderedDict()
        self._clinicians = TermMatcher(())
        self._tokens: dict[tuple[str, int, str], str] = {}

    def start_run(self, directory: PatientDirectory) -> None:
        """Take the export's people and vocabulary; forget the last run's deny-lists.

        The analysis cache stays: it depends only on the texts.
        """
        self.directory = directory
        self._matchers.clear()
        self._tokens.clear()
        self._clinicians = TermMatcher(
            (t for t in directory.clinician_terms if t.entity != "PERSON"), min_number=6
        )

    def scrub(self, slots: list[TextSlot]) -> None:
        """Analyse, deny-list and replace every slot's text, writing the result back."""
        started = time.perf_counter()
        prepared = [self._prepare(slot) for slot in slots]
        analyses = self._analyse(prepared)
        for slot, (masked, tags, _), analysis in zip(slots, prepared, analyses, strict=True):
            spans = self._spans(slot, masked, analysis)
            merged = _merge([part for span in spans for part in _outside(span, tags)])
            self._write(slot, self._replace(slot, merged, analysis))
        self.stats.seconds += time.perf_counter() - started

    # --- analysis (per distinct text) --------------------------------------------------------

    def _prepare(self, slot: TextSlot) -> tuple[str, list[tuple[int, int]], str]:
        masked, tags = _blank_tags(slot.text) if slot.kind == "xhtml" else (slot.text, [])
        fallback = slot.language if slot.language in self.languages else None
        language = guess_language(
            masked, fallback or self.settings.default_language, self.languages
        )
        self.stats.elements += 1
        self.stats.characters += len(slot.text)
        return masked, tags, language

    def _analyse(self, prepared: list[tuple[str, list[tuple[int, int]], str]]) -> list[_Analysis]:
        """Each text's analysis: from the cache, or computed with one NER batch per language.

        With ``cacheSize: 0`` nothing is remembered and every text is analysed, duplicates
        included (the baseline the benchmark compares the cache against).
        """
        use_cache = self.settings.cache_size > 0
        digests = [
            hashlib.blake2b(f"{language}\x00{masked}".encode(), digest_size=16).digest()
            for masked, _, language in prepared
        ]
        result: dict[bytes, _Analysis] = {}
        missing: dict[str, dict[bytes, str]] = {}
        for digest, (masked, _, language) in zip(digests, prepared, strict=True):
            if use_cache and (digest in result or digest in missing.get(language, {})):
                self.stats.cache_hits += 1
            elif use_cache and digest in self._cache:
                self._cache.move_to_end(digest)
                result[digest] = self._cache[digest]
                self.stats.cache_hits += 1
            else:
                missing.setdefault(language, {})[digest] = masked
        if not use_cache:  # every text, duplicates included, still in batches per language
            by_index: dict[int, _Analysis] = {}
            for language in {p[2] for p in prepared}:
                indexes = [i for i, p in enumerate(prepared) if p[2] == language]
                batch = [prepared[i][0] for i in indexes]
                by_index.update(zip(indexes, self._run(language, batch), strict=True))
            return [by_index[i] for i in range(len(prepared))]
        for language, texts in missing.items():
            for digest, analysis in zip(
                texts, self._run(language, list(texts.values())), strict=True
            ):
                result[digest] = analysis
                self._cache[digest] = analysis
                if len(self._cache) > self.settings.cache_size:
                    self._cache.popitem(last=False)
        return [result[d] for d in digests]

    def _run(self, language: str, texts: list[str]) -> list[_Analysis]:
        """NER on a batch of texts of one language, and the rules on each."""
        self.stats.analysed += len(texts)
        model = language if language in self.languages else self.settings.default_language
        found = self.models.analyse(model, texts, self.settings.batch_size)
        out = []
        for text, (entities, presidio) in zip(texts, found, strict=True):
            patterns = tuple(
                (s, e, kind, _PATTERN_SCORES[kind], None) for s, e, kind in find_patterns(text)
            ) + tuple(
                (s, e, _PRESIDIO_TYPES.get(kind, kind), score, None)
                for s, e, kind, score in presidio
            )
            ages = tuple(
                (m.start("age"), m.end("age"), int(m.group("age")))
                for m in AGE_PATTERN.finditer(text)
                if int(m.group("age")) > self.max_age
            )
            out.append(
                _Analysis(
                    language,
                    tuple((s, e, k, score, None) for s, e, k, score in entities),
                    patterns,
                    tuple(find_dates(text, language)),
                    ages,
                )
            )
        return out

    # --- per patient --------------------------------------------------------------------------

    def _spans(self, slot: TextSlot, text: str, analysis: _Analysis) -> list[Span]:
        deny = self._deny(slot, text)
        ner = self._named(text, analysis.ner)
        dates: list[Span] = [(d.start, d.end, "DATE_TIME", _DATE_SCORE, d) for d in analysis.dates]
        ages: list[Span] = [(s, e, "AGE", _DATE_SCORE, a) for s, e, a in analysis.ages]
        marked = [*deny, *analysis.patterns]
        # a date is a date, whatever NER or the identifier shape thought of it
        fixed = [*dates, *ages]
        others = [s for s in (*marked, *ner) if s[3] >= _DENY_SCORE or not _overlaps(s, fixed)]
        fixed = [d for d in fixed if not _overlaps(d, deny)]
        return [*others, *fixed]

    def _named(self, text: str, spans: tuple[Span, ...]) -> list[Span]:
        """NER's findings, cut at line ends and trimmed, without the clinical vocabulary.

        The small models run entities across lines ("Dr Evans\n\nChief Complaint") and tag
        drugs and tests; a part that overlaps a clinical term of the export, or is made of
        clinical words only, is dropped.
        """
        if not spans:
            return []
        clinical = self.directory.clinical
        terms: list[Span] = [(s, e, "", 0.0, None) for s, e in clinical.find(text)]
        kept: list[Span] = []
        for start, end, entity, score, found in spans:
            for line in _LINE_PART.finditer(text, start, end):
                part = (line.start(), line.end(), entity, score, found)
                if _overlaps(part, terms):
                    continue
                if not clinical.allows(line.group()):
                    kept.append(self._whole_name(text, part, terms) if entity == "PERSON" else part)
        return kept

    def _whole_name(self, text: str, part: Span, terms: list[Span]) -> Span:
        """``part`` (a person) grown over one capitalised word right before and after it on the
        same line, unless that word is clinical vocabulary."""
        start, end, entity, score, found = part
        clinical = self.directory.clinical
        before = _WORD_BEFORE.search(text, max(0, start - 40), start)
        if before is not None and not clinical.allows(before.group(1)) \
                and not _overlaps((before.start(1), start, "", 0.0, None), terms):
            start = before.start(1)
        after = _WORD_AFTER.match(text, end, min(len(text), end + 40))
        if after is not None and not clinical.allows(after.group(1)) \
                and not _overlaps((end, after.end(1), "", 0.0, None), terms):
            end = after.end(1)
        return (start, end, entity, score, found)

    def _deny(self, slot: TextSlot, text: str) -> list[Span]:
        found: list[Span] = []
        patient = slot.patient.ordinal if slot.patient is not None else None
        for start, end, person in self.directory.persons.find(text, patient):
            found.append((start, end, "PERSON", _DENY_SCORE, person))
        if slot.patient is not None:
            matcher = self._matchers.get(slot.patient.ordinal)
            if matcher is None:
                # postal codes are 4-5 digits: shorter numbers count in the patient's own notes
                terms = (*slot.patient.terms, *slot.patient.quasi_terms)
                matcher = TermMatcher(terms, min_number=4)
                self._matchers[slot.patient.ordinal] = matcher
                if len(self._matchers) > 10_000:
                    self._matchers.popitem(last=False)
            found.extend(
                (start, end, term.entity, _DENY_SCORE, None)
                for start, end, term in matcher.find(text)
            )
        found.extend(
            (start, end, term.entity, _DENY_SCORE, None)
            for start, end, term in self._clinicians.find(text)
        )
        self.stats.deny_list_hits += len(found)
        return found

    def _replace(self, slot: TextSlot, spans: list[Span], analysis: _Analysis) -> str:
        text = slot.text
        out: list[str] = []
        position = 0
        birth = slot.patient.birth_date if slot.patient is not None else None
        for start, end, entity, _, found in spans:
            out.append(text[position:start])
            out.append(self._replacement(text[start:end], entity, found, slot.offset, birth))
            position = end
        out.append(text[position:])
        return "".join(out)

    def _replacement(
        self, text: str, entity: str, found: object, offset: int, birth: str | None
    ) -> str:
        operator = self.settings.operator(entity)
        if operator == "keep":
            return text
        self.stats.entities[entity] += 1
        if entity == "AGE":
            return f"{self.max_age + 1}+"
        if isinstance(found, TextDate) and operator == "dateShift" and text == found.text:
            moved = found.render(offset, birth)
            return moved if moved is not None else f"[{entity}]"
        if operator in ("tag", "dateShift"):
            return f"[{entity}]"
        if isinstance(found, Person):
            return self._person_token(found)
        normalised = " ".join(text.split()).casefold()
        return f"[{entity}_{self.key.hexdigest('text:' + entity, normalised, 10)}]"

    def _person_token(self, person: Person) -> str:
        """One token per person of the export, whatever the spelling found."""
        ident = (person.role, person.owner, "|".join((*person.given, "", *person.family)))
        token = self._tokens.get(ident)
        if token is None:
            name = " ".join((*person.given, *person.family)).casefold()
            token = f"[PERSON_{self.key.hexdigest('text:PERSON', name, 10)}]"
            self._tokens[ident] = token
        return token

    def _write(self, slot: TextSlot, new_text: str) -> None:
        if slot.kind == "base64":
            data = new_text.encode("utf-8")
            slot.container[slot.slot] = base64.b64encode(data).decode("ascii")
            if "size" in slot.parent:
                slot.parent["size"] = len(data)
            content_type = slot.parent.get("contentType")
            if isinstance(content_type, str) and "charset=" in content_type.lower():
                slot.parent["contentType"] = content_type.split(";")[0] + "; charset=utf-8"
        else:
            slot.container[slot.slot] = new_text
