"""The one place answers are released: budget, contribution bounds, noise, k, the release cache.

:meth:`Releaser.release` takes an :class:`~fhirlake.serving.plan.AggregatePlan` (from the
aggregate language or a cohort definition) and a client, and:

1. looks the question up in the ledger's release cache (snapshot, scope, tool, canonical form):
   a question asked before gets the same answer again and spends nothing;
2. reserves the call's epsilon from the client's budget for the period (shared by every
   session and process of the lake), or refuses;
3. runs the plan's per-(patient, cell) query through the scoped reader;
4. bounds each patient's contribution (at most ``max_cells_per_patient`` cells, at most
   ``max_rows_per_patient`` rows or values per cell, measures clamped to their bounds);
5. adds OpenDP noise to every statistic (:mod:`fhirlake.serving.noise`), the call's epsilon
   split over them by weight;
6. hides cells whose noisy patient count is under the threshold (``k``, raised when the noise
   is wide so that a cell of one patient shows with probability under ``delta``), then applies
   secondary suppression on the noisy counts, so margins (sums of released cells) cannot give a
   hidden cell away;
7. records the released answer in the cache.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pyarrow as pa
from pydantic import BaseModel, Field
from sqlglot import exp

from fhirlake.errors import ConfigurationError
from fhirlake.serving.answers import NoiseInfo, PrivacyInfo
from fhirlake.serving.ledger import PrivacyLedger, Spend
from fhirlake.serving.noise import noisy_counts, noisy_quantile, noisy_sums
from fhirlake.serving.plan import (
    DIMENSION,
    MEASURE_COUNT,
    MEASURE_VALUE,
    PK,
    ROWS,
    AggregatePlan,
    Statistic,
)
from fhirlake.serving.reader import GoldReader
from fhirlake.serving.scope import DataScope
from fhirlake.serving.suppression import secondary_suppression

__all__ = ["PrivacyPolicy", "ReleasedCell", "ReleasedTable", "Releaser", "scope_fingerprint"]

_HASH_SEED = 0x5EED


@dataclass(frozen=True)
class PrivacyPolicy:
    """How much each answer may reveal.

    ``epsilon_per_call``: what one new answer spends (split over its statistics);
    ``epsilon_per_day``: each client's budget per UTC day (``budgets``: a client's own, from the
    access policy); ``max_cells_per_patient`` and
    ``max_rows_per_patient``: contribution bounds; ``delta``: the chance that a cell holding
    one patient shows at all (sets the display threshold when the noise is wide).
    """

    epsilon_per_call: float = 1.0
    epsilon_per_day: float = 20.0
    max_cells_per_patient: int = 8
    max_rows_per_patient: int = 10
    delta: float = 1e-5
    budgets: Mapping[str, float] = field(default_factory=dict)  # a client's own budget per day (access policy)

    def __post_init__(self) -> None:
        if not 0 < self.epsilon_per_call <= min([self.epsilon_per_day, *self.budgets.values()]):
            raise ConfigurationError("epsilon per call must be positive and at most every budget per day")
        if self.max_cells_per_patient < 1 or self.max_rows_per_patient < 1:
            raise ConfigurationError("contribution bounds must be at least 1")
        if not 0 < self.delta < 0.01:
            raise ConfigurationError("delta must be between 0 and 0.01")


class ReleasedCell(BaseModel):
    """One cell: its dimension values, its noisy patient count (None when hidden), why hidden
    (``"<k"`` under the threshold, ``"suppressed"`` to protect another), and its statistics."""

    key: list[str | None]
    noisy: int = Field(description="The cell's noisy patient count, shown or not (for margins; never shown alone).")
    patients: int | None
    hidden: str | None
    values: list[float | int | None] = Field(description="The plan's statistics, in order (None when hidden).")


class ReleasedTable(BaseModel):
    """A released answer: cells in dimension order, their noise, and the bounds that applied."""

    dimensions: list[str]
    cells: list[ReleasedCell]
    total: int = Field(description="The sum of the noisy counts of every cell (hidden ones included).")
    threshold: int
    suppressed: int
    truncated: bool = Field(description="Some patients counted in more cells than the bound: each counts in some of them.")
    noise: list[NoiseInfo]


@dataclass(frozen=True)
class _Budget:
    unit: float      # epsilon of one measurement
    cells: int       # cells a patient may count in
    rows: int        # rows or values a patient may add to one cell


class Releaser:
    """Runs plans for clients and releases their noisy answers (see the module docstring)."""

    def __init__(self, reader: GoldReader, ledger: PrivacyLedger, policy: PrivacyPolicy, k: int) -> None:
        self.reader = reader
        self.ledger = ledger
        self.policy = policy
        self.k = k

    def limit(self, client: str) -> float:
        """``client``'s budget per period."""
        return self.policy.budgets.get(client, self.policy.epsilon_per_day)

    def budget_left(self, client: str) -> Spend:
        return self.ledger.left(client, self.limit(client))

    def release(self, client: str, tool: str, plan: AggregatePlan, scope: DataScope, *,
                restriction: exp.Query | None, sql: list[str]) -> tuple[ReleasedTable, PrivacyInfo]:
        """The released answer to ``plan`` for ``client`` (cached, or new and paid for)."""
        key = self._key(tool, plan, scope)
        earlier = self.ledger.released(key)
        if earlier is not None:
            table = ReleasedTable.model_validate_json(earlier)
            left = self.budget_left(client)
            return table, PrivacyInfo(epsilon=0.0, epsilon_left=left.left, period=left.period, cached=True, noise=table.noise)
        spend = self.ledger.reserve(client, self.policy.epsilon_per_call, limit=self.limit(client))
        try:
            result = self.reader.run(plan.query, scope, restriction=restriction)
            sql.append(result.sql)
            table = self._noisy(plan, result.table)
        except BaseException:
            self.ledger.refund(client, spend)
            raise
        stored = ReleasedTable.model_validate_json(self.ledger.release(key, table.model_dump_json().encode()))
        return stored, PrivacyInfo(epsilon=spend.epsilon, epsilon_left=spend.left, period=spend.period, cached=False,
                                   noise=stored.noise)

    def _key(self, tool: str, plan: AggregatePlan, scope: DataScope) -> str:
        catalog = self.reader.catalog
        policy = self.policy
        parts = [catalog.snapshot_id, str(catalog.reference_time), scope_fingerprint(scope), tool, plan.canonical,
                 self.k, policy.epsilon_per_call, policy.max_cells_per_patient, policy.max_rows_per_patient, policy.delta]
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()

    # --------------------------------------------------------------------------- the mechanism

    def _noisy(self, plan: AggregatePlan, rows: pa.Table) -> ReleasedTable:
        frame = pl.from_arrow(rows)
        assert isinstance(frame, pl.DataFrame)
        dims = [DIMENSION.format(i) for i in range(len(plan.dimensions))]
        if not dims:
            cells_bound = 1
        elif plan.cells_exact:
            cells_bound = plan.cells_per_patient
        else:
            cells_bound = min(plan.cells_per_patient, self.policy.max_cells_per_patient)
        # a plan whose bound is exact (each patient in that many cells at most) needs no cut
        frame, truncated = (frame, False) if plan.cells_exact else _bound_cells(frame, dims, cells_bound)
        # the patient counts (which decide what is shown) get the whole epsilon, or half of it
        # when other statistics share the call; those split the rest by weight
        others = sum(s.weight for s in plan.statistics if s.kind != "patients")
        epsilon = self.policy.epsilon_per_call
        counts_epsilon = epsilon if others == 0 else epsilon / 2
        rows_bound = min(plan.rows_per_patient or self.policy.max_rows_per_patient, self.policy.max_rows_per_patient)
        budget = _Budget(epsilon / 2 / others if others else 0.0, cells_bound, rows_bound)
        exact = _exact_cells(frame, dims, plan.statistics, budget.rows)
        if plan.domain is not None:
            exact = _with_domain(exact, dims, plan.domain)
        noise: list[NoiseInfo] = []
        counted, scale = noisy_counts(exact["patients"].to_list(), sensitivity=cells_bound, epsilon=counts_epsilon)
        patients = [max(0, n) for n in counted]
        noise.append(NoiseInfo(statistic="patients", epsilon=counts_epsilon, scale=scale))
        keys = [tuple(_text(v) for v in row) for row in exact.select(dims).rows()] if dims else [()]
        counts = dict(zip(keys, patients, strict=True))
        # a cell's key is public when it is known without the data (a sex, an age band, a view,
        # a part of a comparison): listed always, shown from k; other keys come from the data (a
        # code, a region): shown from a threshold that keeps a one-patient cell out (delta)
        public = set(counts) if plan.public_keys or not dims else _domain_keys(plan.domain)
        keyed_threshold = self._threshold(scale, keyed=True)
        threshold = self.k if public >= set(counts) else keyed_threshold

        def floor(key: tuple[str | None, ...]) -> int:
            return self.k if key in public else keyed_threshold

        primary = {key for key, n in counts.items() if n < floor(key)}
        hidden = secondary_suppression(counts, self.k, hidden=primary) if dims else primary
        values = [patients if stat.kind == "patients" else self._statistic(stat, exact, budget, threshold, noise)
                  for stat in plan.statistics]
        # a cell whose key comes from the data and whose count is under its threshold is left out
        # altogether: listing it, or counting such cells, would say that someone is there
        listed = hidden - {key for key in primary if key not in public}
        cells = []
        for i, key in enumerate(keys):
            shown = key not in hidden
            if not shown and key not in listed:
                continue
            cells.append(ReleasedCell(
                key=list(key), noisy=counts[key], patients=counts[key] if shown else None,
                hidden=None if shown else (f"<{floor(key)}" if key in primary else "suppressed"),
                values=[column[i] if shown else None for column in values]))
        return ReleasedTable(dimensions=list(plan.dimensions), cells=cells, total=sum(patients), threshold=threshold,
                             suppressed=len(listed), truncated=truncated, noise=noise)

    def _threshold(self, scale: float, *, keyed: bool) -> int:
        """``k``, raised when a cell whose key comes from the data (a code, a region) could show
        for one patient with probability over ``delta`` (its noisy count reaching the threshold)."""
        if not keyed:
            return self.k
        return max(self.k, math.ceil(1 + scale * math.log(1 / (2 * self.policy.delta))))

    @staticmethod
    def _statistic(stat: Statistic, exact: pl.DataFrame, budget: _Budget, threshold: int,
                   noise: list[NoiseInfo]) -> list[float | int | None]:
        """One statistic's noisy value per cell (None where its patients are under the threshold)."""
        column, info = _noisy_statistic(stat, exact, budget, threshold)
        noise.extend(info)
        return column


