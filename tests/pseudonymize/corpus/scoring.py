"""``score``: how well a pseudonymised export of the corpus hides what the labels say it holds.

Definitions (all matching is case- and accent-insensitive, on whole words, unless "verbatim"):

* a labelled span is **caught** when its surface text no longer appears in the output note
  (and, for a name, no token of it of 3+ letters does). A date's surface that is still there
  counts as caught only as often as the note's correctly shifted dates explain it (a date
  shifted onto another date of the note writes that other date's text);
* a **date is consistent** when the output holds it shifted by the patient's offset, written
  in the same format (:func:`dates.shifted_renderings`). The offset is measured on the note's
  own structured date (DocumentReference.date, output minus input);
* a **birth date is reduced to the year** when it is caught, no shifted rendering of it is in
  the output, and its year is (as written, or of the shifted date, as structured birthDate);
* the **precision estimate** is the share of word tokens (2+ letters) outside every labelled
  span and clinical term that are still in the output, unchanged (multiset);
* a **clinical term is damaged** when the output holds fewer verbatim copies of it than the
  input did (counted per note and term text, up to its labelled instances).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from . import dates as D
from .generate import MARKER_SYSTEM
from .labels import ENTITY_LABELS, NoteLabels, Span
from .people import fold, fold_words

_WORD = re.compile(r"[^\W\d_]{2,}")


@dataclass
class SpanResult:
    span: Span
    caught: bool
    consistent: bool | None = None  # DATE: shifted by the offset, same format (None: no offset)
    year_only: bool | None = None  # BIRTH_DATE: only the year is left
    leaked_tokens: list[str] = field(default_factory=list)  # NAME: folded tokens still there


@dataclass
class NoteResult:
    labels: NoteLabels
    output: str | None  # None: the note was not found in the output
    offset: int | None  # days, output minus input, from DocumentReference.date
    spans: list[SpanResult]
    terms: dict[str, tuple[int, int]]  # source -> (instances, damaged)
    tokens: tuple[int, int]  # (non-labelled tokens, kept unchanged)


def occurrences(needle: str, folded_haystack: str) -> int:
    """Whole-word occurrences of ``needle`` in an already folded text."""
    n = fold(needle).strip()
    if not n:
        return 0
    return len(re.findall(rf"(?<!\w){re.escape(n)}(?!\w)", folded_haystack))


def _read_output(output_dir: Path) -> list[dict[str, Any]]:
    path = Path(output_dir) / "DocumentReference.ndjson"
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def marker_of(doc: dict[str, Any]) -> str | None:
    """The corpus marker of a DocumentReference (its category coding), if it has one."""
    for element in ("category", "type"):
        value = doc.get(element)
        for concept in value if isinstance(value, list) else [value] if value else []:
            for coding in concept.get("coding", []):
                if coding.get("system") == MARKER_SYSTEM:
                    return str(coding.get("code"))
    return None


def note_text(doc: dict[str, Any]) -> str:
    """The UTF-8 text of a DocumentReference's first attachment ("" when there is none)."""
    try:
        data = doc["content"][0]["attachment"]["data"]
    except (KeyError, IndexError, TypeError):
        return ""
    try:
        return base64.b64decode(data).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return ""


def _day(value: Any) -> dt.date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def match_outputs(labels: Iterable[NoteLabels | dict[str, Any]],
                  output_dir: Path) -> list[tuple[NoteLabels, dict[str, Any] | None]]:
    """Each note's labels with its pseudonymised DocumentReference (None when absent).

    Notes are found by the marker code in DocumentReference.category; when no output
    document has a marker, by position (if the counts agree)."""
    notes = [n if isinstance(n, NoteLabels) else NoteLabels.from_dict(n) for n in labels]
    docs = _read_output(output_dir)
    by_marker = {m: d for d in docs if (m := marker_of(d)) is not None}
    if by_marker:
        return [(n, by_marker.get(n.marker)) for n in notes]
    if len(docs) == len(notes):
        return list(zip(notes, docs, strict=True))
    return [(n, None) for n in notes]


def offset_of(note: NoteLabels, doc: dict[str, Any] | None) -> int | None:
    """The patient's date offset in days, as this note's structured date shows it."""
    if doc is None:
        return None
    shifted = _day(doc.get("date")) or _day((doc.get("context") or {}).get("period", {})
                                             .get("start"))
    if shifted is None:
        return None
    return (shifted - dt.date.fromisoformat(note.note_date)).days


