"""FHIRPath: tokens, syntax tree and parser for the subset SQL-on-FHIR views use.

>>> from fhirlake.sof.fhirpath import parse
>>> parse("name.where(use = 'official').family.first()")  # doctest: +ELLIPSIS
Call(...)
"""

from __future__ import annotations

from fhirlake.sof.fhirpath.ast import (
    Binary,
    Call,
    EnvVar,
    Indexer,
    Literal,
    Member,
    Node,
    This,
    Unary,
)
from fhirlake.sof.fhirpath.parser import KNOWN_FUNCTIONS, parse

__all__ = [
    "KNOWN_FUNCTIONS",
    "Binary",
    "Call",
    "EnvVar",
    "Indexer",
    "Literal",
    "Member",
    "Node",
    "This",
    "Unary",
    "parse",
]
