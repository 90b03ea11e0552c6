"""The cohort tools' and catalog tools' questions as :class:`~fhirlake.serving.plan.AggregatePlan`.

A cohort definition compiles (:class:`~fhirlake.cohorts.compiler.CohortCompiler`) to a query of
its patients; here each tool wraps it into the same per-(patient, cell) form the aggregate
language produces, so the releaser is the one place every answer goes through:

* :func:`count`: one cell, the cohort's patients;
* :func:`breakdown`: cells by patient dimensions (each patient in one cell), and a measure's
  per-patient value for its mean and quartiles;
* :func:`compare`: three disjoint cells (both, only a, only b): the totals are their sums;
* :func:`view_patients`, :func:`column_values`, :func:`code_search`: what ``list_views``,
  ``describe_view`` and ``search_codes`` count.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlglot import exp

from fhirlake.cohorts.compiler import CohortCompiler
from fhirlake.cohorts.model import CohortDefinition, Measure
from fhirlake.serving.catalog import ColumnInfo, GoldCatalog, ViewInfo
from fhirlake.serving.plan import (
    DIMENSION,
    MEASURE_COUNT,
    MEASURE_VALUE,
    PK,
    ROWS,
    AggregatePlan,
    Statistic,
)
from fhirlake.serving.scope import DataScope

__all__ = ["ALL_PATIENTS", "breakdown", "code_search", "column_values", "compare", "count", "view_patients"]

#: The pseudo-column of ``describe_view`` whose one cell counts the view's patients.
ALL_PATIENTS = "*"
#: How many matching codes one patient may count for in a code search.
CODES_PER_PATIENT = 2
# (criterion kind, view, code column, system column, display column) searched by search_codes
CODE_COLUMNS = (
    ("condition", "condition", "code", "code_system", "code_display"),
    ("observation", "observation", "code", "code_system", "code_display"),
    ("observation", "observation_component", "code", "code_system", "code_display"),
    ("medication", "medication_request", "medication_code", "medication_code_system", "medication_code_display"),
    ("procedure", "procedure", "code", "code_system", "code_display"),
    ("immunization", "immunization", "vaccine_code", None, "vaccine_display"),
    ("encounter", "encounter", "type_code", "type_code_system", "type_code_display"),
)
_PATIENTS = Statistic("patients", "patients")
#: Breakdown dimensions whose values are known without the data (a cell's presence reveals nothing).
PUBLIC_DIMENSIONS = frozenset({"sex", "age_band", "deceased"})


def _rows(select: exp.Select, dimensions: Sequence[exp.Expr]) -> exp.Select:
    """``select`` (one row per patient, ``__fl_pk``) with the dimensions and ``__fl_rows`` added."""
    for i, dimension in enumerate(dimensions):
        select = select.select(exp.alias_(dimension, DIMENSION.format(i)), copy=False)
    return select.select(exp.alias_(exp.Literal.number(1), ROWS), copy=False)


def _canonical(tool: str, *parts: object) -> str:
    return json.dumps([tool, *parts], sort_keys=True, default=str)


def _dump(cohort: CohortDefinition, compiler: CohortCompiler) -> object:
    """The definition in a normal form (and/or operands and value lists sorted) with its index date."""
    return [_normal(cohort.model_dump(mode="json", exclude_none=True)), compiler.index_date(cohort).isoformat()]


def _normal(value: object) -> object:
    """``value`` with every list sorted (its order never changes a cohort: and/or operands, codes,
    sexes, regions) and duplicates dropped."""
    if isinstance(value, dict):
        return {key: _normal(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        items = {json.dumps(_normal(item), sort_keys=True): _normal(item) for item in value}
        return [items[key] for key in sorted(items)]
    return value


def count(compiler: CohortCompiler, cohort: CohortDefinition) -> AggregatePlan:
    """The cohort's patients: one cell."""
    return AggregatePlan(query=_rows(compiler.patients(cohort), []), dimensions=(), statistics=(_PATIENTS,), rows_per_patient=1,
                         canonical=_canonical("count", _dump(cohort, compiler)))


