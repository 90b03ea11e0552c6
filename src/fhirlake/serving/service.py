"""The cohort service: every answer the MCP tools give, as plans released under budget and noise.

One :class:`CohortService` per server: the read-only :class:`~fhirlake.serving.reader.GoldReader`,
the :class:`~fhirlake.serving.release.Releaser` (ledger, noise, k) and the saved cohorts. Every
tool turns its question into an :class:`~fhirlake.serving.plan.AggregatePlan` (the aggregate
language for SQL, :mod:`fhirlake.serving.cohort_plans` for cohorts and the catalog tools) and
hands it to the releaser: one enforcement point. Each method takes the caller's id and
:class:`~fhirlake.serving.scope.DataScope` and a :class:`Trace` it fills with the SQL it ran and
what it suppressed (for the audit record); answers hold noisy counts and statistics only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sqlglot import exp

from fhirlake.cohorts.compiler import CohortCompiler
from fhirlake.cohorts.model import CohortDefinition, Measure
from fhirlake.serving import cohort_plans
from fhirlake.serving.answers import (
    BreakdownAnswer,
    Cell,
    CodeMatch,
    CodeSearchAnswer,
    ColumnAnswer,
    CompareAnswer,
    CountAnswer,
    Freshness,
    PrivacyInfo,
    SavedCohortAnswer,
    SqlAnswer,
    ValueCount,
    ViewDescription,
    ViewsAnswer,
    ViewSummary,
)
from fhirlake.serving.catalog import ColumnInfo, GoldCatalog
from fhirlake.serving.errors import QueryRefused, UnknownCohortError
from fhirlake.serving.grammar import PER_PATIENT_VIEWS, compile_sql
from fhirlake.serving.ledger import PrivacyLedger
from fhirlake.serving.plan import AggregatePlan
from fhirlake.serving.reader import GoldReader
from fhirlake.serving.release import PrivacyPolicy, ReleasedCell, ReleasedTable, Releaser
from fhirlake.serving.scope import DataScope
from fhirlake.serving.suppression import Count, SuppressionPolicy

__all__ = ["CohortService", "Trace"]

SHARED = "*"
_MAX_SQL_ROWS = 1000
_LOW_CARDINALITY = 25
_LISTED_ROW_COLUMNS = 4  # value lists of a view with many rows per patient
STATE_FOLDER = "_fhirlake/serving"


@dataclass
class Trace:
    """What one call did, for the audit record: the SQL run, cells suppressed, rows returned."""

    sql: list[str] = field(default_factory=list)
    suppressed: int = 0
    rows: int = 0
    epsilon: float = 0.0


class CohortService:
    """Noisy aggregate answers over the gold views, scoped, budgeted and suppressed.

    ``state_dir`` holds the privacy ledger (budgets and released answers), shared by every
    server process on the lake; by default ``<lake>/_fhirlake/serving/``.
    """

    def __init__(self, reader: GoldReader, *, policy: SuppressionPolicy | None = None, privacy: PrivacyPolicy | None = None,
                 state_dir: str | Path | None = None) -> None:
        self.reader = reader
        self.policy = policy or SuppressionPolicy()
        self.privacy = privacy or PrivacyPolicy()
        self.ledger = PrivacyLedger(Path(state_dir) if state_dir is not None else reader.root / STATE_FOLDER)
        self.releaser = Releaser(reader, self.ledger, self.privacy, self.policy.k)
        self._cohorts: dict[str, dict[str, CohortDefinition]] = {}
        self._lock = threading.Lock()

    @property
    def k(self) -> int:
        return self.policy.k

    def close(self) -> None:
        self.ledger.close()

    # ------------------------------------------------------------------------ saved cohorts

    def save_cohort(self, client: str, name: str, cohort: CohortDefinition, scope: DataScope, trace: Trace) -> SavedCohortAnswer:
        """Save ``cohort`` as ``name`` for ``client`` (after counting it, which checks it compiles).

        A shared cohort's name is refused: a scope's restriction can name a shared cohort, and a
        client's own cohort of that name would shadow it in the client's definitions."""
        with self._lock:
            if name in self._cohorts.get(SHARED, {}):
                raise QueryRefused(f"{name!r} is a shared cohort: save yours under another name")
        counted = self.count(client, cohort, scope, trace)
        with self._lock:
            self._cohorts.setdefault(client, {})[name] = cohort
        return SavedCohortAnswer(name=name, patients=counted.patients, note=counted.note, privacy=counted.privacy)

    def share_cohort(self, name: str, cohort: CohortDefinition) -> None:
        """Make ``cohort`` known to every client as ``name`` (e.g. a scope's cohort restriction)."""
        with self._lock:
            self._cohorts.setdefault(SHARED, {})[name] = cohort

    def cohort(self, client: str, name: str) -> CohortDefinition:
        with self._lock:
            for owner in (client, SHARED):
                found = self._cohorts.get(owner, {}).get(name)
                if found is not None:
                    return found
            known = sorted(set(self._cohorts.get(client, {})) | set(self._cohorts.get(SHARED, {})))
        raise UnknownCohortError(f"no saved cohort {name!r} (saved: {', '.join(known) or 'none'})")

    def saved_cohorts(self, client: str) -> list[str]:
        with self._lock:
            return sorted(set(self._cohorts.get(client, {})) | set(self._cohorts.get(SHARED, {})))

    # ------------------------------------------------------------------------ catalog

    def freshness(self) -> Freshness:
        catalog = self.reader.catalog
        return Freshness(snapshot_id=catalog.snapshot_id, reference_time=_iso(catalog.reference_time),
                         built_at=_iso(catalog.built_at))

    def list_views(self, client: str, scope: DataScope, trace: Trace) -> ViewsAnswer:
        views = [v for v in self.gold.views.values() if scope.allows_view(v.name) and v.has_patient]
        counts: dict[str, Count] = {}
        privacy = self.budget(client)
        if views:
            table, privacy = self._release(client, "list_views", cohort_plans.view_patients(views), scope, trace)
            counts = {str(cell.key[0]): self._count(cell) for cell in table.cells}
        summaries = [ViewSummary(name=v.name, description=v.description, patients=counts.get(v.name, self.policy.count(0)),
                                 columns=len([c for c in v.columns if c.name not in scope.hidden(v.name)])) for v in views]
        return ViewsAnswer(freshness=self.freshness(), k=self.k, views=summaries, privacy=privacy)

    def describe_view(self, client: str, view: str, scope: DataScope, trace: Trace) -> ViewDescription:
        info = self.gold.view(view)
        if info is None or not scope.allows_view(view) or not info.has_patient:
            raise QueryRefused(f"unknown view {view!r}: list_views shows the views you can query")
        hidden = scope.hidden(view)
        columns = [c for c in info.columns if c.name not in hidden]
        candidates = [c for c in columns if c.role is not None and c.role.role == "dimension" and c.type in ("VARCHAR", "BOOLEAN")]
        described = self._low_cardinality(view, candidates, scope, trace)
        plan = cohort_plans.column_values(info, described)
        table, privacy = self._release(client, "describe_view", plan, scope, trace)
        values: dict[str, list[ValueCount]] = {}
        suppressed = False
        for cell in table.cells:
            if cell.key[0] == cohort_plans.ALL_PATIENTS:
                continue
            if cell.hidden is not None:  # a rare value is itself identifying: left out, not listed as '<k'
                suppressed = True
                continue
            values.setdefault(str(cell.key[0]), []).append(ValueCount(value=cell.key[1], patients=self._count(cell)))
        total = next((c for c in table.cells if c.key[0] == cohort_plans.ALL_PATIENTS), None)
        patients = self._count(total) if total is not None else self.policy.count(0)
        answers = [ColumnAnswer(name=c.name, type=c.type, description=c.description, key=c.is_key,
                                role=c.role.role if c.role else None, bounds=list(c.role.bounds) if c.role and c.role.bounds else None,
                                values=sorted(values.get(c.name, []), key=lambda v: -(v.patients.count or 0))
                                if c in described else None)
                   for c in columns]
        return ViewDescription(name=view, description=info.description, freshness=self.freshness(), patients=patients,
                               columns=answers, note=self._note(suppressed or patients.suppressed, table), privacy=privacy)

    def _low_cardinality(self, view: str, columns: list[ColumnInfo], scope: DataScope, trace: Trace) -> list[ColumnInfo]:
        """The columns with few distinct values (at most 25, approximately): those worth listing.
        Which columns qualify is a property of the column's vocabulary, never shown as a count."""
        if not columns:
            return []
        stats = exp.select(*[exp.func("approx_count_distinct", exp.column(c.name, quoted=True)).as_(f"c{i}")
                             for i, c in enumerate(columns)]).from_(exp.table_(view, db="gold"))
        result = self.reader.run(stats, scope, restriction=self._restriction(scope))
        trace.sql.append(result.sql)
        row = result.table.to_pylist()[0]
        few = sorted((int(row[f"c{i}"] or 0), i) for i in range(len(columns)) if int(row[f"c{i}"] or 0) <= _LOW_CARDINALITY)
        if view not in PER_PATIENT_VIEWS:  # a scan of (patient, value) pairs per column: the fewest-valued ones only
            few = few[:_LISTED_ROW_COLUMNS]
        return [columns[i] for _, i in sorted(few, key=lambda pair: pair[1])]

    def search_codes(self, client: str, text: str, scope: DataScope, trace: Trace, *, limit: int = 25) -> CodeSearchAnswer:
        """Codes present in the lake whose display contains ``text`` (case-insensitive), with noisy patient counts."""
        needle = text.strip().lower()
        if len(needle) < 2:
            raise QueryRefused("search text must have at least 2 characters")
        plan = cohort_plans.code_search(self.gold, scope, needle)
        if plan is None:
            return CodeSearchAnswer(text=text, matches=[], note="no coded view is visible to you", privacy=self.budget(client))
        table, privacy = self._release(client, "search_codes", plan, scope, trace)
        shown = sorted((c for c in table.cells if c.hidden is None), key=lambda c: (-(c.patients or 0), str(c.key[3])))
        matches = [CodeMatch(criterion=str(c.key[0]), view=str(c.key[1]), system=c.key[2], code=str(c.key[3]),
                             display=c.key[4], patients=self._count(c)) for c in shown[:limit]]
        hidden = len(table.cells) - len(shown)
        trace.suppressed += hidden
        note = self._note(False, table) if not hidden else (
            f"Codes held by too few patients to show (under {table.threshold}, noise included) are left out.")
        return CodeSearchAnswer(text=text, matches=matches, note=note, privacy=privacy)

    # ------------------------------------------------------------------------ cohorts

    def compiler(self, client: str) -> CohortCompiler:
        reference = self.reader.catalog.reference_time
        return CohortCompiler(lambda name: self.cohort(client, name),
                              reference.date() if reference is not None else datetime.now(UTC).date())

    def count(self, client: str, cohort: CohortDefinition, scope: DataScope, trace: Trace) -> CountAnswer:
        compiler = self.compiler(client)
        plan = cohort_plans.count(compiler, cohort)
        table, privacy = self._release(client, "count_cohort", plan, scope, trace)
        count = self._count(table.cells[0])
        trace.suppressed += int(count.suppressed)
        return CountAnswer(patients=count, index_date=compiler.index_date(cohort).isoformat(),
                           note=self._note(count.suppressed, table), privacy=privacy)

    def breakdown(
        self, client: str, cohort: CohortDefinition, dimensions: Sequence[str], scope: DataScope, trace: Trace, *,
        measure: Measure | None = None, age_band_years: int = 10,
    ) -> BreakdownAnswer:
        if len(set(dimensions)) != len(dimensions) or len(dimensions) > 3:
            raise QueryRefused("give at most 3 distinct dimensions")
        compiler = self.compiler(client)
        bounds = measure.bounds if measure is not None and measure.bounds else self._value_bounds()
        plan = cohort_plans.breakdown(compiler, cohort, dimensions, measure=measure, bounds=bounds, age_band_years=age_band_years)
        table, privacy = self._release(client, "cohort_breakdown", plan, scope, trace)
        total = self.policy.count(table.total)
        index = compiler.index_date(cohort).isoformat()
        if total.suppressed:
            trace.suppressed += 1
            return BreakdownAnswer(total=total, index_date=index, dimensions=list(dimensions), cells=[], suppressed_cells=0,
                                   note=self._note(True, table) + " The cohort itself is under k: no breakdown is shown.",
                                   privacy=privacy)
        names = [s.name for s in plan.statistics]
        cells = []
        for cell in table.cells:
            stats = dict(zip(names, cell.values, strict=True))
            with_value = stats.get("with_value")
            cells.append(Cell(
                dimensions=dict(zip(dimensions, cell.key, strict=True)), patients=self._count(cell),
                with_value=(self.policy.count(int(with_value)) if with_value is not None else self._hidden(cell))
                if measure is not None else None,
                mean=_float(stats.get("mean")), median=_float(stats.get("median")),
                p25=_float(stats.get("p25")), p75=_float(stats.get("p75"))))
        trace.suppressed += table.suppressed
        trace.rows = len(cells)
        return BreakdownAnswer(total=total, index_date=index, dimensions=list(dimensions), cells=cells,
                               suppressed_cells=table.suppressed, note=self._note(table.suppressed > 0, table), privacy=privacy)

    def compare(self, client: str, a: CohortDefinition, b: CohortDefinition, scope: DataScope, trace: Trace) -> CompareAnswer:
        """Patients in both, only in a, only in b (three disjoint noisy counts); a and b are their sums."""
        plan = cohort_plans.compare(self.compiler(client), a, b)
        table, privacy = self._release(client, "compare_cohorts", plan, scope, trace)
        noisy = {str(cell.key[0]): cell.noisy for cell in table.cells}
        parts = {name: noisy.get(name, 0) for name in ("both", "only_a", "only_b")}
        hidden = _compare_hidden(parts, table.threshold)
        shown: dict[str, int | None] = {name: None if name in hidden else n for name, n in parts.items()}
        for total, line in (("a", ("both", "only_a")), ("b", ("both", "only_b"))):
            # a total is the sum of its line's cells: consistent with them, hidden when its hidden part is small
            masked = [name for name in line if name in hidden]
            small = masked and sum(parts[name] for name in masked) < table.threshold
            shown[total] = None if small else sum(parts[name] for name in line)
        counts = {name: self.policy.count(n) if n is not None else
                  Count(count=None, shown=f"<{table.threshold}" if parts.get(name, 0) < table.threshold else "suppressed",
                        suppressed=True)
                  for name, n in shown.items()}
        suppressed = sum(c.suppressed for c in counts.values())
        trace.suppressed += suppressed
        return CompareAnswer(**counts, note=self._note(suppressed > 0, table), privacy=privacy)

    def _restriction(self, scope: DataScope) -> exp.Query | None:
        """The scope's cohort restriction as a query of patient keys, compiled with the shared
        cohorts only: a client's own saved cohorts must not be able to redefine its scope."""
        if scope.cohort is None:
            return None
        definition = self.cohort(SHARED, scope.cohort) if isinstance(scope.cohort, str) else scope.cohort
        return self.compiler(SHARED).patients(definition)

    def _value_bounds(self) -> tuple[float, float]:
        info = self.gold.view("observation")
        column = info.column("value_quantity") if info is not None else None
        if column is None or column.role is None or column.role.bounds is None:
            raise QueryRefused("the observation view declares no bounds for value_quantity: give the measure's bounds")
        return column.role.bounds

    # ------------------------------------------------------------------------ the aggregate language

    def run_sql(self, client: str, sql: str, scope: DataScope, trace: Trace, *, max_rows: int = _MAX_SQL_ROWS) -> SqlAnswer:
        allowed = frozenset(v for v in self.gold.views if scope.allows_view(v))
        plan = compile_sql(sql, self.gold, allowed_views=allowed)  # hidden columns are not in the scoped views
        table, privacy = self._release(client, "run_aggregate_sql", plan, scope, trace)
        rows = [cell for cell in table.cells if cell.hidden is None]
        for name, descending in reversed(plan.order):
            rows.sort(key=_by_column(plan.columns.index(name)), reverse=descending)
        if plan.limit is not None:
            rows = rows[:plan.limit]
        truncated = len(rows) > max_rows
        shown = [_row(cell) for cell in rows[:max_rows]]
        trace.suppressed += table.suppressed
        trace.rows = len(shown)
        note = self._note(table.suppressed > 0, table)
        if table.suppressed:
            note += f" {table.suppressed} row(s) were left out so that a total cannot reveal a group too small to show."
        if table.truncated:
            note += (" Some patients fall in more groups than the bound: each counts in some of them; filter the grouped column "
                     "with WHERE ... IN (...) to count them fully.")
        return SqlAnswer(columns=plan.columns, rows=shown, suppressed_rows=table.suppressed, truncated=truncated, note=note,
                         privacy=privacy)

    # ------------------------------------------------------------------------ helpers

    def _release(self, client: str, tool: str, plan: AggregatePlan, scope: DataScope,
                 trace: Trace) -> tuple[ReleasedTable, PrivacyInfo]:
        table, privacy = self.releaser.release(client, tool, plan, scope, restriction=self._restriction(scope), sql=trace.sql)
        trace.epsilon += privacy.epsilon
        return table, privacy

    def budget(self, client: str) -> PrivacyInfo:
        """What ``client`` has left today (an answer that releases nothing spends nothing)."""
        left = self.releaser.budget_left(client)
        return PrivacyInfo(epsilon=0.0, epsilon_left=left.left, period=left.period, cached=False, noise=[])

    def _count(self, cell: ReleasedCell) -> Count:
        if cell.patients is None:
            return self._hidden(cell)
        return self.policy.count(cell.patients)

    @staticmethod
    def _hidden(cell: ReleasedCell) -> Count:
        return Count(count=None, shown=cell.hidden or "suppressed", suppressed=True)

    def _note(self, suppressed: bool, table: ReleasedTable | None = None) -> str:
        noise = (" Counts and statistics carry random noise (differential privacy): see privacy.noise for its scale; "
                 "asking the same question again gives the same answer.")
        threshold = table.threshold if table is not None else self.k
        unlisted = (f" Groups of fewer than {threshold} patients (noise included) whose value comes from the data (a code, "
                    "a region) are not listed at all." if table is not None and table.dimensions else "")
        if suppressed:
            return (f"Some counts are suppressed: counts under {threshold} patients are shown as '<{threshold}', and some larger "
                    "ones as 'suppressed' so the small ones cannot be worked out from totals." + unlisted + noise)
        return f"No count shown is under {threshold} patients (noise included)." + unlisted + noise

    @property
    def gold(self) -> GoldCatalog:
        return self.reader.catalog


def _compare_hidden(parts: dict[str, int], threshold: int) -> set[str]:
    """The parts of a comparison to hide: those under the threshold, and in each line (a: both,
    only_a; b: both, only_b) a second one beside a single hidden part, so that a total and the
    shown part never give a hidden one away."""
    hidden = {name for name, n in parts.items() if n < threshold}
    changed = True
    while changed:
        changed = False
        for line in (("both", "only_a"), ("both", "only_b")):
            masked = [name for name in line if name in hidden]
            if len(masked) == 1:
                hidden |= set(line)
                changed = True
    return hidden


def _row(cell: ReleasedCell) -> list[str | int | float | bool | None]:
    return [*cell.key, *cell.values]


def _by_column(position: int) -> Callable[[ReleasedCell], tuple[int, float, str]]:
    return lambda cell: _sort_key(_row(cell)[position])


def _sort_key(value: object) -> tuple[int, float, str]:
    if value is None:
        return (2, 0.0, "")
    if isinstance(value, int | float):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
