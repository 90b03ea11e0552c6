"""Compile a :class:`~fhirlake.cohorts.model.CohortDefinition` to sqlglot trees over the gold views.

:meth:`CohortCompiler.patients` gives ``SELECT p.__fl_pk FROM gold.patient AS p WHERE ...``:
one row per patient of the cohort. Event criteria become ``p.__fl_pk IN (SELECT __fl_pk FROM
gold.<view> WHERE <codes> AND <window> ...)``. :meth:`CohortCompiler.breakdown_rows` gives a
cohort's patients with their dimensions and a measure's value, for the serving layer to count
and aggregate. The trees name gold views unscoped and use ``__fl_pk``, which only the scoped
views carry: they are meant for :meth:`fhirlake.serving.reader.GoldReader.run`, which scopes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlglot import exp

from fhirlake.cohorts.errors import CohortError
from fhirlake.cohorts.model import (
    AllOf,
    AnyOf,
    CohortDefinition,
    CohortRef,
    ConditionCriterion,
    Criterion,
    Demographics,
    EncounterCriterion,
    ImmunizationCriterion,
    Measure,
    MedicationCriterion,
    NotCriterion,
    ObservationCriterion,
    ProcedureCriterion,
    ValueFilter,
    Window,
)
from fhirlake.lake._duck import tree

__all__ = ["DIMENSIONS", "PK", "CohortCompiler", "EventSource"]

PK = "__fl_pk"
DIMENSIONS = ("sex", "age_band", "region", "country", "source", "deceased", "year")
_MAX_DEPTH = 8

_AGE = """CASE
  WHEN length(birth_date) >= 10 THEN
    CAST(date_part('year', age(CAST(:index AS DATE), TRY_CAST(left(birth_date, 10) AS DATE))) AS INTEGER)
  ELSE year(CAST(:index AS DATE)) - birth_year
