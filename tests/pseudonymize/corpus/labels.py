"""What the corpus knows about each note: the text, its labelled spans and its clinical terms."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

ENTITY_LABELS = ("NAME", "DATE", "BIRTH_DATE", "ID", "PHONE", "EMAIL", "ADDRESS")


@dataclass
class Span:
    start: int
    end: int
    label: str  # one of ENTITY_LABELS
    text: str
    date: str | None = None  # ISO calendar date, for DATE and BIRTH_DATE
    format: str | None = None  # date format id (see dates.py), for DATE and BIRTH_DATE
    variant: str | None = None  # name variant, id shape, phone format, address part
    role: str | None = None  # whose: patient | relative | clinician | other
    reference: str | None = None  # the resource that holds it ("Patient/…"), if any
    person: str | None = None  # who, within the note: P, R1, R2, C1-C3, O1, O2


@dataclass
class Term:
    start: int
    end: int
    text: str
    source: str  # coded | heading | drug | test | age


@dataclass
class NoteLabels:
    resource_id: str  # DocumentReference.id in the input
    patient_id: str
    language: str  # fr | en
    locale: str  # fr_FR | en_US | en_GB
    template: str
    marker: str  # DocumentReference.category code: finds the note again after pseudonymisation
    note_date: str  # DocumentReference.date in the input (ISO date)
    birth_date: str  # Patient.birthDate in the input
    patient_has_language: bool  # Patient.communication set
    text: str
    spans: list[Span] = field(default_factory=list)
    clinical_terms: list[Term] = field(default_factory=list)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoteLabels:
        data = dict(data)
        data["spans"] = [Span(**s) for s in data.get("spans", [])]
        data["clinical_terms"] = [Term(**t) for t in data.get("clinical_terms", [])]
        return cls(**data)


def read_labels(path: Path) -> list[NoteLabels]:
    """The labels a :func:`write_corpus` call wrote (``labels.jsonl``, or its folder)."""
    if path.is_dir():
        path = path / "labels.jsonl"
    return [NoteLabels.from_dict(orjson.loads(line))
            for line in path.read_bytes().splitlines() if line.strip()]
