"""The checked form of every aggregate question: an :class:`AggregatePlan`.

Whatever the tool (the aggregate language of ``run_aggregate_sql``, or a cohort definition), a
question becomes one plan, and :mod:`fhirlake.serving.release` is the one place that runs plans
and releases their answers (budget, noise, k). A plan is:

* ``query``: a DuckDB query with one row per (patient, cell): ``__fl_pk`` (the patient key the
  scoped views carry), one column per dimension (``__fl_d0``…), ``__fl_rows`` (the patient's
  rows in the cell) and, per measure, ``__fl_v<i>`` (the patient's mean of its values in the
  cell, clamped to the measure's bounds) and ``__fl_n<i>`` (how many values it has there);
* the statistics to release per cell, each with its kind, measure and bounds;
* ``cells_per_patient``: how many cells one patient may count in (1 when every dimension is a
  property of the patient, so cells are disjoint sets of patients); the release bounds it by
  its policy unless ``cells_exact`` says the plan's own bound holds for every patient;
* ``rows_per_patient``: a true bound on a patient's rows in a cell (1 when every table has one
  row per patient), which narrows the noise of row counts; None: the release's bound;
* ``public_keys``: the cells' keys are known without the data (view names, the parts of a
  comparison, sexes, age bands), so a cell's mere presence reveals nothing and ``k`` alone
  is the display threshold;
* ``domain``: with public keys, every value of each dimension, so that empty cells are
  released too (noisy zeros) and a cell's presence says nothing;
* ``canonical``: the question in a normal form (the release cache key: asking the same
  question again, however it is written, gets the same noisy answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlglot import exp

__all__ = ["DIMENSION", "MEASURE_COUNT", "MEASURE_VALUE", "PK", "ROWS", "AggregatePlan", "Statistic", "StatisticKind"]

PK = "__fl_pk"
ROWS = "__fl_rows"
DIMENSION = "__fl_d{}"
MEASURE_VALUE = "__fl_v{}"
MEASURE_COUNT = "__fl_n{}"

StatisticKind = Literal["patients", "rows", "values", "sum", "mean", "median", "quantile", "stddev"]

#: How many independent noisy measurements each statistic takes (its share of a call's epsilon).
WEIGHTS: dict[str, int] = {"patients": 1, "rows": 1, "values": 1, "sum": 1, "mean": 2, "median": 1, "quantile": 1,
                           "stddev": 3}


@dataclass(frozen=True)
class Statistic:
    """One released column: ``name`` (as shown), ``kind``, the measure's index in the plan's
    query (``__fl_v<measure>``), its clamping ``bounds``, and ``alpha`` for a quantile."""

    name: str
    kind: StatisticKind
    measure: int | None = None
    bounds: tuple[float, float] | None = None
    alpha: float | None = None

    @property
    def weight(self) -> int:
        return WEIGHTS[self.kind]


@dataclass(frozen=True)
class AggregatePlan:
    """A checked aggregate question (see the module docstring)."""

    query: exp.Select
    dimensions: tuple[str, ...]
    statistics: tuple[Statistic, ...]
    canonical: str
    cells_per_patient: int = 1
    cells_exact: bool = False
    rows_per_patient: int | None = None
    public_keys: bool = False
    domain: tuple[tuple[str | None, ...], ...] | None = None
    order: tuple[tuple[str, bool], ...] = ()
    limit: int | None = None

    @property
    def columns(self) -> list[str]:
        """The answer's columns: the dimensions, then the statistics."""
        return [*self.dimensions, *(s.name for s in self.statistics)]