END"""


@dataclass(frozen=True)
class EventSource:
    """Where an event criterion looks: a view, its code column, its date expression."""

    view: str
    code: str
    when: str


EVENT_SOURCES: dict[str, tuple[EventSource, ...]] = {
    "condition": (EventSource("condition", "code", "coalesce(onset_datetime, recorded_date)"),),
    "observation": (EventSource("observation", "code", "effective_datetime"),
                    EventSource("observation_component", "code", "effective_datetime")),
    "medication": (EventSource("medication_request", "medication_code", "authored_on"),),
    "procedure": (EventSource("procedure", "code", "performed_start"),),
    "immunization": (EventSource("immunization", "vaccine_code", "occurrence_datetime"),),
    "encounter": (EventSource("encounter", "class_code", "period_start"),),
}
_OPS: dict[str, type[exp.Binary]] = {"gt": exp.GT, "ge": exp.GTE, "lt": exp.LT, "le": exp.LTE, "eq": exp.EQ}


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table)


def _strings(values: Sequence[str]) -> list[exp.Expr]:
    return [exp.Literal.string(v) for v in values]


class CohortCompiler:
    """Cohort definitions to trees; ``resolve`` finds a saved cohort by name; ``reference`` is
    the default index date (the lake's reference date)."""

    def __init__(self, resolve: Callable[[str], CohortDefinition], reference: date) -> None:
        self._resolve = resolve
        self.reference = reference

    def index_date(self, cohort: CohortDefinition) -> date:
        return cohort.index_date or self.reference

    # ------------------------------------------------------------------------- patients

    def patients(self, cohort: CohortDefinition) -> exp.Select:
        """``SELECT p.__fl_pk FROM gold.patient AS p WHERE <criteria>``."""
        condition = self._criterion(cohort.criteria, self.index_date(cohort), (), 0)
        return exp.select(exp.alias_(_col(PK, "p"), PK)).from_(exp.table_("patient", db="gold", alias="p")).where(condition)

    def _criterion(self, node: Criterion, index: date, names: tuple[str, ...], depth: int) -> exp.Expr:
        if depth > _MAX_DEPTH:
            raise CohortError(f"the cohort definition nests deeper than {_MAX_DEPTH} levels")
        match node:
            case AllOf(criteria=items):
                return exp.and_(*[self._criterion(c, index, names, depth + 1) for c in items], copy=False)
            case AnyOf(criteria=items):
                return exp.paren(exp.or_(*[self._criterion(c, index, names, depth + 1) for c in items], copy=False), copy=False)
            case NotCriterion(criterion=inner):
                return exp.not_(exp.paren(self._criterion(inner, index, names, depth + 1), copy=False), copy=False)
            case Demographics():
                return self._demographics(node, index)
            case CohortRef(name=name):
                if name in names:
                    raise CohortError(f"cohort {name!r} refers to itself")
                saved = self._resolve(name)
                inner_index = saved.index_date or index
                return self._criterion(saved.criteria, inner_index, (*names, name), depth + 1)
            case _:
                return exp.In(this=_col(PK, "p"), query=exp.Subquery(this=self.events(node, index)))

    def _demographics(self, node: Demographics, index: date) -> exp.Expr:
        parts: list[exp.Expr] = []
        if node.sex:
            parts.append(_col("gender", "p").isin(*_strings(node.sex)))
        if node.age_min is not None:
            parts.append(exp.GTE(this=self.age(index), expression=exp.Literal.number(node.age_min)))
        if node.age_max is not None:
            parts.append(exp.LTE(this=self.age(index), expression=exp.Literal.number(node.age_max)))
        if node.regions:
            parts.append(_col("region", "p").isin(*_strings(node.regions)))
        if node.countries:
            parts.append(_col("country", "p").isin(*_strings(node.countries)))
        if node.deceased is not None:
            parts.append(exp.EQ(this=exp.func("coalesce", _col("deceased", "p"), exp.false()),
                                expression=exp.Boolean(this=node.deceased)))
        return exp.and_(*parts, copy=False) if parts else exp.true()

    def age(self, index: date) -> exp.Expr:
        """Age in completed years at ``index`` of the patient ``p`` (year difference for a year-only birth date)."""
        expression = tree(_AGE, index=exp.Literal.string(index.isoformat()))
        return exp.paren(expression.transform(_qualify_patient, copy=False), copy=False)

    # ------------------------------------------------------------------------- events

    def events(self, node: Criterion, index: date) -> exp.Query:
        """The patient keys with at least ``min_count`` matching events."""
        assert isinstance(node, ConditionCriterion | ObservationCriterion | MedicationCriterion | ProcedureCriterion
                          | ImmunizationCriterion | EncounterCriterion)
        selects = [self._event_rows(source, node, index) for source in EVENT_SOURCES[node.kind]]
        union: exp.Query = selects[0]
        for select in selects[1:]:
            union = exp.union(union, select, distinct=False)
        if node.min_count <= 1:
            return union
        counted = exp.select(PK).from_(exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier("e"))))
        return counted.group_by(PK).having(exp.GTE(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(node.min_count)))

    def _event_rows(self, source: EventSource, node: Criterion, index: date) -> exp.Select:
        parts: list[exp.Expr] = []
        if isinstance(node, EncounterCriterion):
            for column, codes in (("class_code", node.class_codes), ("type_code", node.type_codes),
                                  ("reason_code", node.reason_codes)):
                if codes:
                    parts.append(_col(column).isin(*_strings(codes)))
        else:
            assert hasattr(node, "codes")
            parts.append(_col(source.code).isin(*_strings(node.codes)))
        if isinstance(node, ObservationCriterion) and node.value is not None:
            parts.append(self._value(node.value))
        window = getattr(node, "window", None)
        if window is not None:
            parts += self.window(_expression(source.when), window, index)
        select = exp.select(PK).from_(exp.table_(source.view, db="gold"))
        return select.where(exp.and_(*parts, copy=False), copy=False) if parts else select

    @staticmethod
    def _value(value: ValueFilter) -> exp.Expr:
        column = _col("value_quantity")
        if value.op == "between":
            assert value.high is not None
            test: exp.Expr = exp.Between(this=column, low=exp.Literal.number(value.value), high=exp.Literal.number(value.high))
        else:
            test = _OPS[value.op](this=column, expression=exp.Literal.number(value.value))
        if value.unit is not None:
            test = exp.and_(test, exp.EQ(this=_col("value_unit"), expression=exp.Literal.string(value.unit)), copy=False)
        return test

    @staticmethod
    def window(when: exp.Expr, window: Window, index: date) -> list[exp.Expr]:
        """``when`` (an ISO date-time string) within ``window``: string comparisons on ISO dates."""
        starts = [d for d in (window.start,) if d is not None]
        ends = [d for d in (window.end,) if d is not None]
        if window.days_before_index is not None:
            starts.append(index - timedelta(days=window.days_before_index))
            ends.append(index)
        parts: list[exp.Expr] = []
        if starts:
            parts.append(exp.GTE(this=when.copy(), expression=exp.Literal.string(max(starts).isoformat())))
        if ends:
            parts.append(exp.LT(this=when.copy(), expression=exp.Literal.string((min(ends) + timedelta(days=1)).isoformat())))
        return parts

    # ------------------------------------------------------------------------- breakdown

    def breakdown_rows(
        self, cohort: CohortDefinition, dimensions: Sequence[str], *, age_band_years: int = 10, measure: Measure | None = None
    ) -> exp.Select:
        """One row per patient of the cohort: ``__fl_pk, dims..., v`` (``v`` the measure's value, or null).

        The caller (the release, :mod:`fhirlake.serving.cohort_plans`) counts patients and aggregates
        the cells from these rows, so the cohort is evaluated once per breakdown.
        """
        index = self.index_date(cohort)
        unknown = [d for d in dimensions if d not in DIMENSIONS]
        if unknown:
            raise CohortError(f"unknown dimension {unknown[0]!r} (dimensions: {', '.join(DIMENSIONS)})")
        if "year" in dimensions and measure is None:
            raise CohortError("the 'year' dimension is the year of the measured value: give a measure")
        # the cohort as a semi-join: DuckDB plans it apart from the measure's join (as one WHERE it
        # joined the measure first and ran slower on a small lake)
        rows = exp.select(_col(PK, "p")).from_(exp.table_("patient", db="gold", alias="p")).where(
            exp.In(this=_col(PK, "p"), query=exp.Subquery(this=self.patients(cohort))), copy=False)
        for name in dimensions:
            rows = rows.select(exp.alias_(self._dimension(name, index, age_band_years), name), copy=False)
        if measure is not None:
            rows = rows.join(exp.Subquery(this=self._measure(measure, index), alias=exp.TableAlias(this=exp.to_identifier("m"))),
                             on=exp.EQ(this=_col(PK, "m"), expression=_col(PK, "p")), join_type="LEFT", copy=False)
            return rows.select(exp.alias_(_col("v", "m"), "v"), copy=False)
        return rows.select(exp.alias_(exp.cast(exp.null(), "DOUBLE"), "v"), copy=False)

    def _dimension(self, name: str, index: date, band: int) -> exp.Expr:
        if name == "sex":
            return _col("gender", "p")
        if name == "region":
            return _col("region", "p")
        if name == "country":
            return _col("country", "p")
        if name == "source":
            return _col("_source", "p")
        if name == "deceased":
            return exp.func("coalesce", _col("deceased", "p"), exp.false())
        if name == "year":
            return _col("year", "m")
        top = (90 // band) * band
        return tree(
            "CASE WHEN :age IS NULL THEN NULL WHEN :age >= :top THEN CAST(:top AS VARCHAR) || '+' "
            "ELSE CAST(floor(:age / :band) * :band AS INTEGER) || '-' || CAST(floor(:age / :band) * :band + :band - 1 AS INTEGER) END",
            age=self.age(index), top=exp.Literal.number(top), band=exp.Literal.number(band))

    def _measure(self, measure: Measure, index: date) -> exp.Select:
        """One value per patient: ``__fl_pk, v, year``."""
        rows = []
        for source in EVENT_SOURCES["observation"]:
            when = _expression(source.when)
            parts: list[exp.Expr] = [_col("code").isin(*_strings(measure.codes)), exp.not_(exp.column("value_quantity").is_(exp.null()))]
            if measure.unit is not None:
                parts.append(exp.EQ(this=_col("value_unit"), expression=exp.Literal.string(measure.unit)))
            if measure.window is not None:
                parts += self.window(when, measure.window, index)
            rows.append(exp.select(PK, exp.alias_(_col("value_quantity"), "x"), exp.alias_(when, "t"))
                        .from_(exp.table_(source.view, db="gold")).where(exp.and_(*parts)))
        union: exp.Query = exp.union(rows[0], rows[1], distinct=False)
        x, t = _col("x"), _col("t")
        value = {"latest": exp.func("arg_max", x, t), "mean": exp.func("avg", x),
                 "min": exp.func("min", x), "max": exp.func("max", x)}[measure.per_patient]
        year = _expression("TRY_CAST(left(max(t), 4) AS INTEGER)")
        return (exp.select(PK, exp.alias_(value, "v"), exp.alias_(year, "year"))
                .from_(exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier("o")))).group_by(PK))


def _expression(text: str) -> exp.Expr:
    """One SQL expression (a fixed template of this module) as a tree."""
    select = tree(f"SELECT {text}")
    assert isinstance(select, exp.Select)
    value: exp.Expr = select.selects[0]
    return value


def _qualify_patient(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Column) and not node.table:
        return exp.column(node.name, table="p")
    return node
