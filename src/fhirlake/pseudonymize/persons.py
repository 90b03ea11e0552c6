"""Every person an export names, and a matcher that finds them in text however written.

Clinicians sign every note and relatives are named in many, yet NER misses them often (the
French model tags "Dr Marie Martin" as MISC). The export itself says who they are: each
Patient's names (all uses, maiden names, contacts), RelatedPerson, Practitioner. This module
gathers them into one index per export and finds them in a text

* case-, accent- and hyphen-insensitively: "DUPONT-LEFEVRE", "dupont lefèvre";
* in any word order, with initials: "J. Dupont", "DUPONT J.", "Dupont Jean";
* a single word alone ("Dupont", "Jean") only for the people close to the note (its patient,
  the patient's relatives, the clinicians), only capitalised (or holding digits, as
  Synthea's "Carolee951" does), and not when it is a common word of the language; for anyone
  else, two parts of the name must appear together. A name wins over the clinical allow-list:
  a clinician called Parkinson is replaced even where the disease would be kept.

>>> index = PersonIndex()
>>> index.add(Person("patient", 1, ("Jean",), ("Dupont-Lefèvre",)))
>>> index.add(Person("clinician", 1, ("Marie",), ("Martin",)))
>>> text = "M. DUPONT-LEFEVRE J. vu par MARTIN; Jean va bien."
>>> [text[s:e] for s, e, _ in index.find(text, patient=1)]
['DUPONT-LEFEVRE J.', 'MARTIN', 'Jean']
>>> [text[s:e] for s, e, _ in index.find(text, patient=2)]
['DUPONT-LEFEVRE J.', 'MARTIN']
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fhirlake.pseudonymize.textdates import strip_accents

__all__ = ["Person", "PersonIndex", "name_parts", "normalise"]

_TOKEN = re.compile(r"[^\W_]+")
_GAP = re.compile(r"[ \t,.'’-]{0,3}")  # a name does not run across lines
_PARTICLES = frozenset(
    {
        "de",
        "du",
        "des",
        "van",
        "von",
        "der",
        "den",
        "le",
        "la",
        "di",
        "da",
        "del",
        "d",
        "l",
        "mac",
        "st",
        "ten",
        "ter",
        "y",
        "e",
        "dos",
        "das",
    }
)
_TRAILING_DIGITS = re.compile(r"(?<=[^\W\d])\d+$")


@functools.lru_cache(maxsize=1 << 16)
def normalise(word: str) -> str:
    """A word as compared: no accents, casefolded ("LEFÈVRE" → "lefevre")."""
    return strip_accents(word).casefold()


@dataclass(frozen=True, slots=True)
class Person:
    """A person the export names: role, whose (patient ordinal or clinician ordinal), names."""

    role: str  # "patient", "relative" or "clinician"
    owner: int  # the patient's ordinal (patient, relative) or the clinician's
    given: tuple[str, ...]
    family: tuple[str, ...]

    def parts(self) -> Iterator[tuple[str, str]]:
        """(normalised word, "given" or "family") for each word of each name."""
        for kind, names in (("given", self.given), ("family", self.family)):
            for name in names:
                for word in _TOKEN.findall(name):
                    yield normalise(word), kind
                    stripped = _TRAILING_DIGITS.sub("", word)
                    if stripped != word and len(stripped) >= 3:
                        yield normalise(stripped), kind  # Synthea: "Carolee951" → "Carolee"


def name_parts(name: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(given names, family names) of a FHIR HumanName; ``text`` counts as both."""
    if not isinstance(name, dict):
        return (), ()
    given = tuple(v for v in _strings(name.get("given")))
    family = tuple(v for v in _strings(name.get("family")))
    text = tuple(_strings(name.get("text")))
    return given + text, family + text


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        yield from (v for v in value if isinstance(v, str))


@dataclass(frozen=True, slots=True)
class _Entry:
    person: int  # index in PersonIndex.people
    kind: str


