"""The clinical allow-list: words NER must not take for persons or places.

Built per export from its own coded displays (``code.display`` and ``code.text`` of
Condition, Medication*, Observation, Procedure, AllergyIntolerance, Immunization…) plus
``anonymization/clinical-terms.yaml`` (section headings, drug names, abbreviations, in English
and French). A span NER found is kept when it is exactly an allow-listed term, or when every
word of it is a word of one ("Holter ECG", "insulin isophane", "# Social History"); a name of
the export or a pattern (phone, identifier, date) is replaced all the same.

>>> vocab = ClinicalVocabulary()
>>> vocab.add_terms(["Diabète de type 2", "Metformine 1000 mg"])
>>> vocab.allows("DIABETE"), vocab.allows("Metformine"), vocab.allows("Jean Dupont")
(True, True, False)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from fhirlake.pseudonymize.errors import PolicyError
from fhirlake.pseudonymize.persons import normalise
from fhirlake.pseudonymize.terms import Term, TermMatcher

__all__ = ["CLINICAL_TYPES", "ClinicalVocabulary", "coded_texts"]

_WORD = re.compile(r"[^\W\d_]+")
# Resources whose codes name clinical things, and the elements holding those codes
CLINICAL_TYPES = frozenset(
    {
        "Condition",
        "Medication",
        "MedicationRequest",
        "MedicationStatement",
        "MedicationAdministration",
        "MedicationDispense",
        "Observation",
        "Procedure",
        "AllergyIntolerance",
        "Immunization",
        "DiagnosticReport",
        "CarePlan",
        "Encounter",
        "ServiceRequest",
    }
)
_CODED = (
    "code",
    "medicationCodeableConcept",
    "vaccineCode",
    "reasonCode",
    "valueCodeableConcept",
    "category",
    "type",
    "bodySite",
)
_SECTIONS = ("headings", "drugs", "abbreviations", "tests")
# Words too short or too common to vouch for a span on their own
_MIN_WORD = 3


def coded_texts(resource: dict[str, Any]) -> Iterator[str]:
    """The display and text strings of a clinical resource's codes (and its components')."""
    for key in _CODED:
        yield from _concept_texts(resource.get(key))
    for component in resource.get("component") or ():
        if isinstance(component, dict):
            yield from _concept_texts(component.get("code"))
    for activity in resource.get("activity") or ():
        if isinstance(activity, dict) and isinstance(activity.get("detail"), dict):
            yield from _concept_texts(activity["detail"].get("code"))


def _concept_texts(value: Any) -> Iterator[str]:
    for concept in value if isinstance(value, list) else [value]:
        if not isinstance(concept, dict):
            continue
        if isinstance(concept.get("text"), str):
            yield concept["text"]
        for coding in concept.get("coding") or ():
            if isinstance(coding, dict) and isinstance(coding.get("display"), str):
                yield coding["display"]


class ClinicalVocabulary:
    """Clinical terms and their words, compared without case or accents."""

    def __init__(self, stop_words: Iterable[str] = ()) -> None:
        self.terms: set[str] = set()
        self.words: set[str] = set()
        self._stop = frozenset(normalise(w) for w in stop_words)
        self._originals: list[str] = []
        self._matcher: TermMatcher | None = None

    def __len__(self) -> int:
        return len(self.terms)

    def add_terms(self, terms: Iterable[str]) -> None:
        """Allow these terms, and each of their words that is long and not a stop word."""
        for term in terms:
            words = [normalise(w) for w in _WORD.findall(term)]
            if not words:
                continue
            joined = " ".join(words)
            if joined not in self.terms:
                self._originals.append(term)
                self._matcher = None
            self.terms.add(joined)
            self.words.update(w for w in words if len(w) >= _MIN_WORD and w not in self._stop)

    def find(self, text: str) -> list[tuple[int, int]]:
        """Where the text holds a clinical term (longest first, whole words only)."""
        if self._matcher is None:
            self._matcher = TermMatcher(
                (Term("CLINICAL", t, 0) for t in self._originals), min_number=1_000
            )
        return [(start, end) for start, end, _ in self._matcher.find(text)]

    def allows(self, span: str) -> bool:
        """Whether a span NER found is clinical vocabulary (and so is kept)."""
        words = [normalise(w) for w in _WORD.findall(span)]
        if not words:
            return False
        if " ".join(words) in self.terms:
            return True
        meaningful = [w for w in words if w not in self._stop]
        return bool(meaningful) and all(w in self.words for w in meaningful)

    def load(self, path: Path) -> None:
        """Add the headings, drugs and abbreviations of a ``clinical-terms.yaml`` file."""
        where = str(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise PolicyError(where, "", f"cannot read the clinical terms ({exc})") from None
        if not isinstance(raw, dict) or raw.get("version") != 1:
            raise PolicyError(where, "/version", "expected a mapping with version: 1")
        for section in _SECTIONS:
            value = raw.get(section, [])
            lists = value.items() if isinstance(value, dict) else [("", value)]
            for language, terms in lists:
                pointer = f"/{section}/{language}" if language else f"/{section}"
                if not isinstance(terms, list) or not all(isinstance(t, str) and t for t in terms):
                    raise PolicyError(where, pointer, "expected a list of non-empty strings")
                self.add_terms(terms)
        unknown = set(raw) - {"version", *_SECTIONS}
        if unknown:
            raise PolicyError(where, f"/{sorted(unknown)[0]}", "unknown section")
