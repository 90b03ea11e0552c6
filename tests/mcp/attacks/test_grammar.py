"""run_aggregate_sql accepts an allow-list grammar: every attack is refused, allowed queries are answered.

Issue #16, deliver 1. The attack grammar (``grammar.py``) puts one forbidden fragment in an ordinary
aggregate query: row values, subqueries anywhere, oracles (CASE/IF, CAST/TRY_CAST, arithmetic,
string and regexp functions, column-to-column and type-mismatched comparisons), HAVING, WITH, set
operations, window functions, forbidden aggregates, keys anywhere, columns whose role is
quasi-identifier or text (or none), SELECT * / DISTINCT, joins other than inner joins on the patient
key, files and table functions, other statements, comments, unicode and quoting tricks, deep
nesting. Each must be refused with a one-line reason and never answered. Valid queries drawn from
the allowed grammar (dimensions, measures, literals of the column's type) must be answered.

Strict readings of the interface taken here (spec16-interface, "Nothing else"):

* a refusal says ``refused`` on one line (the server's convention), within 5 s;
* ``WHERE`` admits only ``column op literal`` and the listed forms: literal-only predicates
  (``1 = 1``, ``TRUE``), expressions or casts in the literal position (``'fem' || 'ale'``,
  ``'x'::VARCHAR``, ``40 + 0``), ``LIKE``/``GLOB``/``SIMILAR TO``/``~``, ``IS DISTINCT FROM``,
  ``COLLATE`` and ``= ANY(list)`` are refused;
* a literal must have the column's type: ``gender = 1`` and ``age = 'forty'`` are refused before
  running (they are run-time conversion oracles otherwise);
* an aggregate's argument is a measure *column*: ``sum(age * 2)`` and ``sum(birth_year)`` (a
  dimension) are refused; only count, sum, avg, median, stddev and quantile_cont(m, q in
  [0.05, 0.95]) exist, so var_pop/kurtosis/... are refused;
* ``GROUP BY`` takes dimensions (or ``year``/``month`` of a date column) or ``ALL``: a measure or a raw
  date column as a group is refused; ROLLUP/CUBE/GROUPING SETS are refused;
* ``OFFSET``, ``TABLESAMPLE``, from-first ``FROM patient`` and queries without a gold view are refused;
* a join is an inner join on the patient key alone: a second condition in ``ON``, a join on
  ``encounter_id`` or ``USING (patient_id, encounter_id)`` are refused;
* parenthesis depth 33 or more is refused (the limit is 32); 24 levels of an allowed condition are answered.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhirlake.lake import Lake

from . import grammar
from .conftest import (
    EPS_CALL,
    Catalog,
    Column,
    Harness,
    K,
    Servers,
    Session,
    assert_answered,
    assert_refused,
    assert_safe_answer,
    count_of,
    declared_roles,
    leaked_keys,
    sql_rows,
)
from .strategies import frequent_values, valid_query

SETTINGS = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def attack_session(demo_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """One server (its own state) that every attack of this module is sent to; refusals must not depend on history."""
    servers = Servers(demo_lake, tmp_path_factory.mktemp("grammar"))
    harness = Harness()
    try:
        yield harness.connect(servers.new(epsilon_per_day=10_000.0).mcp, "attacker")
    finally:
        harness.close()
        servers.close()


@pytest.fixture(scope="module")
def valid_session(demo_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """A server with a budget large enough for every generated valid query (each has its own canonical form)."""
    servers = Servers(demo_lake, tmp_path_factory.mktemp("valid"))
    harness = Harness()
    try:
        yield harness.connect(servers.new(epsilon_per_call=EPS_CALL, epsilon_per_day=10_000.0).mcp, "analyst")
    finally:
        harness.close()
        servers.close()


@pytest.fixture(scope="module")
def first_patient(patient_ids: list[str]) -> str:
    return patient_ids[0]


def check_refused(session: Session, attack: grammar.Attack, keys: frozenset[str]) -> str | None:
    """None when the attack was refused properly, else what went wrong."""
    reply = session.sql(attack.sql, timeout=60)
    try:
        assert_refused(reply)
    except AssertionError as exc:
        return f"{attack}: {str(exc).splitlines()[0][:300]}"
    if leaked_keys(reply, keys):
        return f"{attack}: the refusal quotes keys of the lake"
    return None


# ------------------------------------------------------------------------------------------ attacks


def test_every_listed_attack_is_refused(attack_session: Session, first_patient: str, demo_lake: Path,
                                        lake_keys: frozenset[str]) -> None:
    """The deterministic sweep: each fragment of the attack grammar in each position it fits."""
    attacks = grammar.every_attack(first_patient, str(demo_lake))
    assert len(attacks) > 1000
    failures = [f for f in (check_refused(attack_session, a, lake_keys) for a in attacks) if f]
    by_family: dict[str, int] = {}
    for failure in failures:
        family = failure[1:failure.index("]")]
        by_family[family] = by_family.get(family, 0) + 1
    assert not failures, (f"{len(failures)} of {len(attacks)} attacks were not refused properly {by_family}:\n"
                          + "\n".join(failures[:40]))


@settings(max_examples=150, **SETTINGS)
@given(data=st.data())
def test_generated_attacks_are_refused(attack_session: Session, first_patient: str, demo_lake: Path,
                                       lake_keys: frozenset[str], data: st.DataObject) -> None:
    """Attacks drawn from the grammar, rewritten with comments, keyword case, spacing, quoting, schema names."""
    attacks = _attacks(first_patient, str(demo_lake))
    attack = data.draw(st.sampled_from(attacks), label="attack")
    how = data.draw(st.sampled_from(grammar.TRANSFORMS), label="transform")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    sql = attack.sql if how == "none" else grammar.transform(attack.sql, how, random.Random(seed))
    failure = check_refused(attack_session, grammar.Attack(f"{attack.family}/{how}", sql), lake_keys)
    assert failure is None, failure


_ATTACKS: dict[tuple[str, str], list[grammar.Attack]] = {}


def _attacks(patient: str, lake: str) -> list[grammar.Attack]:
    if (patient, lake) not in _ATTACKS:
        _ATTACKS[(patient, lake)] = grammar.every_attack(patient, lake)
    return _ATTACKS[(patient, lake)]


@st.composite
def forbidden_column_use(draw: st.DrawFn, catalog: Catalog) -> grammar.Attack:
    """A column no position admits (key, quasi-identifier, text, no role), or an allowed column in the wrong role."""
    forbidden = [c for cols in catalog.views.values() for c in cols.values() if c.forbidden and not c.name.startswith("__")]
    measures = catalog.columns("measure")
    dimensions = [c for c in catalog.columns("dimension") if grammar.scalar_type(c.type)]
    dates = catalog.columns("date")
    kind = draw(st.sampled_from(["forbidden"] * 3 + ["measure as group", "date as group", "dimension as measure"]))
    if kind == "measure as group" and measures:
        c = draw(st.sampled_from(measures))
        return grammar.Attack(kind, f"SELECT t.{c.name} AS g, count(*) AS n FROM {c.view} t GROUP BY t.{c.name}")
    if kind == "date as group" and dates:
        c = draw(st.sampled_from(dates))
        return grammar.Attack(kind, f"SELECT t.{c.name} AS g, count(*) AS n FROM {c.view} t GROUP BY t.{c.name}")
    if kind == "dimension as measure" and dimensions:
        c = draw(st.sampled_from(dimensions))
        agg = draw(st.sampled_from(["sum", "avg", "median", "stddev"]))
        return grammar.Attack(kind, f"SELECT {agg}(t.{c.name}) AS x FROM {c.view} t")
    c: Column = draw(st.sampled_from(forbidden))
    value = "'x'" if not c.type.upper().startswith(("INT", "BIGINT", "DOUBLE", "BOOL")) else "1"
    if c.type.upper() == "BOOLEAN":
        value = "TRUE"
    position = draw(st.sampled_from(["select", "group", "where", "count distinct", "aggregate", "order", "in list",
                                     "is null", "year"]))
    if c.name == "patient_id" and position == "count distinct":
        position = "select"  # count(DISTINCT patient_id) is the one allowed use of the patient key
    col = f"t.{c.name}"
    sql = {
        "select": f"SELECT {col} FROM {c.view} t",
        "group": f"SELECT {col} AS g, count(*) AS n FROM {c.view} t GROUP BY {col}",
        "where": f"SELECT count(*) AS n FROM {c.view} t WHERE {col} = {value}",
        "count distinct": f"SELECT count(DISTINCT {col}) AS n FROM {c.view} t",
        "aggregate": f"SELECT median({col}) AS n FROM {c.view} t",
        "order": f"SELECT count(*) AS n FROM {c.view} t ORDER BY {col}",
        "in list": f"SELECT count(*) AS n FROM {c.view} t WHERE {col} IN ({value}, {value})",
        "is null": f"SELECT count(*) AS n FROM {c.view} t WHERE {col} IS NULL",
        "year": f"SELECT year({col}) AS y, count(*) AS n FROM {c.view} t GROUP BY year({col})",
    }[position]
    return grammar.Attack(f"{c.role or 'no role'} column in {position}", sql)


@settings(max_examples=120, **SETTINGS)
@given(data=st.data())
def test_columns_outside_their_role_are_refused(attack_session: Session, catalog: Catalog, lake_keys: frozenset[str],
                                                data: st.DataObject) -> None:
    attack = data.draw(forbidden_column_use(catalog), label="attack")
    failure = check_refused(attack_session, attack, lake_keys)
    assert failure is None, failure


def test_every_key_quasi_identifier_and_text_column_is_refused_in_select_and_where(
        attack_session: Session, catalog: Catalog, lake_keys: frozenset[str]) -> None:
    """The deterministic sweep over the catalog: every forbidden column of every view, in SELECT and WHERE."""
    failures = []
    forbidden = [c for cols in catalog.views.values() for c in cols.values() if c.forbidden]
    assert any(c.role == "quasi-identifier" for c in forbidden), "no view declares a quasi-identifier column"
    for c in forbidden:
        for sql in (f"SELECT t.{c.name}, count(*) AS n FROM {c.view} t GROUP BY t.{c.name}",
                    f"SELECT count(*) AS n FROM {c.view} t WHERE t.{c.name} IS NOT NULL"):
            failure = check_refused(attack_session, grammar.Attack(f"{c.role} column", sql), lake_keys)
            if failure:
                failures.append(failure)
    assert not failures, f"{len(failures)} uses of forbidden columns were not refused:\n" + "\n".join(failures[:30])


def test_refusals_do_not_depend_on_the_data(attack_session: Session, truth: Lake, patient_ids: list[str]) -> None:
    """An oracle's refusal must be the same whether its hidden predicate holds or not (same text but the literal)."""
    lone_region = str(truth.sql("SELECT region FROM gold.patient GROUP BY 1 HAVING count(*) = 1 ORDER BY 1 LIMIT 1").item())
    templates = [
        ("SELECT count(*) AS n FROM patient p WHERE (SELECT count(*) FROM patient q WHERE q.deceased) = {}", ["0", "3", "7", "150"]),
        ("SELECT count(*) AS n FROM patient p WHERE EXISTS (SELECT 1 FROM patient q WHERE q.patient_id = '{}')",
         [patient_ids[0], patient_ids[-1], "no-such-patient"]),
        ("SELECT count(*) AS n FROM patient p WHERE CAST(CASE WHEN p.region = '{}' THEN 'x' ELSE '1' END AS INTEGER) = 1",
         [lone_region, "no-such-region"]),
        ("SELECT count(*) AS n FROM patient p WHERE 1 / (CASE WHEN p.region = '{}' THEN 0 ELSE 1 END) = 1",
         [lone_region, "no-such-region"]),
        ("SELECT count(*) AS n FROM patient p WHERE p.patient_id >= '{}'", [patient_ids[0], patient_ids[75], "z"]),
    ]
    for template, literals in templates:
        texts = set()
        for value in literals:
            reply = attack_session.sql(template.format(value))
            # the reason may quote the offending fragment (the caller's own text, maybe cut): drop quoted parts
            texts.add(re.sub(r'"[^"]*"', '"<fragment>"', assert_refused(reply).replace(value, "<literal>")))
        assert len(texts) == 1, f"the refusal depends on the data: {texts}"