def _noisy_statistic(stat: Statistic, exact: pl.DataFrame, budget: _Budget,
                     threshold: int) -> tuple[list[float | int | None], list[NoiseInfo]]:
    unit, cells, rows = budget.unit, budget.cells, budget.rows
    if stat.kind == "patients":
        return [], []  # filled from the cell's own noisy patient count
    if stat.kind in ("rows", "values"):
        name = "rows" if stat.kind == "rows" else f"n{stat.measure}"
        counted, scale = noisy_counts(exact[name].to_list(), sensitivity=cells * rows, epsilon=unit)
        # a row count under the threshold is not shown either, even in a cell of enough patients
        return [n if n >= threshold else None for n in counted], [NoiseInfo(statistic=stat.name, epsilon=unit, scale=scale)]
    assert stat.measure is not None and stat.bounds is not None
    low, high = stat.bounds
    largest = max(abs(low), abs(high))
    with_value, with_scale = noisy_counts(exact[f"with{stat.measure}"].to_list(), sensitivity=cells, epsilon=unit)
    enough = [n >= threshold for n in with_value]
    if stat.kind in ("median", "quantile"):
        alpha = 0.5 if stat.kind == "median" else float(stat.alpha or 0.5)
        out: list[float | int | None] = []
        scale = 0.0
        for ok, data in zip(enough, exact[f"list{stat.measure}"].to_list(), strict=True):
            value, scale = noisy_quantile(data or [], bounds=stat.bounds, alpha=alpha, contributions=1, epsilon=unit / cells)
            out.append(_round(value) if ok else None)
        # the patients-with-value count it was gated on shares this statistic's epsilon
        return out, [NoiseInfo(statistic=stat.name, epsilon=unit, scale=scale or with_scale)]
    sums, sum_scale = noisy_sums(exact[f"sum{stat.measure}"].to_list(), sensitivity=cells * largest, epsilon=unit)
    info = [NoiseInfo(statistic=f"{stat.name} (patients with a value)", epsilon=unit, scale=with_scale)]
    if stat.kind == "sum":
        return [_round(s) if ok else None for s, ok in zip(sums, enough, strict=True)], \
            [NoiseInfo(statistic=stat.name, epsilon=unit, scale=sum_scale)]
    means = [min(max(s / n, low), high) if ok and n > 0 else None for s, n, ok in zip(sums, with_value, enough, strict=True)]
    info.append(NoiseInfo(statistic=f"{stat.name} (sum)", epsilon=unit, scale=sum_scale))
    if stat.kind == "mean":
        return [None if m is None else _round(m) for m in means], info
    squares, square_scale = noisy_sums(exact[f"squares{stat.measure}"].to_list(), sensitivity=cells * largest ** 2,
                                       epsilon=unit)
    info.append(NoiseInfo(statistic=f"{stat.name} (sum of squares)", epsilon=unit, scale=square_scale))
    deviations: list[float | int | None] = []
    for mean, square, n in zip(means, squares, with_value, strict=True):
        deviations.append(None if mean is None else _round(math.sqrt(max(0.0, square / n - mean * mean))))
    return deviations, info


