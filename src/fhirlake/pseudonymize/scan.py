"""The leak scan: does any output file, or the lake, still hold what identifies a patient?

It looks for, in every file of the output folder (including the text inside base64
attachments) and, with ``--lake``, in every string column of the lake's silver and gold
tables:

* every identifying string of every patient of the input (names, phones, e-mails, address
  lines, identifiers; ``truth.json`` strings for ``fhirlake synth`` inputs), without regard to
  case or accents ("DUPONT-LEFEVRE" for "Dupont-Lefèvre");
* every person the export names (patients, relatives, clinicians: practitioners included) as
  two parts of a name together, in any order, with initials ("DUPONT J.");
* with the key (which finds each resource's patient): the patient's birth date written in any
  format, and **date-offset leaks**: a raw date of the patient found verbatim beside the same
  date moved by the patient's offset, which reveals the offset and with it every date.

A name that is also an everyday word ("Hand", "Charles": a *weak* term) would flag every
mention of a hand or of the Charles River. It counts as a leak where it can only be the name:
as a whole JSON string (``"family": "Hand"``), and anywhere in that patient's own resources.

A hit is reported by file, line, entity type, the person's ordinal and a short hash of the
string: never the string itself, so the scan's own output leaks nothing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fhirlake.batch import Batch, BatchError, read_batch
from fhirlake.pseudonymize.dates import parse_date
from fhirlake.pseudonymize.errors import PseudonymizeError
from fhirlake.pseudonymize.keys import PseudonymKey
from fhirlake.pseudonymize.patients import CONTEXT_TYPES, PatientDirectory, compartment_patient
from fhirlake.pseudonymize.reader import discover, open_input, read_context, read_records
from fhirlake.pseudonymize.terms import Term, TermMatcher
from fhirlake.pseudonymize.textdates import find_dates_each

__all__ = [
    "Leak",
    "ScanContext",
    "ScanResult",
    "input_terms",
    "scan_context",
    "scan_output",
    "truth_terms",
    "with_attachments",
]

TRUTH_NAME = "truth.json"
_ISO_DATE = re.compile(rb'"(\d{4}-\d{2}-\d{2})')


@dataclass(frozen=True, slots=True)
class Leak:
    """One identifying string found in the output."""

    file: str
    line: int
    entity: str
    patient: int  # the person's ordinal in the input (a patient's, or a clinician's)
    digest: str  # first 12 hex digits of the string's SHA-256
    role: str = "patient"

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: {self.entity} of {self.role} #{self.patient} "
            f"(sha256 {self.digest}…)"
        )


@dataclass(slots=True)
class ScanResult:
    """What the scan looked at and what it found."""

    terms: int = 0
    patients: int = 0
    files: int = 0
    lines: int = 0
    attachments_decoded: int = 0
    own_patient_checked: bool = False
    tables: int = 0
    leaks: list[Leak] = field(default_factory=list)


@dataclass(slots=True)
class ScanContext:
    """What the scan looks for, read from the raw input once."""

    directory: PatientDirectory
    terms: list[Term]
    patient_ids: dict[str, int]  # original patient id -> ordinal
    dates: dict[int, set[dt.date]] = field(default_factory=dict)  # raw dates per patient
    max_shift_days: int = 180


def input_terms(input_path: Path | Batch) -> tuple[PatientDirectory, list[Term], dict[str, int]]:
    """The identifying terms of every Patient under ``input_path``, and their ids by ordinal."""
    context = scan_context(input_path, dates=False)
    return context.directory, context.terms, context.patient_ids


def scan_context(input_path: Path | Batch, *, dates: bool = True, max_shift_days: int = 180) -> ScanContext:
    """Everything the scan looks for: patients, everyone named, and each patient's raw dates.

    ``input_path`` is the raw batch the output was made from (or its folder or file).
    Raw dates are every ``YYYY-MM-DD`` in a patient's input resources (structured dates, and
    dates in their notes), which is what a date-offset leak would show verbatim.
    """
    from fhirlake.pseudonymize.pipeline import stop_words

    directory = PatientDirectory(stop_words())
    ids: dict[str, int] = {}
    sources = discover(input_path)
    for source in sources:
        for resource in read_context(source, CONTEXT_TYPES):
            directory.add_context(resource)
            if resource.get("resourceType") == "Patient":
                info = directory.get(resource.get("id"))
                if info is not None:
                    ids[resource["id"]] = info.ordinal
    directory.finish()
    terms = [*directory.all_terms(), *directory.clinician_terms]
    context = ScanContext(directory, terms, ids, max_shift_days=max_shift_days)
    if dates:
        for source in sources:
            for _, raw in read_records(source):
                _collect_dates(raw, context)
    return context


def _collect_dates(raw: bytes, context: ScanContext) -> None:
    found = _ISO_DATE.findall(raw)
    if not found and b'"data"' not in raw:
        return
    try:
        resource = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return
    owner = (
        context.patient_ids.get(compartment_patient(resource) or "")
        if isinstance(resource, dict)
        else None
    )
    if owner is None:
        return
    bucket = context.dates.setdefault(owner, set())
    for value in found:
        try:
            bucket.add(parse_date(value.decode())[0])
        except ValueError:
            continue
    for text in _decoded_attachments(resource):
        for dates in find_dates_each(text, ("en", "fr")).values():
            bucket.update(v for d in dates if (v := d.value()) and d.day)


def truth_terms(path: Path, directory: PatientDirectory) -> list[Term]:
    """The direct identifiers listed in a ``fhirlake synth`` truth file.

    Each record's ``direct`` strings become terms of the patient its ``patient`` reference
    names (the same ordinal as in the input), or of a new ordinal past the input's patients.
    """
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise PseudonymizeError(f"{path}: cannot read the truth file ({exc})") from None
    records = document.get("records") if isinstance(document, dict) else None
    if not isinstance(records, list):
        raise PseudonymizeError(f"{path}: expected an object with a 'records' array")
    terms: list[Term] = []
    extra = len(directory)
    for i, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("direct"), dict):
            raise PseudonymizeError(
                f"{path}: /records/{i}: expected an object with 'direct' strings"
            )
        reference = record.get("patient")
        patient_id = reference.rsplit("/", 1)[-1] if isinstance(reference, str) else None
        known = directory.get(patient_id)
        if known is None:
            extra += 1
        owner = known.ordinal if known is not None else extra
        for name, value in record["direct"].items():
            for text in value if isinstance(value, list) else [value]:
                if isinstance(text, str) and text.strip():
                    terms.append(Term(str(name).upper(), text, owner))
    return terms


def _decoded_attachments(value: Any) -> Iterator[str]:
    """The text of every base64 ``data`` string inside a parsed resource."""
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "data" and isinstance(child, str):
                try:
                    yield base64.b64decode(child, validate=True).decode("utf-8")
                except (binascii.Error, ValueError):
                    continue
            elif isinstance(child, dict | list):
                yield from _decoded_attachments(child)
    elif isinstance(value, list):
        for item in value:
            yield from _decoded_attachments(item)


def with_attachments(value: str) -> list[str]:
    """A string, and the text of the base64 attachments inside it if it is a JSON resource."""
    if '"data"' not in value or not value.startswith("{"):
        return [value]
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return [value]
    return [value, *_decoded_attachments(parsed)]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


_JSON_WORD = re.compile(r'"(\w+)"')
# (entity, ordinal, digest, role)
_Hit = tuple[str, int, str, str]


class Scanner:
    """Finds leaks in units of text (an output line, a lake row) of a known or unknown patient.

    ``owners`` maps each patient's pseudonymous id to their ordinal (empty without the key):
    with it, weak names are sought in the patient's own resources, and so are birth dates and
    date-offset leaks.
    """

    def __init__(
        self,
        terms: list[Term],
        context: ScanContext | None,
        key: PseudonymKey | None,
        patient_ids: dict[str, int],
    ) -> None:
        self.context = context
        self.strong = TermMatcher(t for t in terms if not t.weak)
        self.whole: dict[str, list[Term]] = {}
        by_owner: dict[int, list[Term]] = {}
        for term in terms:
            if term.weak:
                self.whole.setdefault(term.text.strip().casefold(), []).append(term)
                if term.role == "patient":
                    by_owner.setdefault(term.owner, []).append(term)
        self.own = {owner: TermMatcher(found) for owner, found in by_owner.items()}
        self.owners = {key.resource_id(pid): n for pid, n in patient_ids.items()} if key else {}
        self.offsets: dict[int, int] = {}
        self.births: dict[int, dt.date] = {}
        if key is not None and context is not None:
            for pid, n in patient_ids.items():
                self.offsets[n] = key.day_offset(pid, context.max_shift_days)
                info = context.directory.get(pid)
                if info is not None and info.birth_date and len(info.birth_date) >= 10:
                    with contextlib.suppress(ValueError):
                        self.births[n] = parse_date(info.birth_date[:10])[0]

    def owner_of(self, resource: Any) -> int | None:
        """The ordinal of a parsed output resource's patient (needs the key)."""
        if not self.owners or not isinstance(resource, dict):
            return None
        return self.owners.get(compartment_patient(resource) or "")

    def scan(self, texts: list[str], owner: int | None, json_line: str | None = None) -> set[_Hit]:
        """Every leak in these texts (one unit); ``json_line`` also checks whole JSON values."""
        hits = {
            (t.entity, t.owner, _digest(t.text), t.role)
            for x in texts
            for *_, t in self.strong.find(x)
        }
        if json_line is not None:
            for word in _JSON_WORD.findall(json_line):
                hits.update(
                    (t.entity, t.owner, _digest(t.text), t.role)
                    for t in self.whole.get(word.casefold(), ())
                )
        own = self.own.get(owner) if owner is not None else None
        if own is not None:
            hits.update(
                (t.entity, t.owner, _digest(t.text), t.role) for x in texts for *_, t in own.find(x)
            )
        if self.context is not None:
            persons = self.context.directory.persons
            for text in texts:
                for start, end, person in persons.find(text, None, strict=True):
                    hits.add(("PERSON", person.owner, _digest(text[start:end]), person.role))
                if owner is None:
                    continue
                # in the patient's own resources, one part of their (or a relative's) name
                # alone is theirs too: "LEFEVRE" for Dupont-Lefèvre
                for start, end, person in persons.find(text, owner):
                    if person.owner == owner and person.role != "clinician":
                        hits.add(("PERSON", owner, _digest(text[start:end]), person.role))
            if owner is not None:
                hits.update(self._dates(texts, owner))
        return hits

    def _dates(self, texts: list[str], owner: int) -> set[_Hit]:
        """Birth dates and date-offset leaks in the free text of a patient's unit.

        Structured dates (a JSON value that is a date) are all shifted by the rules, and a
        shifted one may land on another raw date of the patient by chance: they count only as
        the shifted half of a pair, never as the raw half or as a birth date.
        """
        # where each date was read (text, start): one ambiguous string ("04/09/2022") reads as
        # two dates, and its two readings must not pair up as a raw date beside its shifted one
        found: dict[dt.date, set[tuple[int, int]]] = {}
        in_text: dict[dt.date, set[tuple[int, int]]] = {}
        for number, text in enumerate(texts):
            for dates in find_dates_each(text, ("en", "fr")).values():
                for date in dates:
                    value = date.value() if date.day else None
                    if value is None:
                        continue
                    found.setdefault(value, set()).add((number, date.start))
                    if date.start == 0 or text[date.start - 1] != '"':
                        in_text.setdefault(value, set()).add((number, date.start))
        if not in_text:
            return set()
        hits: set[_Hit] = set()
        birth = self.births.get(owner)
        if birth is not None and birth in in_text:
            hits.add(("BIRTH_DATE", owner, _digest(birth.isoformat()), "patient"))
        assert self.context is not None
        raw = self.context.dates.get(owner, set())
        offset = self.offsets.get(owner)
        if offset:
            shift = dt.timedelta(days=offset)
            # a string one of whose readings is a raw date correctly shifted is that shifted date:
            # its other reading ("04/09/2022" read month-first) is no raw date left behind
            shifted = {day + shift for day in raw}
            explained = {place for day in found.keys() & shifted for place in found[day]}
            for day in in_text.keys() & raw:
                if (in_text[day] - explained) and found.get(day + shift, set()) - in_text[day]:
                    hits.add(("DATE_OFFSET", owner, _digest(day.isoformat()), "patient"))
        return hits


