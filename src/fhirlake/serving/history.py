"""The differencing guard: two answers may not differ by fewer than k patients.

Counting a cohort, then the same cohort with one more condition that only one patient fails,
isolates that patient by subtraction even when both counts are large. The server keeps, per
client and in memory only, the patient sets of the answers it gave (as sorted hashed keys that
never leave it) and refuses an answer whose set differs from an earlier one by 1 to k-1
patients. Sets whose sizes differ by k or more cannot be that close, so most are skipped.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from fhirlake.serving.errors import QueryRefused

__all__ = ["DifferencingGuard"]

Keys = npt.NDArray[np.uint64]


class DifferencingGuard:
    """Per-client memory of answered patient sets; :meth:`check` refuses near-duplicates."""

    def __init__(self, k: int, *, remember: int = 512) -> None:
        self.k = k
        self._remember = remember
        self._sets: dict[str, deque[Keys]] = {}
        self._lock = threading.Lock()

    def check(self, client: str, keys: Keys, *, what: str = "this cohort") -> None:
        """Refuse when ``keys`` differs from an earlier answer by 1..k-1 patients; else remember it."""
        self.check_all(client, [(what, keys)])

    def check_all(self, client: str, sets: Sequence[tuple[str, Keys]]) -> None:
        """Check every ``(what, keys)`` of one answer against the earlier answers, then remember
        them all (the sets of one answer, e.g. of each table of a join, are not compared with
        each other: each is shown once, together)."""
        currents = [(what, np.unique(keys)) for what, keys in sets]
        with self._lock:
            seen = self._sets.setdefault(client, deque(maxlen=self._remember))
            for what, current in currents:
                self._refuse_near(seen, current, what)
            for _, current in currents:
                if not any(len(e) == len(current) and np.array_equal(e, current) for e in seen):
                    seen.append(current)

    def _refuse_near(self, seen: deque[Keys], current: Keys, what: str) -> None:
        for earlier in seen:
            if abs(len(earlier) - len(current)) >= self.k:
                continue
            common = len(np.intersect1d(earlier, current, assume_unique=True))
            differ = len(earlier) + len(current) - 2 * common
            if 0 < differ < self.k:
                raise QueryRefused(
                    f"{what} differs from an earlier answer by fewer than {self.k} patients: "
                    "comparing the two would single people out")

    def check_pair(self, a: Keys, b: Keys) -> None:
        """Refuse comparing two sets that differ by 1..k-1 patients."""
        differ = len(np.setxor1d(np.unique(a), np.unique(b), assume_unique=True))
        if 0 < differ < self.k:
            raise QueryRefused(f"the two cohorts differ by fewer than {self.k} patients: comparing them would single people out")
