"""Free text through Presidio: analysis (cached by hash), the patient's deny-list, replacement.

For every text element of a batch of resources (:class:`~fhirlake.pseudonymize.rules.TextSlot`):

1. Presidio analyses the text (spaCy NER, pattern recognizers, the French NIR). The result
   depends only on the text and its language, so it is cached by a hash of both: a text seen
   before, in any patient, is not analysed again. New texts go to spaCy in batches
   (``nlp.pipe``), which is about twice as fast as one call per text.
2. The patient's own identifying strings (names NER misses, such as Synthea's "Carolee951",
   phones, address lines, identifiers) are found by a per-patient deny-list; this depends on
   the patient, so it runs on every text, and is cheap.
3. Overlapping findings are merged and replaced: a consistent keyed token such as
   ``[PERSON_3fa94c0e1b]`` (the same name gives the same token everywhere), a type tag
   ``[LOCATION]``, or, for dates, the date moved by the patient's offset so that dates in notes
   agree with the shifted structured dates (and cannot reveal the offset).

XHTML narratives are analysed with their tags blanked out, and replacements never touch markup.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import os
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from fhirlake.pseudonymize.dates import shift_date
from fhirlake.pseudonymize.errors import PolicyError
from fhirlake.pseudonymize.keys import PseudonymKey
from fhirlake.pseudonymize.policy import TextSettings
from fhirlake.pseudonymize.rules import TextSlot
from fhirlake.pseudonymize.terms import TermMatcher

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine

__all__ = ["Span", "TextScrubber", "TextStats", "load_analyzer", "shift_date_text"]

# (start, end, entity type, score)
Span = tuple[int, int, str, float]
# (language, text as analysed, tag ranges of XHTML, digest of language and text)
_Prepared = tuple[str, str, list[tuple[int, int]], bytes]
_DENY_SCORE = 2.0  # above any Presidio score: the deny-list wins overlaps
_TAG = re.compile(r"<[^>]*>")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:T[\d:.]+(?:Z|[+-]\d{2}:\d{2})?)?$")
_NUMERIC = re.compile(r"^(\d{1,2})([/.-])(\d{1,2})\2(\d{4})$")
_YEAR = re.compile(r"^\d{4}$")
_AGE = re.compile(r"^(\d{1,3})(\s*-?\s*(?:years?|yrs?|y/o|ans?)\b.*)$", re.IGNORECASE)


def load_analyzer(config_path: Path) -> AnalyzerEngine:
    """Build the Presidio analyzer from its YAML, offline, after checking it ourselves.

    Presidio falls back to its default configuration (which downloads ``en_core_web_lg``) when
    a file is missing or invalid; checking first turns that into a clear error instead.
    """
    where = str(config_path)
    try:
        conf = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(where, "", f"cannot read the analyzer configuration ({exc})") from None
    if not isinstance(conf, dict):
        raise PolicyError(where, "", "expected a mapping")
    nlp = conf.get("nlp_configuration")
    if not isinstance(nlp, dict) or not isinstance(nlp.get("models"), list) or not nlp["models"]:
        raise PolicyError(where, "/nlp_configuration/models", "expected a list of spaCy models")
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")  # no download of the PSL
    import spacy.util

    for i, model in enumerate(nlp["models"]):
        name = model.get("model_name") if isinstance(model, dict) else None
        if not isinstance(name, str) or not (spacy.util.is_package(name) or Path(name).exists()):
            raise PolicyError(
                where,
                f"/nlp_configuration/models/{i}/model_name",
                f"spaCy model {name!r} is not installed (it is a PyPI package: pip install -e .)",
            )
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    from presidio_analyzer import AnalyzerEngineProvider

    from fhirlake.pseudonymize.recognizers import FrNirRecognizer

    try:
        analyzer = AnalyzerEngineProvider(analyzer_engine_conf_file=config_path).create_engine()
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise PolicyError(where, "", f"Presidio rejected the configuration: {exc}") from None
    for language in analyzer.supported_languages:
        analyzer.registry.add_recognizer(FrNirRecognizer(supported_language=language))
    _tune(analyzer)
    return analyzer


# Numbering plans tried by Presidio's phone recognizer, per language (its default tries eight
# countries, which makes it the slowest recognizer). Presidio's YAML cannot set this.
PHONE_REGIONS = {"en": ("US", "CA", "GB"), "fr": ("FR", "BE", "CH")}


def _tune(analyzer: AnalyzerEngine) -> None:
    """Switch off work that does not change the findings (about a third of the time)."""
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    for recognizer in analyzer.registry.recognizers:
        if (
            isinstance(recognizer, PhoneRecognizer)
            and recognizer.supported_language in PHONE_REGIONS
        ):
            recognizer.supported_regions = PHONE_REGIONS[recognizer.supported_language]
    for nlp in getattr(analyzer.nlp_engine, "nlp", {}).values():
        if "parser" in nlp.pipe_names:
            nlp.disable_pipe("parser")  # NER and the lemmatizer do not need it


def shift_date_text(text: str, offset: int, language: str, max_age: int) -> str | None:
    """A date found in text, moved by ``offset`` days; ``None`` if it must become a tag.

    ISO dates, numeric dates (month first in English, day first in French) and years are
    shifted; an age ("42 year-old") stays unless above ``max_age``; words without digits
    ("yesterday") stay; anything else with digits ("June 12, 2003") becomes a tag.

    >>> shift_date_text("2003-06-12", 3, "en", 89), shift_date_text("12/06/2003", 3, "fr", 89)
    ('2003-06-15', '15/06/2003')
    >>> shift_date_text("95 year-old", 3, "en", 89), shift_date_text("today", 3, "en", 89)
    ('90+ year-old', 'today')
    """
    stripped = text.strip()
    try:
        if _ISO.match(stripped) or _YEAR.match(stripped):
            return shift_date(stripped, offset)
        m = _NUMERIC.match(stripped)
        if m:
            first, sep, second, year = m.groups()
            month, day = (first, second) if language == "en" else (second, first)
            shifted = dt.date(int(year), int(month), int(day)) + dt.timedelta(days=offset)
            a, b = (
                (shifted.month, shifted.day) if language == "en" else (shifted.day, shifted.month)
            )
            return f"{a:02d}{sep}{b:02d}{sep}{shifted.year:04d}"
    except ValueError:
        return None
    m = _AGE.match(stripped)
    if m:
        return f"{max_age + 1}+{m[2]}" if int(m[1]) > max_age else text
    return None if any(c.isdigit() for c in stripped) else text


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
    start, end, entity, score = span
    for tag_start, tag_end in tags:
        if tag_end <= start:
            continue
        if tag_start >= end:
            break
        if tag_start > start:
            yield (start, tag_start, entity, score)
        start = max(start, tag_end)
    if start < end:
        yield (start, end, entity, score)


def _merge(spans: list[Span]) -> list[Span]:
    """Overlapping spans become one; the highest score (the deny-list first) names it."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s[0], -s[1])):
        if merged and span[0] < merged[-1][1]:
            last = merged[-1]
            best = last if last[3] >= span[3] else span
            merged[-1] = (last[0], max(last[1], span[1]), best[2], best[3])
        else:
            merged.append(span)
    return merged