def _bound_cells(frame: pl.DataFrame, dims: list[str], bound: int) -> tuple[pl.DataFrame, bool]:
    """Keep at most ``bound`` cells per patient (chosen by a fixed hash of patient and cell, so
    the same question keeps the same ones); True when some patient lost cells."""
    if not dims or frame.is_empty():
        return frame, False
    counts = frame.group_by(PK).len()
    if counts["len"].max() <= bound:  # type: ignore[operator]
        return frame, False
    order = pl.struct([PK, *dims]).hash(seed=_HASH_SEED)
    kept = frame.filter(order.rank("ordinal").over(PK) <= bound)
    return kept, True


def _domain_keys(domain: Sequence[Sequence[str | None]] | None) -> set[tuple[str | None, ...]]:
    """Every key of a product of per-dimension values (none without a domain)."""
    keys: set[tuple[str | None, ...]] = {()} if domain is not None else set()
    for values in domain or ():
        keys = {(*key, value) for key in keys for value in values}
    return keys


def _with_domain(exact: pl.DataFrame, dims: list[str], domain: Sequence[Sequence[str | None]]) -> pl.DataFrame:
    """``exact`` with a row for every key of ``domain`` too (the product of each dimension's known
    values), empty cells counted as zero: an empty cell is noised and shown like any other, so
    whether a cell exists reveals nothing."""
    keys = pl.DataFrame({dims[0]: pl.Series(list(domain[0]), dtype=pl.Utf8)})
    for name, values in zip(dims[1:], domain[1:], strict=True):
        keys = keys.join(pl.DataFrame({name: pl.Series(list(values), dtype=pl.Utf8)}), how="cross")
    joined = keys.join(exact, on=dims, how="full", coalesce=True, nulls_equal=True)  # and the cells outside it
    fills = []
    for name, dtype in joined.schema.items():
        if name in dims:
            continue
        if isinstance(dtype, pl.List):
            fills.append(pl.col(name).fill_null(pl.lit([], dtype=dtype)))
        else:
            fills.append(pl.col(name).fill_null(0))
    return joined.with_columns(fills).sort(dims, nulls_last=True)


