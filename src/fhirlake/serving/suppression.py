"""Small-cell suppression: no count under k is shown, and none can be recovered.

Primary suppression hides every count under ``k`` (shown as ``"<k"``). Secondary suppression
keeps a hidden cell from being recovered by subtraction: in every line of a table (the cells
that differ in one dimension only, whose sum is a known margin) and in the whole table, the
hidden cells are either none, or at least two whose sum is at least ``k``; the smallest visible
cells are hidden until that holds.

>>> policy = SuppressionPolicy(k=11)
>>> policy.count(7).shown
'<11'
>>> sorted(secondary_suppression({("f",): 40, ("m",): 30, ("o",): 3}, k=11))
[('m',), ('o',)]
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, Field

from fhirlake.errors import ConfigurationError

__all__ = ["K_DEFAULT", "K_FLOOR", "Count", "SuppressionPolicy", "secondary_suppression"]

K_DEFAULT = 11
K_FLOOR = 5

_Key = TypeVar("_Key", bound=tuple[Hashable, ...])


class Count(BaseModel):
    """A patient count as the server shows it: the number, or ``"<k"`` when it is suppressed."""

    count: int | None = Field(description="The number of distinct patients; null when suppressed.")
    shown: str = Field(description="What to report: the number, or '<k' when suppressed.")
    suppressed: bool = Field(description="True when the count is under k (or would reveal one that is).")


@dataclass(frozen=True)
class SuppressionPolicy:
    """The minimum cell size ``k`` (default 11, never below :data:`K_FLOOR`)."""

    k: int = K_DEFAULT

    def __post_init__(self) -> None:
        if self.k < K_FLOOR:
            raise ConfigurationError(f"k = {self.k} is below the floor of {K_FLOOR}: small cells would single people out")

    def count(self, n: int, *, hide: bool = False) -> Count:
        """``n`` shown, or suppressed when under k (or when ``hide``: secondary suppression)."""
        if n < self.k or hide:
            return Count(count=None, shown=f"<{self.k}" if n < self.k else "suppressed", suppressed=True)
        return Count(count=n, shown=str(n), suppressed=False)


def secondary_suppression(cells: Mapping[_Key, int], k: int, *, hidden: set[_Key] | None = None) -> set[_Key]:
    """The cells to hide in a table of ``cells`` (key tuple → count): primary (under ``k``, or
    the given ``hidden``) and secondary."""
    hidden = {key for key, n in cells.items() if n < k} if hidden is None else set(hidden)
    if not hidden:
        return hidden
    width = len(next(iter(cells)))
    changed = True
    while changed:
        changed = False
        lines: list[list[_Key]] = [list(cells)]
        for dim in range(width if width > 1 else 0):
            grouped: dict[tuple[Hashable, ...], list[_Key]] = {}
            for key in cells:
                grouped.setdefault(key[:dim] + key[dim + 1:], []).append(key)
            lines += grouped.values()
        for line in lines:
            changed |= _protect(line, cells, hidden, k)
    return hidden


def _protect(line: list[_Key], cells: Mapping[_Key, int], hidden: set[_Key], k: int) -> bool:
    """Hide the smallest visible cells of ``line`` until its hidden part cannot be recovered.

    Hidden cells counted 0 (empty, or a noisy count at zero) need no protection: recovering
    them tells nothing."""
    changed = False
    while True:
        masked = [key for key in line if key in hidden]
        if not any(cells[key] > 0 for key in masked) or (len(masked) >= 2 and sum(cells[key] for key in masked) >= k):
            return changed
        visible = sorted((key for key in line if key not in hidden), key=lambda key: cells[key])
        if not visible:
            return changed
        hidden.add(visible[0])
        changed = True
