"""The privacy ledger: each client's budget per period, and the answers already released.

One SQLite file (``<state>/privacy-ledger.sqlite``, by default in the lake's ``serving/``
folder) shared by every session and every server process on the lake. Two tables:

* ``spent``: epsilon spent per client and period (a UTC day by default). A call reserves its
  epsilon in one ``BEGIN IMMEDIATE`` transaction, so two processes cannot both spend the last
  of a budget.
* ``released``: every noisy answer, keyed by what was asked (snapshot, scope, tool and the
  question's canonical form). Asking again returns the same answer and spends nothing, so the
  noise cannot be averaged away by repeating a question, in this session or any other.

>>> ledger = PrivacyLedger(tmp / "state")          # doctest: +SKIP
>>> ledger.reserve("client-a", 1.0, limit=20.0)    # doctest: +SKIP
Spend(period='2026-12-06', epsilon=1.0, left=19.0)
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fhirlake.serving.errors import BudgetExhausted, ServingError

__all__ = ["LEDGER_FILE", "PrivacyLedger", "Spend"]

LEDGER_FILE = "privacy-ledger.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS spent (client TEXT NOT NULL, period TEXT NOT NULL, epsilon REAL NOT NULL,
                                  PRIMARY KEY (client, period));
CREATE TABLE IF NOT EXISTS released (key TEXT PRIMARY KEY, answer BLOB NOT NULL, created TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Spend:
    """What one call spent: the period, epsilon, and the client's budget left in that period."""

    period: str
    epsilon: float
    left: float


def utc_day() -> str:
    return datetime.now(UTC).date().isoformat()


class PrivacyLedger:
    """Budgets and released answers, in one SQLite file shared by processes."""

    def __init__(self, folder: str | Path, *, period: Callable[[], str] = utc_day) -> None:
        self.path = Path(folder) / LEDGER_FILE
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self._con.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit is atomic and survives a crash of the process; a power cut may
            # lose the last spends, never corrupt the file (an fsync per call cost more than the query)
            self._con.execute("PRAGMA synchronous=NORMAL")
            self._con.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ServingError(f"{self.path}: cannot open the privacy ledger: {exc}") from exc
        self._period = period
        self._lock = threading.Lock()

    def left(self, client: str, limit: float) -> Spend:
        """The client's budget left in the current period (nothing spent)."""
        period = self._period()
        with self._lock:
            row = self._con.execute("SELECT epsilon FROM spent WHERE client = ? AND period = ?", (client, period)).fetchone()
        return Spend(period, 0.0, max(0.0, limit - (row[0] if row else 0.0)))

    def reserve(self, client: str, epsilon: float, *, limit: float) -> Spend:
        """Spend ``epsilon`` of ``client``'s budget for this period, or BudgetExhausted."""
        period = self._period()
        with self._lock:
            cursor = self._con.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                row = cursor.execute("SELECT epsilon FROM spent WHERE client = ? AND period = ?", (client, period)).fetchone()
                spent = row[0] if row else 0.0
                if spent + epsilon > limit + 1e-9:
                    raise BudgetExhausted(
                        f"the privacy budget of {limit:g} (epsilon) for {period} is spent ({spent:g} used, this call needs "
                        f"{epsilon:g}): answers already given can be asked again at no cost; new questions wait for the next period")
                cursor.execute("INSERT INTO spent (client, period, epsilon) VALUES (?, ?, ?) ON CONFLICT (client, period) "
                               "DO UPDATE SET epsilon = epsilon + excluded.epsilon", (client, period, epsilon))
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        return Spend(period, epsilon, max(0.0, limit - spent - epsilon))

    def refund(self, client: str, spend: Spend) -> None:
        """Give back a reservation whose answer was never released (the query failed)."""
        with self._lock:
            self._con.execute("UPDATE spent SET epsilon = max(0, epsilon - ?) WHERE client = ? AND period = ?",
                              (spend.epsilon, client, spend.period))

    def released(self, key: str) -> bytes | None:
        """The answer released earlier for ``key``, if any."""
        with self._lock:
            row = self._con.execute("SELECT answer FROM released WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def release(self, key: str, answer: bytes) -> bytes:
        """Record ``answer`` for ``key``; when another process released one first, that one wins
        (and is returned), so every asker sees one answer."""
        with self._lock:
            self._con.execute("INSERT OR IGNORE INTO released (key, answer, created) VALUES (?, ?, ?)",
                              (key, answer, datetime.now(UTC).isoformat()))
            row = self._con.execute("SELECT answer FROM released WHERE key = ?", (key,)).fetchone()
        return bytes(row[0])

    def close(self) -> None:
        with self._lock:
            self._con.close()