def _expected(span: Span, lang: str, offset: int | None) -> set[str]:
    if offset is None or span.date is None or span.format is None:
        return set()
    return D.shifted_renderings(dt.date.fromisoformat(span.date), span.format, lang, offset)


def evaluate_note(note: NoteLabels, doc: dict[str, Any] | None) -> NoteResult:
    """Every measurement of one note (see the module docstring)."""
    offset = offset_of(note, doc)
    output = note_text(doc) if doc is not None else None
    out = output or ""
    folded = fold(out)
    lang = note.language
    expected = {id(s): _expected(s, lang, offset) for s in note.spans if s.label == "DATE"}

    results = []
    for s in note.spans:
        present = occurrences(s.text, folded)
        if s.label == "NAME":
            leaked = sorted({t for t in fold_words(s.text)
                             if len(t) >= 3 and occurrences(t, folded)})
            results.append(SpanResult(s, caught=present == 0 and not leaked,
                                      leaked_tokens=leaked))
        elif s.label == "DATE":
            explained = sum(max((occurrences(s.text, fold(e)) for e in exp), default=0)
                            for exp in expected.values())
            mine = expected[id(s)]
            consistent = (any(occurrences(e, folded) for e in mine) if mine else None)
            results.append(SpanResult(s, caught=present <= explained, consistent=consistent))
        elif s.label == "BIRTH_DATE":
            birth = dt.date.fromisoformat(s.date or note.birth_date)
            shifted = D.shifted_renderings(birth, s.format or "iso", lang, offset or 0)
            kept_full = any(occurrences(e, folded) for e in shifted)
            # the year as written, or the year of the shifted date (structured birthDate's way)
            years = {birth.year} | ({(birth + dt.timedelta(days=offset)).year}
                                    if offset is not None else set())
            year = any(occurrences(str(y), folded) for y in years)
            results.append(SpanResult(s, caught=present == 0,
                                      year_only=present == 0 and not kept_full and year))
        else:
            results.append(SpanResult(s, caught=present == 0))

    # clinical terms
    terms: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_text: dict[str, list[str]] = defaultdict(list)
    for t in note.clinical_terms:
        by_text[t.text].append(t.source)
    for text, sources in by_text.items():
        lost = max(0, note.text.count(text) - out.count(text))
        damaged = min(len(sources), lost)
        for i, source in enumerate(sources):
            terms[source][0] += 1
            terms[source][1] += 1 if i < damaged else 0

    # precision estimate
    blank = list(note.text)
    for region in [*note.spans, *note.clinical_terms]:
        blank[region.start:region.end] = " " * (region.end - region.start)
    before = Counter(_WORD.findall("".join(blank)))
    after = Counter(_WORD.findall(out))
    kept = sum(min(c, after[w]) for w, c in before.items())
    return NoteResult(note, output, offset, results,
                      {k: (v[0], v[1]) for k, v in terms.items()},
                      (sum(before.values()), kept))


def evaluate(labels: Iterable[NoteLabels | dict[str, Any]], output_dir: Path) -> list[NoteResult]:
    """:func:`evaluate_note` for every note of ``labels`` against ``output_dir``."""
    return [evaluate_note(n, d) for n, d in match_outputs(labels, output_dir)]


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _bucket() -> dict[str, int]:
    return {"n": 0, "caught": 0}