def breakdown(compiler: CohortCompiler, cohort: CohortDefinition, dimensions: Sequence[str], *, measure: Measure | None,
              bounds: tuple[float, float], age_band_years: int) -> AggregatePlan:
    """The cohort by patient dimensions, and a measure's per-patient value (clamped to ``bounds``)."""
    inner = compiler.breakdown_rows(cohort, dimensions, age_band_years=age_band_years, measure=measure)
    rows = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("b")))
    select = exp.select(exp.alias_(exp.column(PK, table="b"), PK)).from_(rows, copy=False)
    select = _rows(select, [exp.column(d, table="b") for d in dimensions])
    statistics: tuple[Statistic, ...] = (_PATIENTS,)
    if measure is not None:
        value = exp.column("v", table="b")
        clamped = exp.Greatest(this=exp.Literal.number(bounds[0]), expressions=[
            exp.Least(this=exp.cast(value, "DOUBLE"), expressions=[exp.Literal.number(bounds[1])])])
        has_value = exp.case().when(exp.Is(this=value.copy(), expression=exp.null()), exp.Literal.number(0)).else_(
            exp.Literal.number(1))
        select = select.select(exp.alias_(clamped, MEASURE_VALUE.format(0)), exp.alias_(has_value, MEASURE_COUNT.format(0)),
                               copy=False)
        statistics += (Statistic("with_value", "values", 0, bounds), Statistic("mean", "mean", 0, bounds),
                       Statistic("median", "median", 0, bounds), Statistic("p25", "quantile", 0, bounds, 0.25),
                       Statistic("p75", "quantile", 0, bounds, 0.75))
    parts = [_dump(cohort, compiler), list(dimensions), age_band_years,
             measure.model_dump(mode="json", exclude_none=True) if measure else None, list(bounds)]
    public = bool(dimensions) and set(dimensions) <= PUBLIC_DIMENSIONS
    # one row per patient: each patient is in exactly one cell; the known values of sex, age band
    # and deceased are listed always (an unknown value, e.g. no sex recorded, only when it is shown)
    return AggregatePlan(query=select, dimensions=tuple(dimensions), statistics=statistics, cells_exact=True, rows_per_patient=1,
                         domain=tuple(_values(d, age_band_years) for d in dimensions) if public else None,
                         canonical=_canonical("breakdown", *parts))


def _values(dimension: str, band: int) -> tuple[str | None, ...]:
    """Every value a public breakdown dimension can take (as the compiler writes them)."""
    if dimension == "sex":
        return ("female", "male")
    if dimension == "deceased":
        return ("false", "true")
    top = (90 // band) * band
    return (*(f"{low}-{low + band - 1}" for low in range(0, top, band)), f"{top}+")


def compare(compiler: CohortCompiler, a: CohortDefinition, b: CohortDefinition) -> AggregatePlan:
    """Three disjoint cells: ``both``, ``only_a``, ``only_b`` (the two cohorts, fully joined)."""
    left = exp.Subquery(this=compiler.patients(a), alias=exp.TableAlias(this=exp.to_identifier("a")))
    right = exp.Subquery(this=compiler.patients(b), alias=exp.TableAlias(this=exp.to_identifier("b")))
    in_a, in_b = exp.column(PK, table="a").is_(exp.null()).not_(), exp.column(PK, table="b").is_(exp.null()).not_()
    part = exp.case().when(exp.and_(in_a, in_b), exp.Literal.string("both")) \
        .when(in_a.copy(), exp.Literal.string("only_a")).else_(exp.Literal.string("only_b"))
    select = exp.select(exp.alias_(exp.func("coalesce", exp.column(PK, table="a"), exp.column(PK, table="b")), PK)).from_(left)
    select = select.join(right, on=exp.EQ(this=exp.column(PK, table="a"), expression=exp.column(PK, table="b")),
                         join_type="FULL OUTER", copy=False)
    return AggregatePlan(query=_rows(select, [part]), dimensions=("part",), statistics=(_PATIENTS,), public_keys=True, cells_exact=True,
                         domain=(("both", "only_a", "only_b"),),
                         canonical=_canonical("compare", _dump(a, compiler), _dump(b, compiler)))


def view_patients(views: Sequence[ViewInfo]) -> AggregatePlan:
    """One cell per view: its patients (a patient counts in every view it appears in)."""
    selects = [exp.select(exp.alias_(exp.column(PK), PK), exp.alias_(exp.Literal.string(v.name), DIMENSION.format(0)),
                          exp.alias_(exp.Literal.number(1), ROWS)).distinct().from_(exp.table_(v.name, db="gold"))
               for v in views]
    union: exp.Query = selects[0]
    for select in selects[1:]:
        union = exp.union(union, select, distinct=False)
    query = exp.select("*").from_(exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier("v"))))
    return AggregatePlan(query=query, dimensions=("view",), statistics=(_PATIENTS,), cells_per_patient=len(views),
                         cells_exact=True, public_keys=True, domain=(tuple(v.name for v in views),),
                         canonical=_canonical("views", sorted(v.name for v in views)))


