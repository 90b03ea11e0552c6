"""Generalisation of quasi-identifiers: postal codes and ages.

* A US (or unknown-country) postal code keeps its first three characters (the HIPAA Safe
  Harbor "ZIP3"); a ZIP3 area of fewer than 20,000 people becomes ``000``.
* A French postal code becomes its département: two digits, three for overseas (97x, 98x),
  ``2A``/``2B`` for Corsica.
* An age above ``max_age`` (89) becomes ``max_age + 1`` with comparator ``>=`` ("90 or more").

>>> generalize_postal_code("98053-1234", "US", frozenset())
'980'
>>> generalize_postal_code("20090", "FR", frozenset())
'2A'
>>> generalize_postal_code("97411", "France", frozenset())
'974'
"""

from __future__ import annotations

__all__ = ["FRENCH_COUNTRY_NAMES", "generalize_postal_code", "top_code_age"]

FRENCH_COUNTRY_NAMES = frozenset({"fr", "fra", "france"})


def _departement(code: str) -> str:
    if code.startswith(("97", "98")):
        return code[:3]
    if code.startswith("20"):
        # Corse-du-Sud is 200xx-201xx, Haute-Corse 202xx-206xx.
        return "2A" if code[:3] in {"200", "201"} else "2B"
    return code[:2]


def generalize_postal_code(code: str, country: str | None, restricted: frozenset[str]) -> str:
    """The generalised form of ``code`` for ``country`` (ISO code or name, may be None)."""
    compact = "".join(code.split())
    if country is not None and country.strip().casefold() in FRENCH_COUNTRY_NAMES:
        return _departement(compact)
    zip3 = compact[:3]
    return "000" if zip3 in restricted else zip3


def top_code_age(value: float, max_age: int) -> int | None:
    """``None`` when ``value`` may stay; else the group's floor (``max_age + 1``, read ">=").

    >>> top_code_age(95, 89), top_code_age(89, 89)
    (90, None)
    """
    return max_age + 1 if value > max_age else None