class PersonIndex:
    """The people of one export, indexed by the normalised words of their names."""

    def __init__(self, common_words: Iterable[str] = ()) -> None:
        self.people: list[Person] = []
        self._by_word: dict[str, list[_Entry]] = {}
        self._common = frozenset(normalise(w) for w in common_words)

    def __len__(self) -> int:
        return len(self.people)

    def add(self, person: Person) -> None:
        """Index a person (one with no name word is ignored)."""
        index = len(self.people)
        seen = set()
        for word, kind in person.parts():
            if len(word) < 2 or (word, kind) in seen or word in _PARTICLES:
                continue
            seen.add((word, kind))
            self._by_word.setdefault(word, []).append(_Entry(index, kind))
        if seen:
            self.people.append(person)

    def _close(self, person: Person, patient: int | None) -> bool:
        return person.role == "clinician" or (patient is not None and person.owner == patient)

    def find(
        self, text: str, patient: int | None, *, strict: bool = False
    ) -> Iterator[tuple[int, int, Person]]:
        """Yield (start, end, person) for each name of the index in ``text``.

        ``patient`` is the ordinal of the note's patient: their names, their relatives' and
        the clinicians' count alone; anyone else's need two parts of a name together.
        ``strict`` (the leak scan) counts only two parts of a name together, for everyone.
        """
        if not self._by_word:
            return
        tokens = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text)]
        i = 0
        while i < len(tokens):
            run = self._run(text, tokens, i)
            if not run:
                i += 1
                continue
            match = self._judge(text, tokens, i, run, patient, strict)
            if match is None:
                i += 1
                continue
            start, end, person, used = match
            yield start, end, person
            i += used

    def _run(self, text: str, tokens: list[tuple[int, int, str]], i: int) -> int:
        """How many tokens from ``i`` on are name words, initials or particles, close together."""
        n = 0
        while i + n < len(tokens):
            start, end, word = tokens[i + n]
            if n and not _GAP.fullmatch(text, tokens[i + n - 1][1], start):
                break
            key = normalise(word)
            is_name = key in self._by_word or _is_initial(text, start, end, word)
            if not (is_name or (key in _PARTICLES and i + n + 1 < len(tokens))):
                break
            n += 1
            if n >= 6:
                break
        while (
            n
            and normalise(tokens[i + n - 1][2]) in _PARTICLES
            and not _is_initial(text, *tokens[i + n - 1])
        ):
            n -= 1
        return n

    def _judge(
        self,
        text: str,
        tokens: list[tuple[int, int, str]],
        i: int,
        n: int,
        patient: int | None,
        strict: bool = False,
    ) -> tuple[int, int, Person, int] | None:
        """The person a run of tokens names, if it names one, and the span to replace."""
        words = tokens[i : i + n]
        hits: dict[int, list[int]] = {}  # person -> positions in the run of their words
        initials = [k for k, (s, e, w) in enumerate(words) if _is_initial(text, s, e, w)]
        for k, (_, _, word) in enumerate(words):
            for entry in self._by_word.get(normalise(word), ()):
                hits.setdefault(entry.person, []).append(k)
        best: tuple[int, int, Person, int] | None = None
        for index, positions in hits.items():
            person = self.people[index]
            firsts = {normalise(w)[0] for w, _ in person.parts() if w}
            with_initials = positions + [
                k for k in initials if normalise(words[k][2])[0] in firsts and k not in positions
            ]
            distinct = {normalise(words[k][2]) for k in positions}
            strong = len(distinct) >= 2 or (
                len(distinct) == 1 and len(with_initials) > len(positions)
            )
            if not strong:
                if strict:
                    continue
                k = positions[0]
                if not (
                    self._close(person, patient) and self._alone_ok(words[k][2], person, patient)
                ):
                    continue
                with_initials = [k]
            first, last = min(with_initials), max(with_initials)
            end = words[last][1]
            if _is_initial(text, *words[last]) and text[end : end + 1] == ".":
                end += 1
            span = (words[first][0], end, person, last + 1)
            if best is None or (span[1] - span[0]) > (best[1] - best[0]):
                best = span
        return best

    def _alone_ok(self, word: str, person: Person, patient: int | None) -> bool:
        """Whether one word alone is taken for this person's name."""
        key = normalise(word)
        if key in self._common or len(key) < 2:
            return False
        own = patient is not None and person.owner == patient and person.role == "patient"
        if any(c.isdigit() for c in word):
            return True
        if own and len(key) >= 4:
            return True  # the patient's own name, in any case
        return word[:1].isupper()


def _is_initial(text: str, start: int, end: int, word: str) -> bool:
    """A capital letter alone, followed by a dot or standing beside a name ("J. Dupont")."""
    return end - start == 1 and word.isupper() and word.isalpha()