def column_values(view: ViewInfo, columns: Sequence[ColumnInfo]) -> AggregatePlan:
    """Cells (column, value) of a view's dimension columns, plus one cell of all its patients."""
    table = exp.table_(view.name, db="gold")
    selects = [exp.select(exp.alias_(exp.column(PK), PK), exp.alias_(exp.Literal.string(ALL_PATIENTS), DIMENSION.format(0)),
                          exp.alias_(exp.cast(exp.null(), "VARCHAR"), DIMENSION.format(1))).distinct().from_(table)]
    for column in columns:
        value = exp.cast(exp.column(column.name, quoted=True), "VARCHAR")
        selects.append(exp.select(exp.alias_(exp.column(PK), PK), exp.alias_(exp.Literal.string(column.name), DIMENSION.format(0)),
                                  exp.alias_(value, DIMENSION.format(1))).distinct().from_(table.copy()))
    union: exp.Query = selects[0]
    for select in selects[1:]:
        union = exp.union(union, select, distinct=False)
    query = exp.select("*", exp.alias_(exp.Literal.number(1), ROWS)).from_(
        exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier("c"))))
    per_patient = view.name == "patient"  # one row per patient: one value per column
    return AggregatePlan(query=query, dimensions=("column", "value"), statistics=(_PATIENTS,),
                         cells_per_patient=len(columns) + 1 if per_patient else 1_000_000, cells_exact=per_patient,
                         canonical=_canonical("describe", view.name, [c.name for c in columns]))


def code_search(catalog: GoldCatalog, scope: DataScope, needle: str) -> AggregatePlan | None:
    """Cells (criterion, view, system, code, display) of the codes whose display contains
    ``needle`` (or whose code equals it); None when no coded view is visible."""
    selects = []
    for kind, view, code, system, display in CODE_COLUMNS:
        if catalog.view(view) is None or not scope.allows_view(view) or {code, display} & scope.hidden(view):
            continue
        system_expr: exp.Expr = exp.column(system) if system and system not in scope.hidden(view) else exp.cast(exp.null(), "VARCHAR")
        found = exp.or_(exp.func("contains", exp.func("lower", exp.column(display)), exp.Literal.string(needle)),
                        exp.EQ(this=exp.func("lower", exp.column(code)), expression=exp.Literal.string(needle)))
        selects.append(exp.select(
            exp.alias_(exp.column(PK), PK), exp.alias_(exp.Literal.string(kind), DIMENSION.format(0)),
            exp.alias_(exp.Literal.string(view), DIMENSION.format(1)), exp.alias_(system_expr, DIMENSION.format(2)),
            exp.alias_(exp.column(code), DIMENSION.format(3)), exp.alias_(exp.func("min", exp.column(display)), DIMENSION.format(4)),
            exp.alias_(exp.Literal.number(1), ROWS),
        ).from_(exp.table_(view, db="gold")).where(found).group_by(PK, "2", "3", "4", "5"))
    if not selects:
        return None
    union: exp.Query = selects[0]
    for select in selects[1:]:
        union = exp.union(union, select, distinct=False)
    query = exp.select("*").from_(exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier("m"))))
    return AggregatePlan(query=query, dimensions=("criterion", "view", "system", "code", "display"), statistics=(_PATIENTS,),
                         cells_per_patient=CODES_PER_PATIENT, canonical=_canonical("codes", needle))
