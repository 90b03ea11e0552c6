"""The cohort service: every answer the MCP tools give, computed under a scope and k.

One :class:`CohortService` per server: the read-only :class:`~fhirlake.serving.reader.GoldReader`,
the suppression policy, the differencing guard and the saved cohorts. Each method takes the
caller's id and :class:`~fhirlake.serving.scope.DataScope` and a :class:`Trace` it fills with the
SQL it ran and what it suppressed (for the audit record); the answer holds counts only.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from sqlglot import exp

from fhirlake.cohorts.compiler import PK, CohortCompiler
from fhirlake.cohorts.model import CohortDefinition, Measure
from fhirlake.serving.answers import (
    BreakdownAnswer,
    Cell,
    CodeMatch,
    CodeSearchAnswer,
    ColumnAnswer,
    CompareAnswer,
    CountAnswer,
    Freshness,
    SavedCohortAnswer,
    SqlAnswer,
    ValueCount,
    ViewDescription,
    ViewsAnswer,
    ViewSummary,
)
from fhirlake.serving.catalog import GoldCatalog
from fhirlake.serving.errors import QueryRefused, UnknownCohortError
from fhirlake.serving.guard import PreparedQuery, prepare
from fhirlake.serving.history import DifferencingGuard, Keys
from fhirlake.serving.reader import GoldReader
from fhirlake.serving.scope import DataScope
from fhirlake.serving.suppression import SuppressionPolicy, secondary_suppression

__all__ = ["CohortService", "Trace"]

SHARED = "*"
_LOW_CARDINALITY = 25
_MAX_SQL_ROWS = 1000
_MAX_SQL_GROUPS = 100_000  # suppression needs every group, before LIMIT/OFFSET and truncation
# (criterion kind, view, code column, system column, display column) searched by search_codes
_CODE_COLUMNS = (
    ("condition", "condition", "code", "code_system", "code_display"),
    ("observation", "observation", "code", "code_system", "code_display"),
    ("observation", "observation_component", "code", "code_system", "code_display"),
    ("medication", "medication_request", "medication_code", "medication_code_system", "medication_code_display"),
    ("procedure", "procedure", "code", "code_system", "code_display"),
    ("immunization", "immunization", "vaccine_code", None, "vaccine_display"),
    ("encounter", "encounter", "type_code", "type_code_system", "type_code_display"),
)


@dataclass
class Trace:
    """What one call did, for the audit record: the SQL run, cells suppressed, rows returned."""

    sql: list[str] = field(default_factory=list)
    suppressed: int = 0
    rows: int = 0


class CohortService:
    """Aggregate answers over the gold views, scoped and suppressed."""

    def __init__(self, reader: GoldReader, *, policy: SuppressionPolicy | None = None) -> None:
        self.reader = reader
        self.policy = policy or SuppressionPolicy()
        self.history = DifferencingGuard(self.policy.k)
        self._cohorts: dict[str, dict[str, CohortDefinition]] = {}
        self._lock = threading.Lock()

    @property
    def k(self) -> int:
        return self.policy.k

    # ------------------------------------------------------------------------ saved cohorts

    def save_cohort(self, client: str, name: str, cohort: CohortDefinition, scope: DataScope, trace: Trace) -> SavedCohortAnswer:
        """Save ``cohort`` as ``name`` for ``client`` (after checking it compiles and counting it).

        A shared cohort's name is refused: a scope's restriction can name a shared cohort, and a
        client's own cohort of that name would shadow it in the client's definitions."""
        with self._lock:
            if name in self._cohorts.get(SHARED, {}):
                raise QueryRefused(f"{name!r} is a shared cohort: save yours under another name")
        keys = self._patient_keys(client, cohort, scope, trace)
        with self._lock:
            self._cohorts.setdefault(client, {})[name] = cohort
        count = self.policy.count(len(keys))
        return SavedCohortAnswer(name=name, patients=count, note=self._note(count.suppressed))

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

    def list_views(self, scope: DataScope, trace: Trace) -> ViewsAnswer:
        catalog = self.reader.catalog
        views = [v for v in catalog.views.values() if scope.allows_view(v.name) and v.has_patient]
        counted = [exp.select(exp.Literal.string(v.name).as_("view"), exp.Count(this=exp.Distinct(expressions=[exp.column(PK)])).as_("n"))
                   .from_(exp.table_(v.name, db="gold")) for v in views]
        counts: dict[str, int] = {}
        if counted:
            union: exp.Query = counted[0]
            for select in counted[1:]:
                union = exp.union(union, select, distinct=False)
            counts = {str(r["view"]): int(r["n"]) for r in self._run(union, scope, trace).to_pylist()}
        summaries = [ViewSummary(name=v.name, description=v.description, patients=self.policy.count(counts.get(v.name, 0)),
                                 columns=len([c for c in v.columns if c.name not in scope.hidden(v.name)])) for v in views]
        return ViewsAnswer(freshness=self.freshness(), k=self.k, views=summaries)

    def describe_view(self, view: str, scope: DataScope, trace: Trace) -> ViewDescription:
        info = self.reader.catalog.view(view)
        if info is None or not scope.allows_view(view) or not info.has_patient:
            raise QueryRefused(f"unknown view {view!r}: list_views shows the views you can query")
        hidden = scope.hidden(view)
        columns = [c for c in info.columns if c.name not in hidden]
        candidates = [c for c in columns if not c.is_key and c.type in ("VARCHAR", "BOOLEAN")]
        table = exp.table_(view, db="gold")
        stats = exp.select(exp.Count(this=exp.Distinct(expressions=[exp.column(PK)])).as_("patients"),
                           *[exp.func("approx_count_distinct", exp.column(c.name, quoted=True)).as_(f"c{i}")
                             for i, c in enumerate(candidates)]).from_(table)
        row = self._run(stats, scope, trace).to_pylist()[0]
        answers = []
        suppressed_any = False
        for column in columns:
            values = None
            position = candidates.index(column) if column in candidates else -1
            if position >= 0 and int(row[f"c{position}"] or 0) <= _LOW_CARDINALITY:
                values, hidden_values = self._values(view, column.name, scope, trace)
                suppressed_any |= hidden_values
            answers.append(ColumnAnswer(name=column.name, type=column.type, description=column.description,
                                        key=column.is_key, values=values))
        patients = self.policy.count(int(row["patients"]))
        return ViewDescription(name=view, description=info.description, freshness=self.freshness(), patients=patients,
                               columns=answers, note=self._note(suppressed_any or patients.suppressed))

    def _values(self, view: str, column: str, scope: DataScope, trace: Trace) -> tuple[list[ValueCount], bool]:
        ref = exp.column(column, quoted=True)
        select = (exp.select(exp.cast(ref, "VARCHAR").as_("value"), exp.Count(this=exp.Distinct(expressions=[exp.column(PK)])).as_("n"))
                  .from_(exp.table_(view, db="gold")).group_by(exp.cast(ref.copy(), "VARCHAR")).order_by("n DESC"))
        rows = self._run(select, scope, trace).to_pylist()
        cells = {(r["value"],): int(r["n"]) for r in rows}
        hidden = secondary_suppression(cells, self.k)
        trace.suppressed += len(hidden)
        # a rare value is itself identifying (a date of death): hidden values are left out, not listed as '<k'
        return [ValueCount(value=r["value"], patients=self.policy.count(int(r["n"])))
                for r in rows if (r["value"],) not in hidden], bool(hidden)

    def search_codes(self, text: str, scope: DataScope, trace: Trace, *, limit: int = 25) -> CodeSearchAnswer:
        """Codes present in the lake whose display contains ``text`` (case-insensitive), with patient counts."""
        needle = text.strip().lower()
        if len(needle) < 2:
            raise QueryRefused("search text must have at least 2 characters")
        catalog = self.reader.catalog
        selects = []
        for kind, view, code, system, display in _CODE_COLUMNS:
            if catalog.view(view) is None or not scope.allows_view(view) or {code, display} & scope.hidden(view):
                continue
            system_expr: exp.Expr = exp.column(system) if system and system not in scope.hidden(view) else exp.cast(exp.null(), "VARCHAR")
            found = exp.or_(exp.func("contains", exp.func("lower", exp.column(display)), exp.Literal.string(needle)),
                              exp.EQ(this=exp.func("lower", exp.column(code)), expression=exp.Literal.string(needle)))
            selects.append(
                exp.select(exp.Literal.string(kind).as_("criterion"), exp.Literal.string(view).as_("view"),
                           system_expr.as_("system"), exp.column(code).as_("code"), exp.func("any_value", exp.column(display)).as_("display"),
                           exp.Count(this=exp.Distinct(expressions=[exp.column(PK)])).as_("n"))
                .from_(exp.table_(view, db="gold")).where(found).group_by("1", "2", "3", "4"))
        if not selects:
            return CodeSearchAnswer(text=text, matches=[], note="no coded view is visible to you")
        union: exp.Query = selects[0]
        for select in selects[1:]:
            union = exp.union(union, select, distinct=False)
        ordered = exp.select("*").from_(exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier("m")))) \
            .order_by("n DESC", "code").limit(limit)
        rows = self._run(ordered, scope, trace).to_pylist()
        matches = [CodeMatch(criterion=r["criterion"], view=r["view"], system=r["system"], code=str(r["code"]),
                             display=r["display"], patients=self.policy.count(int(r["n"]))) for r in rows]
        suppressed = sum(m.patients.suppressed for m in matches)
        trace.suppressed += suppressed
        return CodeSearchAnswer(text=text, matches=matches, note=self._note(suppressed > 0))

    # ------------------------------------------------------------------------ cohorts

    def compiler(self, client: str) -> CohortCompiler:
        reference = self.reader.catalog.reference_time
        return CohortCompiler(lambda name: self.cohort(client, name),
                              reference.date() if reference is not None else datetime.now(UTC).date())

    def count(self, client: str, cohort: CohortDefinition, scope: DataScope, trace: Trace) -> CountAnswer:
        keys = self._patient_keys(client, cohort, scope, trace)
        count = self.policy.count(len(keys))
        trace.suppressed += int(count.suppressed)
        return CountAnswer(patients=count, index_date=self.compiler(client).index_date(cohort).isoformat(),
                           note=self._note(count.suppressed))

    def breakdown(
        self, client: str, cohort: CohortDefinition, dimensions: Sequence[str], scope: DataScope, trace: Trace, *,
        measure: Measure | None = None, age_band_years: int = 10,
    ) -> BreakdownAnswer:
        if len(set(dimensions)) != len(dimensions) or len(dimensions) > 3:
            raise QueryRefused("give at most 3 distinct dimensions")
        compiler = self.compiler(client)
        tree = compiler.breakdown_rows(cohort, dimensions, age_band_years=age_band_years, measure=measure)
        per_patient = self._run(tree, scope, trace, restriction=self._restriction(scope))
        keys = _patient_keys_of(per_patient)
        self.history.check(client, keys)
        total = self.policy.count(len(keys))
        index = compiler.index_date(cohort).isoformat()
        if total.suppressed:
            trace.suppressed += 1
            return BreakdownAnswer(total=total, index_date=index, dimensions=list(dimensions), cells=[], suppressed_cells=0,
                                   note=self._note(True) + " The cohort itself is under k: no breakdown is shown.")
        rows = _cells(per_patient.drop_columns([PK]), dimensions)
        cells = {tuple(_text(r[d]) for d in dimensions): int(r["patients"]) for r in rows}
        hidden = secondary_suppression(cells, self.k) if dimensions else set()
        answers = []
        for row in rows:
            key = tuple(_text(row[d]) for d in dimensions)
            hide = key in hidden
            with_value = int(row["with_value"])
            show_measure = measure is not None and not hide and with_value >= self.k
            answers.append(Cell(
                dimensions=dict(zip(dimensions, key, strict=True)), patients=self.policy.count(cells[key], hide=hide),
                with_value=self.policy.count(with_value, hide=hide) if measure is not None else None,
                mean=_number(row["mean"]) if show_measure else None, median=_number(row["median"]) if show_measure else None,
                p25=_number(row["p25"]) if show_measure else None, p75=_number(row["p75"]) if show_measure else None))
        trace.suppressed += len(hidden)
        trace.rows = len(answers)
        return BreakdownAnswer(total=total, index_date=index, dimensions=list(dimensions), cells=answers,
                               suppressed_cells=len(hidden), note=self._note(bool(hidden)))

    def compare(self, client: str, a: CohortDefinition, b: CohortDefinition, scope: DataScope, trace: Trace) -> CompareAnswer:
        keys_a = self._patient_keys(client, a, scope, trace, remember=False)
        keys_b = self._patient_keys(client, b, scope, trace, remember=False)
        self.history.check_pair(keys_a, keys_b)
        self.history.check(client, keys_a, what="cohort a")
        self.history.check(client, keys_b, what="cohort b")
        both = len(np.intersect1d(keys_a, keys_b, assume_unique=True))
        parts = {"a": len(keys_a), "b": len(keys_b), "both": both, "only_a": len(keys_a) - both, "only_b": len(keys_b) - both}
        # a = both + only_a and b = both + only_b: hiding one part of a sum hides a second one too
        hidden = {name for name, n in parts.items() if n < self.k}
        for total, left, right in (("a", "both", "only_a"), ("b", "both", "only_b")):
            if len({total, left, right} & hidden) == 1:
                hidden |= {total, left, right}
        counts = {name: self.policy.count(n, hide=name in hidden) for name, n in parts.items()}
        trace.suppressed += len(hidden)
        return CompareAnswer(**counts, note=self._note(bool(hidden)))

    def _restriction(self, scope: DataScope) -> exp.Query | None:
        """The scope's cohort restriction as a query of patient keys, compiled with the shared
        cohorts only: a client's own saved cohorts must not be able to redefine its scope."""
        if scope.cohort is None:
            return None
        definition = self.cohort(SHARED, scope.cohort) if isinstance(scope.cohort, str) else scope.cohort
        return self.compiler(SHARED).patients(definition)

    def _patient_keys(self, client: str, cohort: CohortDefinition, scope: DataScope, trace: Trace, *,
                      remember: bool = True) -> Keys:
        """The cohort's patient keys (sorted, unique); checked against the client's earlier answers."""
        table = self._run(self.compiler(client).patients(cohort), scope, trace, restriction=self._restriction(scope))
        keys = _patient_keys_of(table)
        if remember:
            self.history.check(client, keys)
        return keys

    # ------------------------------------------------------------------------ guarded SQL

    def run_sql(self, client: str, sql: str, scope: DataScope, trace: Trace, *, max_rows: int = _MAX_SQL_ROWS) -> SqlAnswer:
        prepared = prepare(sql, self.reader.catalog)
        restriction = self._restriction(scope)
        self.history.check_all(client, self._sql_patients(prepared, scope, trace, restriction))
        table = self._run(prepared.tree, scope, trace, restriction=restriction, max_rows=_MAX_SQL_GROUPS + 1)
        if table.num_rows > _MAX_SQL_GROUPS:
            raise QueryRefused(f"the query has more than {_MAX_SQL_GROUPS} groups: group by coarser values")
        rows = table.to_pylist()
        hidden = self._sql_hidden(prepared, rows)
        visible = [row for i, row in enumerate(rows) if i not in hidden]
        start = prepared.offset or 0
        visible = visible[start:] if prepared.limit is None else visible[start:start + prepared.limit]
        truncated = len(visible) > max_rows
        internal = set(prepared.k_columns) | set(prepared.dimensions)
        columns = [c for c in table.column_names if c not in internal]
        shown = [[_cell(row[c]) for c in columns] for row in visible[:max_rows]]
        trace.suppressed += len(hidden)
        trace.rows = len(shown)
        note = self._note(bool(hidden))
        if hidden:
            note += f" {len(hidden)} row(s) were left out: they aggregate fewer than {self.k} patients, or would reveal one that does."
        return SqlAnswer(columns=columns, rows=shown, suppressed_rows=len(hidden), truncated=truncated, note=note)

    def _sql_hidden(self, prepared: PreparedQuery, rows: list[dict[str, Any]]) -> set[int]:
        """The positions of the rows to leave out, computed over every group (before LIMIT/OFFSET).

        A row's size is its smallest k column (patients of a table, or feeding an aggregate).
        Grouped rows are cells keyed by their GROUP BY values, so secondary suppression protects
        each line of a multi-dimensional table, not just the list of rows as a whole.
        """
        sizes = [min(int(row[c] or 0) for c in prepared.k_columns) for row in rows]
        if not prepared.grouped or not prepared.dimensions:
            cells: dict[tuple[Any, ...], int] = {(i,): n for i, n in enumerate(sizes)}
            hidden = secondary_suppression(cells, self.k) if prepared.grouped and cells else \
                {key for key, n in cells.items() if n < self.k}
            return {int(key[0]) for key in hidden}
        keys = [tuple(_text(row[d]) for d in prepared.dimensions) for row in rows]
        cells = dict(zip(keys, sizes, strict=True))
        if len(cells) != len(keys):
            raise QueryRefused("the query's groups could not be told apart: show its GROUP BY expressions as plain columns")
        hidden_keys = secondary_suppression(cells, self.k) if cells else set()
        return {i for i, key in enumerate(keys) if key in hidden_keys}

    def _sql_patients(self, prepared: PreparedQuery, scope: DataScope, trace: Trace,
                      restriction: exp.Query | None) -> list[tuple[str, Keys]]:
        """The patients the query reads from each of its tables (after joins and WHERE), so the
        differencing guard sees a patient dropped from any table, not only the first."""
        patients = prepared.tree.copy()
        for part in ("group", "having", "order", "limit", "offset", "distinct"):
            patients.set(part, None)
        listed = [exp.alias_(exp.func("list", exp.Distinct(expressions=[exp.column(PK, table=alias)])), f"p{i}")
                  for i, alias in enumerate(prepared.tables)]
        patients.set("expressions", listed)
        row = self._run(patients, scope, trace, restriction=restriction).to_pylist()[0]
        sets = []
        for i, alias in enumerate(prepared.tables):
            values = [v for v in row[f"p{i}"] or [] if v is not None]
            sets.append((f"this query's patients (of {alias})", np.unique(np.asarray(values, dtype=np.uint64))))
        return sets

    # ------------------------------------------------------------------------ helpers

    def _run(self, tree: exp.Query, scope: DataScope, trace: Trace, *, restriction: exp.Query | None = None,
             max_rows: int | None = None) -> pa.Table:
        if restriction is None and scope.cohort is not None:
            restriction = self._restriction(scope)
        result = self.reader.run(tree, scope, restriction=restriction, max_rows=max_rows)
        trace.sql.append(result.sql)
        return result.table

    def _note(self, suppressed: bool) -> str:
        if suppressed:
            return (f"Some counts are suppressed: counts under {self.k} patients are shown as '<{self.k}', and some larger "
                    "ones as 'suppressed' so the small ones cannot be worked out from totals.")
        return f"Nothing was suppressed (every count shown is at least {self.k} patients)."

    @property
    def gold(self) -> GoldCatalog:
        return self.reader.catalog


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _patient_keys_of(table: pa.Table) -> Keys:
    """The distinct patient keys (``__fl_pk``) of a result, sorted."""
    keys: Keys = np.unique(table.column(PK).to_numpy(zero_copy_only=False).astype(np.uint64))
    return keys


def _cells(per_patient: pa.Table, dimensions: Sequence[str]) -> list[dict[str, Any]]:
    """Per-patient rows (``dims..., v``) to one row per cell: patients, with_value and the value's
    mean, median and quartiles (linear interpolation, as SQL's quantile_cont), in dimension order."""
    value = pl.col("v")
    aggregates = [pl.len().alias("patients"), value.count().alias("with_value"), value.mean().alias("mean"),
                  value.median().alias("median"), value.quantile(0.25, "linear").alias("p25"),
                  value.quantile(0.75, "linear").alias("p75")]
    frame = pl.from_arrow(per_patient)
    assert isinstance(frame, pl.DataFrame)
    if not dimensions:
        return frame.select(aggregates).to_dicts()
    cells = frame.group_by(list(dimensions)).agg(aggregates)
    return cells.sort(list(dimensions), nulls_last=True).to_dicts()


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _number(value: object) -> float | None:
    return round(float(value), 4) if isinstance(value, int | float) else None


def _cell(value: object) -> str | int | float | bool | None:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
