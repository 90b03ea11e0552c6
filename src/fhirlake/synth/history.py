"""When a patient meets the health system: the list of visits of one patient, in time order.

Visits come from five sources: the wellness schedule (frequent in infancy, yearly in
childhood, every two years for young adults, yearly after 40), acute episodes (infections
and injuries, a Poisson process whose rate depends on age), follow-ups of chronic diseases,
heart attacks for some patients with coronary disease, and pregnancies. Only visits inside
the history window (the last ``history_years`` before ``as_of``, and before death) are kept.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from fhirlake.synth.clock import DAY, YEAR
from fhirlake.synth.health import Health

__all__ = ["Visit", "plan_visits"]

_Add = Callable[..., None]
_WEEK = 7 * DAY
_INFANT_AGES = (0.01, 1 / 12, 2 / 12, 4 / 12, 6 / 12, 9 / 12, 1.0, 15 / 12, 18 / 12, 2.0, 2.5)
_CHRONIC_FOLLOWED = ("hypertension", "diabetes", "asthma", "copd", "chd", "afib", "ckd", "alzheimers")
_CHILD_INFECTIONS = (("otitis", 0.3), ("pharyngitis", 0.25), ("strep_throat", 0.15), ("bronchitis", 0.1), ("viral_sinusitis", 0.2))
_ADULT_INFECTIONS = (("viral_sinusitis", 0.4), ("pharyngitis", 0.2), ("bronchitis", 0.17), ("strep_throat", 0.05), ("cystitis", 0.18))
_INJURIES = ("ankle_sprain", "wrist_sprain", "forearm_fracture", "concussion", "foot_laceration")


@dataclass(slots=True)
class Visit:
    """One encounter to generate: when, what kind, why, and how long it lasts (seconds)."""

    ts: int
    kind: str
    reason: str | None = None
    duration: int = 1800


def _weighted(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    x = rng.random() * sum(w for _, w in table)
    for key, weight in table:
        x -= weight
        if x < 0:
            return key
    return table[-1][0]


def _daytime(ts: int, rng: random.Random, offset_seconds: int) -> int:
    """Move ``ts`` to a random time between 08:00 and 17:00 local on the same day."""
    local_midnight = ts - (ts + offset_seconds) % DAY
    return local_midnight + rng.randint(8 * 3600, 17 * 3600)


def _wellness_ages(end_age: float, rng: random.Random) -> list[float]:
    ages = [a for a in _INFANT_AGES if a <= end_age]
    ages += [float(a) for a in range(3, 19) if a <= end_age]
    phase = rng.random() < 0.5
    age = 19.0 + phase
    while age <= end_age:
        ages.append(age + rng.uniform(-0.2, 0.2))
        age += 2.0 if age < 40 else 1.0
    return ages


def plan_visits(
    rng: random.Random, health: Health, birth_ts: int, start: int, end: int, offset_seconds: int
) -> list[Visit]:
    """All visits of one patient between ``start`` and ``end`` (epoch seconds), sorted."""
    end_age = (end - birth_ts) / YEAR
    visits: list[Visit] = []

    def add(ts: int, kind: str, reason: str | None = None, duration: int = 1800) -> None:
        if start <= ts < end:
            visits.append(Visit(_daytime(ts, rng, offset_seconds), kind, reason, duration))

    for age in _wellness_ages(end_age, rng):
        if age >= 3 and rng.random() < 0.1:
            continue  # a missed check-up
        add(birth_ts + int(age * YEAR), "wellness")
    _acute(rng, health, birth_ts, start, end, add)
    _followups(rng, health, birth_ts, start, end, add)
    chd = health.onsets.get("chd")
    if chd is not None and rng.random() < 0.3:
        ts = birth_ts + int(chd * YEAR)
        add(ts, "emergency", "mi", 4 * 3600)
        add(ts + 5 * 3600, "inpatient", "mi", rng.randint(3, 6) * DAY)
    if health.sex == "female":
        _pregnancies(rng, birth_ts, start, end, add)
    visits.sort(key=lambda v: v.ts)
    return visits


def _acute(rng: random.Random, health: Health, birth_ts: int, start: int, end: int, add: _Add) -> None:
    t = max(start, birth_ts + YEAR // 2)
    while True:
        age = (t - birth_ts) / YEAR
        rate = 1.4 if age < 5 else 0.8 if age < 18 else 0.6
        t += int(rng.expovariate(rate) * YEAR)
        if t >= end:
            return
        age = (t - birth_ts) / YEAR
        if rng.random() < 0.2:
            add(t, "emergency" if rng.random() < 0.5 else "urgent", rng.choice(_INJURIES), 3 * 3600)
            continue
        table = _CHILD_INFECTIONS if age < 18 else _ADULT_INFECTIONS
        reason = _weighted(rng, table)
        if reason == "cystitis" and health.sex == "male":
            reason = "bronchitis"
        add(t, "symptom" if rng.random() < 0.8 else "urgent", reason)


def _followups(rng: random.Random, health: Health, birth_ts: int, start: int, end: int, add: _Add) -> None:
    onsets = [health.onsets[c] for c in _CHRONIC_FOLLOWED if c in health.onsets]
    if not onsets:
        return
    t = max(start, birth_ts + int(min(onsets) * YEAR) + int(rng.uniform(0.1, 0.5) * YEAR))
    while t < end:
        add(t, "followup", None, 1200)
        t += int(rng.uniform(0.5, 1.2) * YEAR)


def _pregnancies(rng: random.Random, birth_ts: int, start: int, end: int, add: _Add) -> None:
    t = max(start, birth_ts + 19 * YEAR)
    last = min(end, birth_ts + 42 * YEAR)
    while True:
        t += int(rng.expovariate(0.07) * YEAR)
        if t >= last:
            return
        add(t, "prenatal_initial", "pregnancy")
        for k in range(1, 8):
            add(t + k * 4 * _WEEK, "prenatal", "pregnancy")
        add(t + 33 * _WEEK, "inpatient", "childbirth", rng.randint(2, 4) * DAY)
        add(t + 39 * _WEEK, "postnatal", "pregnancy")
        t += 60 * _WEEK