def scan_output(
    output_dir: Path,
    terms: list[Term] | None = None,
    *,
    key: PseudonymKey | None = None,
    patient_ids: dict[str, int] | None = None,
    context: ScanContext | None = None,
) -> ScanResult:
    """Search every file of ``output_dir`` for every term (and, with ``context``, every person,
    birth date and date-offset leak).

    With ``key`` and the input's ``patient_ids`` (original id → ordinal), weak terms are also
    looked for anywhere in their own patient's resources, and dates are checked.
    """
    if not output_dir.is_dir():
        raise PseudonymizeError(f"{output_dir}: no such output folder")
    try:
        read_batch(output_dir)  # a file under a name no stage reads is refused here as everywhere
    except BatchError as exc:
        raise PseudonymizeError(str(exc)) from None
    if terms is None:
        terms = context.terms if context is not None else []
    if patient_ids is None and context is not None:
        patient_ids = context.patient_ids
    scanner = Scanner(terms, context, key, patient_ids or {})
    result = ScanResult(
        terms=len(terms),
        patients=len({t.owner for t in terms if t.role == "patient"}),
        own_patient_checked=bool(scanner.owners),
    )
    for path in sorted(p for p in output_dir.rglob("*") if p.is_file()):
        result.files += 1
        name = str(path.relative_to(output_dir))
        with open_input(path) as handle:  # compressed files are read as what they hold
            for number, raw in enumerate(handle, start=1):
                result.lines += 1
                found = _scan_line(raw, scanner, result)
                result.leaks.extend(Leak(name, number, e, o, d, r) for e, o, d, r in sorted(found))
    return result


def _scan_line(raw: bytes, scanner: Scanner, result: ScanResult) -> set[_Hit]:
    line = raw.decode("utf-8", errors="replace")
    texts = [line]
    resource: Any = None
    if scanner.owners or '"data"' in line:
        try:
            resource = orjson.loads(raw)
        except orjson.JSONDecodeError:
            resource = None
    if resource is not None and '"data"' in line:
        attachments = list(_decoded_attachments(resource))
        result.attachments_decoded += len(attachments)
        texts.extend(attachments)
    return scanner.scan(texts, scanner.owner_of(resource), json_line=line)