# ------------------------------------------------------------------------------------------ limits


def test_size_depth_and_token_limits_refuse_quickly(attack_session: Session, valid_session: Session) -> None:
    too_long = "SELECT count(*) AS n FROM patient p WHERE p.gender = '" + "x" * 20_000 + "'"
    reply = attack_session.sql(too_long)
    assert reply.is_error and reply.seconds < 5, reply.describe()
    many_tokens = "SELECT count(*) AS n FROM patient p WHERE p.gender IN (" + ", ".join(["'f'"] * 2_500) + ")"
    assert len(many_tokens) < 20_000
    assert_refused(attack_session.sql(many_tokens))
    for depth in (33, 100, 1_000, 5_000):
        sql = "SELECT count(*) AS n FROM patient p WHERE " + "(" * depth + "p.gender = 'female'" + ")" * depth
        if len(sql) <= 20_000:
            assert_refused(attack_session.sql(sql), max_seconds=2.0)
    shallow = "SELECT count(*) AS n FROM patient p WHERE " + "(" * 24 + "p.gender = 'female'" + ")" * 24
    assert_answered(valid_session.sql(shallow))


# ------------------------------------------------------------------------------------------ the allowed grammar


@pytest.fixture(scope="module")
def column_values(truth: Lake, catalog: Catalog) -> dict[tuple[str, str], list[Any]]:
    return frequent_values(truth, catalog)