class TextScrubber:
    """Scrubs batches of text slots in place; one per worker process."""

    def __init__(
        self, settings: TextSettings, key: PseudonymKey, analyzer: AnalyzerEngine, max_age: int
    ) -> None:
        from presidio_analyzer import BatchAnalyzerEngine

        self.settings = settings
        self.key = key
        self.analyzer = analyzer
        self.batch = BatchAnalyzerEngine(analyzer)
        self.max_age = max_age
        self.languages = frozenset(analyzer.supported_languages)
        self.stats = TextStats()
        self._cache: OrderedDict[bytes, tuple[Span, ...]] = OrderedDict()
        self._matchers: OrderedDict[int, TermMatcher] = OrderedDict()

    def start_run(self) -> None:
        """Forget the deny-lists of the last run (its patient ordinals mean other people now).

        The analysis cache stays: it depends only on the texts.
        """
        self._matchers.clear()

    def scrub(self, slots: list[TextSlot]) -> None:
        """Analyse, deny-list and replace every slot's text, writing the result back."""
        started = time.perf_counter()
        prepared = [self._prepare(slot) for slot in slots]
        found = self._analyse(prepared)
        for slot, (language, masked, tags, _), spans in zip(slots, prepared, found, strict=True):
            all_spans = [*spans, *self._deny(slot, masked)]
            merged = _merge([part for span in all_spans for part in _outside(span, tags)])
            self._write(slot, self._replace(slot.text, merged, slot.offset, language))
        self.stats.seconds += time.perf_counter() - started

    def _prepare(self, slot: TextSlot) -> _Prepared:
        language = (
            slot.language if slot.language in self.languages else self.settings.default_language
        )
        masked, tags = _blank_tags(slot.text) if slot.kind == "xhtml" else (slot.text, [])
        digest = hashlib.blake2b(f"{language}\x00{masked}".encode(), digest_size=16).digest()
        self.stats.elements += 1
        self.stats.characters += len(slot.text)
        return language, masked, tags, digest

    def _analyse(self, prepared: list[_Prepared]) -> list[tuple[Span, ...]]:
        """Presidio's findings for each prepared text: from the cache, or analysed in batches.

        With ``cacheSize: 0`` nothing is remembered and every text is analysed, duplicates
        included (the baseline the benchmark compares the cache against).
        """
        use_cache = self.settings.cache_size > 0
        known: dict[bytes, tuple[Span, ...]] = {}
        missing: dict[str, dict[bytes, str]] = {}
        uncached: list[int] = []
        for i, (language, masked, _, digest) in enumerate(prepared):
            if not use_cache:
                uncached.append(i)
            elif digest in known or digest in missing.get(language, {}):
                self.stats.cache_hits += 1
            elif digest in self._cache:
                self._cache.move_to_end(digest)
                known[digest] = self._cache[digest]
                self.stats.cache_hits += 1
            else:
                missing.setdefault(language, {})[digest] = masked
        if not use_cache:
            by_index: dict[int, tuple[Span, ...]] = {}
            for language in {prepared[i][0] for i in uncached}:
                indexes = [i for i in uncached if prepared[i][0] == language]
                for i, spans in zip(
                    indexes, self._run(language, [prepared[i][1] for i in indexes]), strict=True
                ):
                    by_index[i] = spans
            return [by_index[i] for i in range(len(prepared))]
        for language, texts in missing.items():
            digests = list(texts)
            for digest, spans in zip(
                digests, self._run(language, list(texts.values())), strict=True
            ):
                known[digest] = spans
                self._cache[digest] = spans
                if len(self._cache) > self.settings.cache_size:
                    self._cache.popitem(last=False)
        return [known[p[3]] for p in prepared]

    def _run(self, language: str, texts: list[str]) -> list[tuple[Span, ...]]:
        """Presidio on a batch of texts of one language (spaCy's nlp.pipe underneath)."""
        results = self.batch.analyze_iterator(
            texts,
            language=language,
            batch_size=self.settings.batch_size,
            score_threshold=self.settings.score_threshold,
        )
        self.stats.analysed += len(texts)
        return [
            tuple((r.start, r.end, r.entity_type, float(r.score)) for r in found)
            for found in results
        ]

    def _deny(self, slot: TextSlot, text: str) -> list[Span]:
        if slot.patient is None:
            return []
        matcher = self._matchers.get(slot.patient.ordinal)
        if matcher is None:
            # postal codes are 4-5 digits: shorter numbers count in the patient's own notes
            matcher = TermMatcher((*slot.patient.terms, *slot.patient.quasi_terms), min_number=4)
            self._matchers[slot.patient.ordinal] = matcher
            if len(self._matchers) > 10_000:
                self._matchers.popitem(last=False)
        found = [(start, end, term.entity, _DENY_SCORE) for start, end, term in matcher.find(text)]
        self.stats.deny_list_hits += len(found)
        return found

    def _replace(self, text: str, spans: list[Span], offset: int, language: str) -> str:
        out: list[str] = []
        position = 0
        for start, end, entity, _ in spans:
            out.append(text[position:start])
            out.append(self._replacement(text[start:end], entity, offset, language))
            position = end
        out.append(text[position:])
        return "".join(out)

    def _replacement(self, found: str, entity: str, offset: int, language: str) -> str:
        operator = self.settings.operator(entity)
        if operator == "keep":
            return found
        self.stats.entities[entity] += 1
        if operator == "dateShift":
            shifted = shift_date_text(found, offset, language, self.max_age)
            return shifted if shifted is not None else f"[{entity}]"
        if operator == "tag":
            return f"[{entity}]"
        normalised = " ".join(found.split()).casefold()
        return f"[{entity}_{self.key.hexdigest('text:' + entity, normalised, 10)}]"

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
