"""Reading and rewriting FHIR references so that they still resolve after pseudonymisation.

A resource id ``x`` becomes :meth:`PseudonymKey.resource_id` ``(x)`` everywhere it appears:

==================================  ==========================================
``Patient/x``                       ``Patient/P(x)``
``Patient/x/_history/2``            ``Patient/P(x)/_history/2``
``https://ehr.example/fhir/Patient/x``  ``https://ehr.example/fhir/Patient/P(x)``
``urn:uuid:x`` (a Bundle entry)     ``Patient/P(x)`` (the entry's type is known from its fullUrl)
``urn:uuid:x`` (unknown entry)      ``urn:uuid:P(x)`` (P(x) is a UUID, so this stays valid)
``#x`` (a contained resource)       ``#P(x)``
==================================  ==========================================

A conditional reference (``Patient?identifier=…``) or anything else that is not a literal
reference carries search parameters or free text, so it is dropped (``None``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass

__all__ = [
    "BundleUrls",
    "ParsedReference",
    "parse_reference",
    "patient_id_of",
    "rewrite_reference",
]

# fullUrl of a Bundle entry -> (resourceType, id) of the resource it holds
BundleUrls = Mapping[str, tuple[str, str]]

_LITERAL = re.compile(
    r"^(?P<base>https?://[^?#]*/)?(?P<type>[A-Z][A-Za-z]{1,63})/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?P<history>/_history/[A-Za-z0-9\-.]{1,64})?$"
)
_URN = re.compile(r"^urn:(?P<scheme>uuid|oid):(?P<id>\S+)$")


@dataclass(frozen=True, slots=True)
class ParsedReference:
    """A literal reference: its base URL (or ''), type (or '' for urn/contained) and id."""

    base: str
    type: str
    id: str
    history: str
    kind: str  # "relative" | "absolute" | "urn" | "contained"


def parse_reference(
    value: str,
    bundle_urls: BundleUrls | None = None,
    resource_types: Container[str] | None = None,
) -> ParsedReference | None:
    """Parse a literal reference; ``None`` for conditional or unparseable ones.

    With ``resource_types``, a ``Type/id`` whose type is not among them is not a reference.

    >>> parse_reference("Patient/123")
    ParsedReference(base='', type='Patient', id='123', history='', kind='relative')
    """
    if bundle_urls and value in bundle_urls:
        rtype, rid = bundle_urls[value]
        return ParsedReference("", rtype, rid, "", "relative")
    if value.startswith("#"):
        return ParsedReference("", "", value[1:], "", "contained")
    m = _URN.match(value)
    if m:
        return ParsedReference(f"urn:{m['scheme']}:", "", m["id"], "", "urn")
    m = _LITERAL.match(value)
    if m and (resource_types is None or m["type"] in resource_types):
        base = m["base"] or ""
        return ParsedReference(
            base, m["type"], m["id"], m["history"] or "", "absolute" if base else "relative"
        )
    return None


def rewrite_reference(
    value: str,
    pseudonym: Callable[[str], str],
    bundle_urls: BundleUrls | None = None,
    resource_types: Container[str] | None = None,
) -> str | None:
    """The reference with its id replaced by ``pseudonym(id)``; ``None`` if it must be dropped.

    >>> rewrite_reference("Patient/123/_history/2", lambda i: "p" + i)
    'Patient/p123/_history/2'
    >>> rewrite_reference("Patient?identifier=x|1", lambda i: "p" + i) is None
    True
    """
    ref = parse_reference(value, bundle_urls, resource_types)
    if ref is None:
        return None
    if ref.kind == "contained":
        return "#" + pseudonym(ref.id) if ref.id else "#"
    if ref.kind == "urn":
        return "urn:uuid:" + pseudonym(ref.id)
    return f"{ref.base}{ref.type}/{pseudonym(ref.id)}{ref.history}"


def patient_id_of(value: object, bundle_urls: BundleUrls | None = None) -> str | None:
    """The id of the Patient a reference points to, if it points to a Patient."""
    if not isinstance(value, str):
        return None
    ref = parse_reference(value, bundle_urls)
    if ref is not None and ref.type == "Patient":
        return ref.id
    return None