def _exact_cells(frame: pl.DataFrame, dims: list[str], statistics: Sequence[Statistic], rows: int) -> pl.DataFrame:
    """Per cell: patients, bounded rows, and per measure the bounded values, patients with a
    value, the sum and sum of squares of their per-patient values, and the values as a list."""
    aggregates = [pl.len().alias("patients"), pl.col(ROWS).clip(upper_bound=rows).sum().alias("rows")]
    for measure in sorted({s.measure for s in statistics if s.measure is not None}):
        value, count = pl.col(MEASURE_VALUE.format(measure)), pl.col(MEASURE_COUNT.format(measure))
        aggregates += [count.clip(upper_bound=rows).sum().alias(f"n{measure}"), (count > 0).sum().alias(f"with{measure}"),
                       value.sum().alias(f"sum{measure}"), (value * value).sum().alias(f"squares{measure}"),
                       value.drop_nulls().alias(f"list{measure}")]
    if not dims:  # one cell, even with no patient at all
        return frame.select([a.implode() if a.meta.output_name().startswith("list") else a for a in aggregates])
    frame = frame.with_columns([pl.col(d).cast(pl.Utf8) for d in dims])  # keys compare as text
    return frame.group_by(dims).agg(aggregates).sort(dims, nulls_last=True)


def scope_fingerprint(scope: DataScope) -> str:
    """A stable text for a scope: answers are shared only between identical scopes."""
    cohort: Any = scope.cohort
    if cohort is not None and not isinstance(cohort, str):
        cohort = cohort.model_dump(mode="json")
    return json.dumps({
        "views": sorted(scope.views) if scope.views is not None else None,
        "sources": sorted(scope.sources) if scope.sources is not None else None,
        "cohort": cohort,
        "hidden": {v: sorted(c) for v, c in sorted(scope.hidden_columns.items())},
        "generalized": {v: dict(sorted(c.items())) for v, c in sorted(scope.generalized_columns.items())},
    }, sort_keys=True, default=str)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _round(value: float) -> float:
    return float(f"{value:.4g}")
