"""What a column may be used for outside trusted SQL: its role, declared in the ViewDefinition.

Each column of a library view carries a tag ``{"name": "fhirlake/role", "value": ROLE}``; a
measure also ``{"name": "fhirlake/bounds", "value": "LOW..HIGH"}``. Adding a view therefore
declares what an LLM may do with each of its columns, and the MCP server's aggregate language
(:mod:`fhirlake.serving.grammar`) reads nothing else: a column without a role cannot be used.

========================  =====================================================================
role                      may be used (through the MCP server)
========================  =====================================================================
``key``                   never shown or compared; the patient key joins views and counts patients
``dimension``             grouped by, compared with literals in filters
``measure``               aggregated (clamped to its bounds, one value per patient), compared
``date``                  compared with literal dates, grouped by its year or month
``quasi-identifier``      not at all (a birth or death date): kept for trusted SQL only
``text``                  not at all (free text)
========================  =====================================================================

The lake copies the tags into each gold column's Delta metadata (:data:`ROLE_KEY`,
:data:`BOUNDS_KEY`) and its catalog lists them in ``fhirlake.columns``.

>>> parse_role("measure", "0..500", pointer="/select/0/column/3")
ColumnRole(role='measure', bounds=(0.0, 500.0))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast, get_args

from fhirlake.errors import ConfigurationError

__all__ = ["BOUNDS_KEY", "BOUNDS_TAG", "ROLES", "ROLE_KEY", "ROLE_TAG", "ColumnRole", "Role", "parse_role"]

Role = Literal["key", "dimension", "measure", "date", "quasi-identifier", "text"]
ROLES: tuple[Role, ...] = get_args(Role)
ROLE_TAG = "fhirlake/role"
BOUNDS_TAG = "fhirlake/bounds"
#: The Delta field metadata keys the lake writes the tags under.
ROLE_KEY = "fhirlake.role"
BOUNDS_KEY = "fhirlake.bounds"


@dataclass(frozen=True)
class ColumnRole:
    """A column's role and, for a measure, the bounds its values are clamped to."""

    role: Role
    bounds: tuple[float, float] | None = None

    @property
    def bounds_text(self) -> str | None:
        return None if self.bounds is None else f"{self.bounds[0]:g}..{self.bounds[1]:g}"


def parse_role(role: str | None, bounds: str | None, *, pointer: str) -> ColumnRole | None:
    """The role declared by a column's tags (None when it declares none); ConfigurationError
    naming ``pointer`` for an unknown role, or a measure without valid bounds."""
    if role is None:
        return None
    if role not in ROLES:
        raise ConfigurationError(f"{pointer}: unknown role {role!r} (roles: {', '.join(ROLES)})")
    if role != "measure":
        if bounds is not None:
            raise ConfigurationError(f"{pointer}: only a measure has bounds, not a {role}")
        return ColumnRole(cast(Role, role))
    if bounds is None:
        raise ConfigurationError(f"{pointer}: a measure needs a {BOUNDS_TAG} tag such as '0..500'")
    low, sep, high = bounds.partition("..")
    try:
        pair = (float(low), float(high))
    except ValueError:
        pair = None
    if not sep or pair is None or not pair[0] < pair[1]:
        raise ConfigurationError(f"{pointer}: bounds {bounds!r} are not 'LOW..HIGH' with LOW < HIGH")
    return ColumnRole("measure", pair)