@settings(max_examples=40, **SETTINGS)
@given(data=st.data())
def test_generated_valid_queries_are_answered(valid_session: Session, catalog: Catalog,
                                              column_values: dict[tuple[str, str], list[Any]],
                                              lake_keys: frozenset[str], data: st.DataObject) -> None:
    """The grammar is not refusing everything: queries drawn from it are answered, safely."""
    sql, counts, quantiles = data.draw(valid_query(catalog, column_values), label="query")
    reply = valid_session.sql(sql)
    answer = assert_answered(reply)
    assert_safe_answer(reply, lake_keys)
    assert float(reply.privacy["epsilon"]) <= EPS_CALL + 1e-9, reply.privacy
    for row in sql_rows(answer):
        for name in counts:
            value = count_of(row[[c.lower() for c in answer["columns"]].index(name)])
            assert value is None or (value >= K and value == int(value)), f"count {name} = {value} in {sql}"
        for name, measure, _ in quantiles:
            value = count_of(row[[c.lower() for c in answer["columns"]].index(name)])
            if value is not None and measure.bounds:
                low, high = measure.bounds
                assert low - 1e-9 <= value <= high + 1e-9, f"{name} = {value} outside the bounds {measure.bounds}: {sql}"


def test_year_and_month_of_date_columns_are_dimensions(valid_session: Session, catalog: Catalog, lake_keys: frozenset[str]) -> None:
    dates = catalog.columns("date")
    assert dates, "no view declares a date column"
    by_view: dict[str, Column] = {}
    for column in dates:
        by_view.setdefault(column.view, column)
    for column in list(by_view.values())[:4]:
        for part in ("year", "month"):
            sql = (f"SELECT {part}(t.{column.name}) AS {part}, count(DISTINCT t.patient_id) AS n FROM {column.view} t "
                   f"GROUP BY {part}(t.{column.name})")
            reply = valid_session.sql(sql)
            assert_answered(reply)
            assert_safe_answer(reply, lake_keys)