def summarize(results: list[NoteResult]) -> dict[str, Any]:
    """Aggregate :func:`evaluate` results per language (see :func:`score`)."""
    out: dict[str, Any] = {}
    for lang in sorted({r.labels.language for r in results}):
        mine = [r for r in results if r.labels.language == lang]
        recall: dict[str, dict[str, int]] = {label: _bucket() for label in ENTITY_LABELS}
        variants: dict[str, dict[str, dict[str, int]]] = {label: defaultdict(_bucket)
                                                          for label in ENTITY_LABELS}
        date_formats: dict[str, dict[str, int]] = defaultdict(
            lambda: {"n": 0, "caught": 0, "measured": 0, "consistent": 0})
        birth_formats: dict[str, dict[str, int]] = defaultdict(
            lambda: {"n": 0, "caught": 0, "year_only": 0})
        terms: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        tokens = [0, 0]
        offsets: dict[str, set[int]] = defaultdict(set)
        for r in mine:
            if r.offset is not None:
                offsets[r.labels.patient_id].add(r.offset)
            for sr in r.spans:
                s = sr.span
                recall[s.label]["n"] += 1
                recall[s.label]["caught"] += sr.caught
                key = {"NAME": f"{s.role}:{s.variant}", "DATE": s.format,
                       "BIRTH_DATE": s.format}.get(s.label, s.variant or s.label.lower())
                variants[s.label][str(key)]["n"] += 1
                variants[s.label][str(key)]["caught"] += sr.caught
                if s.label == "DATE":
                    b = date_formats[str(s.format)]
                    b["n"] += 1
                    b["caught"] += sr.caught
                    if sr.consistent is not None:
                        b["measured"] += 1
                        b["consistent"] += sr.consistent
                if s.label == "BIRTH_DATE":
                    bb = birth_formats[str(s.format)]
                    bb["n"] += 1
                    bb["caught"] += sr.caught
                    bb["year_only"] += bool(sr.year_only)
            for source, (n, damaged) in r.terms.items():
                terms[source][0] += n
                terms[source][1] += damaged
            tokens[0] += r.tokens[0]
            tokens[1] += r.tokens[1]
        total_terms = sum(v[0] for v in terms.values())
        total_damaged = sum(v[1] for v in terms.values())
        measured = sum(b["measured"] for b in date_formats.values())
        consistent = sum(b["consistent"] for b in date_formats.values())
        births = sum(b["n"] for b in birth_formats.values())
        year_only = sum(b["year_only"] for b in birth_formats.values())
        out[lang] = {
            "notes": len(mine),
            "notes_matched": sum(r.output is not None for r in mine),
            "recall": {label: {**b, "recall": _ratio(b["caught"], b["n"])}
                       for label, b in recall.items()},
            "recall_by_variant": {
                label: {k: {**b, "recall": _ratio(b["caught"], b["n"])}
                        for k, b in sorted(v.items())}
                for label, v in variants.items()},
            "precision": {"tokens": tokens[0], "kept": tokens[1],
                          "estimate": _ratio(tokens[1], tokens[0])},
            "clinical_terms": {
                "n": total_terms, "damaged": total_damaged,
                "damaged_share": _ratio(total_damaged, total_terms),
                "by_source": {k: {"n": v[0], "damaged": v[1],
                                  "damaged_share": _ratio(v[1], v[0])}
                              for k, v in sorted(terms.items())}},
            "dates": {
                "n": sum(b["n"] for b in date_formats.values()), "measured": measured,
                "consistent": consistent, "consistent_share": _ratio(consistent, measured),
                "by_format": {k: {**b, "consistent_share": _ratio(b["consistent"], b["measured"])}
                              for k, b in sorted(date_formats.items())}},
            "birth_dates": {
                "n": births, "year_only": year_only,
                "year_only_share": _ratio(year_only, births),
                "by_format": dict(sorted(birth_formats.items()))},
            "offsets": {
                "notes_measured": sum(r.offset is not None for r in mine),
                "patients": len(offsets),
                "patients_inconsistent": sum(len(v) > 1 for v in offsets.values())},
        }
    return out


def score(labels: Iterable[NoteLabels | dict[str, Any]], output_dir: Path) -> dict[str, Any]:
    """Score the pseudonymised export in ``output_dir`` against the corpus ``labels``.

    Returns ``{language: {...}}`` with, per language: ``notes``/``notes_matched``;
    ``recall[LABEL] = {n, caught, recall}`` per entity type and ``recall_by_variant[LABEL]``
    (names by ``role:variant``, dates by format, ids by shape, phones by format, addresses by
    part); ``precision = {tokens, kept, estimate}``; ``clinical_terms = {n, damaged,
    damaged_share, by_source}``; ``dates = {n, measured, consistent, consistent_share,
    by_format}``; ``birth_dates = {n, year_only, year_only_share, by_format}``;
    ``offsets = {notes_measured, patients, patients_inconsistent}``. Ratios are None when
    their denominator is 0.
    """
    return summarize(evaluate(labels, output_dir))
