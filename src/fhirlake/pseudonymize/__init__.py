"""Pseudonymisation of FHIR Bulk Data under a policy kept as data (``anonymization/``).

Researchers and LLMs must never see who the patients are, yet the data must stay useful:
ids and references become keyed pseudonyms (joins still work), each patient's dates move by
one offset (intervals are kept), codes and values are kept, and free text goes through NER,
rules for dates and identifiers, and deny-lists of every person the export names. See ``anonymization/README.md`` for the policy.

>>> from fhirlake.pseudonymize import load_key, load_policy, pseudonymize   # doctest: +SKIP
>>> report = pseudonymize(Path("export"), Path("out"), load_policy(), load_key())  # doctest: +SKIP

Modules, one job each: ``policy`` (model and parser), ``fhirtypes`` (element types),
``plan`` (rules compiled per path), ``rules`` (the structured walk), ``references``,
``dates``, ``generalize``, ``keys``, ``patients`` (compartment, what the export names),
``terms``, ``persons`` (names however written), ``clinical`` (allow-list), ``textdates``
(dates in text), ``patterns`` (identifiers, phones, addresses), ``ner`` (spaCy, NER only),
``presidio`` (Presidio's recognizers on the NER pass's Docs), ``text`` (the free-text pass), ``recognizers``, ``reader``, ``pipeline`` (processes),
``report``, ``audit`` (policy vs the R4 registry), ``scan`` and ``lakescan`` (leak scans),
``cli``.
"""

from __future__ import annotations

from fhirlake.pseudonymize.errors import PolicyError, PseudonymizeError, PseudonymKeyError
from fhirlake.pseudonymize.keys import KEY_ENV_VAR, PseudonymKey, load_key
from fhirlake.pseudonymize.pipeline import pseudonymize
from fhirlake.pseudonymize.policy import DEFAULT_POLICY_PATH, Policy, load_policy, parse_policy
from fhirlake.pseudonymize.report import PrivacyReport
from fhirlake.pseudonymize.scan import (
    ScanContext,
    ScanResult,
    input_terms,
    scan_context,
    scan_output,
    truth_terms,
)

__all__ = [
    "DEFAULT_POLICY_PATH",
    "KEY_ENV_VAR",
    "Policy",
    "PolicyError",
    "PrivacyReport",
    "PseudonymKey",
    "PseudonymKeyError",
    "PseudonymizeError",
    "ScanContext",
    "ScanResult",
    "input_terms",
    "load_key",
    "load_policy",
    "parse_policy",
    "pseudonymize",
    "scan_context",
    "scan_output",
    "truth_terms",
]