def test_the_examples_of_the_interface_are_answered(valid_session: Session, catalog: Catalog, lake_keys: frozenset[str]) -> None:
    """Hand-written queries of the allowed grammar, with every aggregate of the list."""
    measure = next((c for c in catalog.columns("measure", view="patient")), None) or catalog.columns("measure", view="observation")[0]
    m = f"t.{measure.name}"
    frm = f"{measure.view} t" if measure.view == "patient" else f"{measure.view} t JOIN patient p ON t.patient_id = p.patient_id"
    gender = "t.gender" if measure.view == "patient" else "p.gender"
    queries = [
        "SELECT gender, count(*) AS n FROM patient GROUP BY gender",
        "SELECT p.gender, count(DISTINCT p.patient_id) AS patients FROM patient p GROUP BY ALL ORDER BY patients DESC LIMIT 5",
        f"SELECT {gender} AS sex, count({m}) AS n, sum({m}) AS s, avg({m}) AS mean, median({m}) AS med, stddev({m}) AS sd, "
        f"quantile_cont({m}, 0.25) AS p25, quantile_cont({m}, 0.75) AS p75 FROM {frm} GROUP BY {gender}",
        "SELECT count(DISTINCT c.patient_id) AS patients FROM condition c JOIN patient p USING (patient_id) "
        "WHERE p.gender = 'female' AND NOT (p.deceased = TRUE) AND p.gender IN ('female', 'male')",
        "SELECT p.gender, count(*) AS n FROM patient p WHERE p.gender IS NOT NULL OR p.deceased IS NULL GROUP BY p.gender ORDER BY 2",
    ]
    for sql in queries:
        reply = valid_session.sql(sql)
        assert_answered(reply)
        assert_safe_answer(reply, lake_keys)


# ------------------------------------------------------------------------------------------ roles


def test_describe_view_shows_the_declared_roles(catalog: Catalog) -> None:
    """Roles come from the ViewDefinitions; describe_view shows them; keys are keys; measures have bounds."""
    assert catalog.problem is None, f"describe_view could not be asked: {catalog.problem}"
    declared = {view: {name: role for name, (role, _) in cols.items() if role is not None}
                for view, cols in declared_roles().items()}
    problems = []
    for view, columns in catalog.shown.items():
        for name, shown in columns.items():
            role = shown.get("role", "<no role field>")
            if role not in (*("key", "dimension", "measure", "date", "quasi-identifier", "text"), None):
                problems.append(f"{view}.{name}: role {role!r}")
            want = declared.get(view, {}).get(name)
            if want is not None and want != role:
                problems.append(f"{view}.{name}: declared {want!r}, describe_view shows {role!r}")
            if re.fullmatch(r"patient_id|.*_ids?|__fl_.*", name) and role != "key":
                problems.append(f"{view}.{name}: a key column with role {role!r}")
    for view, columns in catalog.views.items():
        for column in columns.values():
            if column.role == "measure" and column.bounds is None:
                problems.append(f"{view}.{column.name}: a measure without bounds")
    assert catalog.shown, "describe_view showed no view"
    assert not problems, "\n".join(problems[:40])
    assert catalog.role("patient", "gender") == "dimension"
    assert catalog.role("patient", "patient_id") == "key"
    assert catalog.columns("measure"), "no measure is declared anywhere"

