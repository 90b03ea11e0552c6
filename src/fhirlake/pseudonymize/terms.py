"""A patient's identifying strings, and a matcher that finds them in any text.

The same terms serve two jobs: the per-patient deny-list that removes names NER misses
(Synthea's "Carolee951") from that patient's notes, and the leak scan that checks every output
file for every input patient. Matching works on word tokens (``\\w+``), case-insensitively, so
"CAROLEE951", "Carolee951's" and "555 657 5098" are found as well as the literal forms, and a
term never matches inside a longer word. Phone numbers and identifiers also get a compact form
(digits and letters only) so that "5556575098" is found too.

>>> m = TermMatcher([Term("PERSON", "Carolee951 Sanford861", 0)])
>>> [(s, e) for s, e, _ in m.find("Seen: carolee951  SANFORD861, ok")]
[(6, 28)]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fhirlake.pseudonymize.persons import normalise

__all__ = ["Term", "TermMatcher", "contact_terms", "identifying_terms"]

_WORD = re.compile(r"\w+")
_DATE_LIKE = re.compile(r"^(?:\d{4}-\d{2}-\d{2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{4})$")
_TRAILING_DIGITS = re.compile(r"(?<=[^\W\d])\d+$")

# Single-token terms shorter than this are left out: they would match everyday words
# ("Al") or everyday numbers ("12345" as a dose or an amount).
MIN_SINGLE_TOKEN = 3
MIN_SINGLE_NUMBER = 6


@dataclass(frozen=True, slots=True)
class Term:
    """An identifying string: its entity type (PERSON…), its text, and whose it is.

    ``owner`` is the patient's ordinal, or the clinician's when ``role`` is "clinician".
    """

    entity: str
    text: str
    owner: int
    role: str = "patient"

    @property
    def weak(self) -> bool:
        """A term that is also an everyday string: one word without digits ("Hand", "Charles"),
        or a date (another patient's shifted date can fall on it).

        Such a term is a leak only where it cannot be anything else: as a whole JSON value, or
        in its own patient's resources. Any other term is a leak anywhere.
        """
        if _DATE_LIKE.match(self.text.strip()):
            return True
        words = _WORD.findall(self.text)
        return len(words) == 1 and not any(c.isdigit() for c in words[0])


def _long_enough(token: str, min_number: int) -> bool:
    return len(token) >= (min_number if token.isdigit() else MIN_SINGLE_TOKEN)


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(normalise(t) for t in _WORD.findall(text))


class TermMatcher:
    """Finds any of many terms in a text in one pass over its tokens."""

    def __init__(self, terms: Iterable[Term], *, min_number: int = MIN_SINGLE_NUMBER) -> None:
        self._by_first: dict[str, list[tuple[tuple[str, ...], Term]]] = {}
        for term in terms:
            tokens = _tokens(term.text)
            if not tokens or (len(tokens) == 1 and not _long_enough(tokens[0], min_number)):
                continue
            self._by_first.setdefault(tokens[0], []).append((tokens, term))
        for entries in self._by_first.values():
            entries.sort(key=lambda e: -len(e[0]))  # longest match first

    def __bool__(self) -> bool:
        return bool(self._by_first)

    def find(self, text: str) -> Iterator[tuple[int, int, Term]]:
        """Yield (start, end, term) for every occurrence, longest first at each position."""
        if not self._by_first:
            return
        spans = [(m.start(), m.end(), normalise(m.group())) for m in _WORD.finditer(text)]
        i = 0
        while i < len(spans):
            entries = self._by_first.get(spans[i][2])
            matched = 0
            if entries:
                for tokens, term in entries:
                    n = len(tokens)
                    if n == 1 or tuple(s[2] for s in spans[i : i + n]) == tokens:
                        yield spans[i][0], spans[i + n - 1][1], term
                        matched = n
                        break
            i += matched or 1


def _texts(values: Any) -> Iterator[str]:
    if isinstance(values, str):
        yield values
    elif isinstance(values, list):
        for v in values:
            if isinstance(v, str):
                yield v


def _name_terms(name: Any) -> Iterator[str]:
    if not isinstance(name, dict):
        return
    given = list(_texts(name.get("given")))
    family = [f for f in _texts(name.get("family"))]
    yield from given
    yield from family
    yield from _texts(name.get("text"))
    if given and family:
        yield " ".join([*given, *family])
        yield f"{given[0]} {family[0]}"
        yield f"{family[0]} {given[0]}"


def _with_variants(text: str) -> Iterator[str]:
    """The text, and the text without Synthea's trailing digits ("Carolee951" → "Carolee")."""
    yield text
    stripped = " ".join(_TRAILING_DIGITS.sub("", w) for w in text.split())
    if stripped != text:
        yield stripped


def _compact(text: str) -> str:
    return "".join(_WORD.findall(text))


def contact_terms(resource: dict[str, Any], owner: int, role: str) -> list[Term]:
    """A resource's phones, e-mails and address lines (a practitioner's, say) as terms."""
    found: list[tuple[str, str]] = []
    _contact(resource, found, quasi=False)
    return [
        Term(entity, text, owner, role) for entity, text in dict.fromkeys(found) if text.strip()
    ]


def _contact(resource: dict[str, Any], found: list[tuple[str, str]], *, quasi: bool) -> None:
    for telecom in resource.get("telecom") or []:
        if isinstance(telecom, dict) and isinstance(telecom.get("value"), str):
            entity = "EMAIL_ADDRESS" if telecom.get("system") == "email" else "PHONE_NUMBER"
            found.append((entity, telecom["value"]))
            if entity == "PHONE_NUMBER":
                found.append((entity, _compact(telecom["value"])))
    addresses = resource.get("address") or []
    for address in addresses if isinstance(addresses, list) else [addresses]:
        if isinstance(address, dict):
            found.extend(("LOCATION", line) for line in _texts(address.get("line")))
            found.extend(("LOCATION", text) for text in _texts(address.get("text")))
            if quasi:
                for name in ("city", "postalCode"):
                    found.extend(("LOCATION", text) for text in _texts(address.get(name)))


def identifying_terms(
    patient: dict[str, Any], owner: int, *, quasi: bool = False, with_id: bool = True
) -> list[Term]:
    """Every identifying string of a Patient resource, as terms owned by ``owner``.

    Names (official, maiden, contacts', mother's maiden name), phone numbers and e-mails,
    address lines, identifier values and the resource id. With ``quasi``, also the city and
    postal code: worth removing from the patient's own notes, but shared by too many people
    to count as a leak elsewhere.
    """
    found: list[tuple[str, str]] = []
    names = list(patient.get("name") or [])
    for contact in patient.get("contact") or []:
        if isinstance(contact, dict):
            names.append(contact.get("name"))
    for name in names:
        for text in _name_terms(name):
            found.extend(("PERSON", v) for v in _with_variants(text))
    for ext in patient.get("extension") or []:
        if isinstance(ext, dict) and str(ext.get("url", "")).endswith("patient-mothersMaidenName"):
            for text in _texts(ext.get("valueString")):
                found.extend(
                    ("PERSON", v) for w in [text, *text.split()] for v in _with_variants(w)
                )
    _contact(patient, found, quasi=quasi)
    for contact in patient.get("contact") or []:
        if isinstance(contact, dict):
            _contact(contact, found, quasi=False)
    for identifier in patient.get("identifier") or []:
        if isinstance(identifier, dict) and isinstance(identifier.get("value"), str):
            value = identifier["value"]
            found.extend([("IDENTIFIER", value), ("IDENTIFIER", _compact(value))])
    if with_id and isinstance(patient.get("id"), str):
        found.append(("IDENTIFIER", patient["id"]))
    seen: set[tuple[str, str]] = set()
    terms = []
    for entity, text in found:
        if text.strip() and (entity, text) not in seen:
            seen.add((entity, text))
            terms.append(Term(entity, text, owner))
    return terms
