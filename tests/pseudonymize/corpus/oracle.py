"""What a perfect de-identifier would write, from the labels: a clean reference output.

:func:`redact` rewrites one note: names, identifiers, phones, e-mails and addresses become
tags, dates move by the patient's offset in their own format, birth dates keep the year of the
shifted date (as structured birthDate does). :func:`write_oracle` puts such notes into a copy
of a pseudonymised export, so that a scanner can be tried on an output known to be clean, then
on the same output with one planted leak.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import re
import shutil
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from . import dates as D
from .labels import NoteLabels
from .scoring import marker_of, offset_of

TAGS = {"NAME": "[NAME]", "ID": "[ID]", "PHONE": "[PHONE]", "EMAIL": "[EMAIL]",
        "ADDRESS": "[ADDRESS]"}

_DATE_VALUE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def redact(note: NoteLabels, offset: int, *, avoid: set[dt.date] | frozenset[dt.date] = frozenset(),
           override: Mapping[int, str] | None = None) -> str:
    """The note as a perfect de-identifier would write it.

    ``avoid``: dates a shifted date must not fall on (the patient's raw dates: a shifted date
    equal to one of them is written ``[DATE]``, since no scanner can tell it from a leak;
    for a date without a year, the same day and month).
    ``override``: span index -> text to write instead (to plant a leak).
    """
    override = override or {}
    delta = dt.timedelta(days=offset)
    avoid_dm = {(d.month, d.day) for d in avoid}
    out, last = [], 0
    for i, s in enumerate(note.spans):
        out.append(note.text[last:s.start])
        last = s.end
        if i in override:
            out.append(override[i])
        elif s.label == "DATE":
            date = dt.date.fromisoformat(s.date or "")
            shifted = date + delta
            partial_clash = s.format in ("dm_no_year", "md_no_year") and (
                (shifted.month, shifted.day) in avoid_dm)
            if shifted in avoid or partial_clash:
                out.append("[DATE]")
            else:
                out.append(D.render(shifted, s.format or "iso", note.language))
        elif s.label == "BIRTH_DATE":
            out.append(str((dt.date.fromisoformat(s.date or note.birth_date) + delta).year))
        else:
            out.append(TAGS[s.label])
    out.append(note.text[last:])
    return "".join(out)


def raw_dates(input_dir: Path) -> dict[str, set[dt.date]]:
    """Every calendar date in the raw export, by patient id (from subject/patient references
    and the Patient itself)."""
    found: dict[str, set[dt.date]] = defaultdict(set)

    def walk(value: Any, into: set[dt.date]) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v, into)
        elif isinstance(value, list):
            for v in value:
                walk(v, into)
        elif isinstance(value, str) and _DATE_VALUE.match(value):
            with contextlib.suppress(ValueError):
                into.add(dt.date.fromisoformat(value[:10]))

    for path in sorted(Path(input_dir).glob("*.ndjson")):
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            resource = orjson.loads(line)
            if resource.get("resourceType") == "Patient":
                pid = resource["id"]
            else:
                ref = (resource.get("subject") or resource.get("patient") or {}).get(
                    "reference", "")
                if not ref.startswith("Patient/"):
                    continue
                pid = ref.split("/", 1)[1]
            walk(resource, found[pid])
    return found


def write_oracle(labels: Iterable[NoteLabels], pseudonymised_dir: Path, input_dir: Path,
                 out_dir: Path,
                 plant: Mapping[str, Mapping[int, str]] | None = None,
                 append: Mapping[str, str] | None = None) -> Path:
    """Copy ``pseudonymised_dir`` to ``out_dir`` with every note replaced by :func:`redact`.

    The offset of each note is measured on the pseudonymised DocumentReference.date.
    ``plant``: marker -> {span index -> text} written instead of the redaction; ``append``:
    marker -> text added at the end of that note. Returns ``out_dir``.
    """
    plant = plant or {}
    append = append or {}
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(pseudonymised_dir, out_dir)
    labels = list(labels)
    # the patient's raw dates: structured, and those its raw notes write (a scanner that
    # reads the raw notes may rightly take a shifted date that lands on one of them for a leak)
    avoid = raw_dates(input_dir)
    for note in labels:
        avoid[note.patient_id] |= {dt.date.fromisoformat(s.date) for s in note.spans if s.date}
    replaced: dict[int, bytes] = {}
    docs_path = out_dir / "DocumentReference.ndjson"
    lines = docs_path.read_bytes().splitlines()
    by_marker = {n.marker: n for n in labels}
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        doc = orjson.loads(line)
        marker = marker_of(doc)
        if marker not in by_marker:
            continue
        note = by_marker[marker]
        offset = offset_of(note, doc)
        if offset is None:
            raise ValueError(f"note {marker}: no shifted DocumentReference.date to measure on")
        text = redact(note, offset, avoid=avoid.get(note.patient_id, set()),
                      override=plant.get(marker)) + append.get(marker, "")
        doc["content"][0]["attachment"]["data"] = base64.b64encode(text.encode()).decode()
        replaced[i] = orjson.dumps(doc)
    docs_path.write_bytes(b"".join(replaced.get(i, line) + b"\n"
                                   for i, line in enumerate(lines) if line.strip()))
    return out_dir
