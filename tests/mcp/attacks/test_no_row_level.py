"""Nothing row-level ever comes out: no key of the lake in any answer, no count under k, no exact statistic.

Issue #16 ("aggregates only, never a row, never a count under k"). Every tool is called with drawn
arguments (cohort definitions, breakdowns, comparisons, searches, aggregate SQL from the allowed
grammar) and every answer, and every refusal, is searched for every patient and resource key of the
demo lake. Every count object shown is a whole number of at least k with ``suppressed`` false;
hidden ones are null with ``"<11"`` or ``"suppressed"``. Every answer carries its privacy object.

Strict readings: "no more precision than documented" is read as: counts are whole numbers (never a
fraction that would expose a mean), a cell's statistics are null when its count is hidden,
quantiles of a measure lie inside the measure's bounds (they come from a private quantile over a grid
inside the bounds), and describe_view lists values only for dimension columns.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fhirlake.lake import Lake

from .conftest import (
    Catalog,
    Harness,
    Reply,
    Servers,
    Session,
    assert_answered,
    assert_safe_answer,
    leaked_keys,
    sql_by_key,
)
from .strategies import breakdown_arguments, cohort, frequent_values, lake_codes, valid_query

SETTINGS = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def session(demo_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    servers = Servers(demo_lake, tmp_path_factory.mktemp("rows"))
    harness = Harness()
    try:
        yield harness.connect(servers.new(epsilon_per_day=100_000.0).mcp, "curious")
    finally:
        harness.close()
        servers.close()


@pytest.fixture(scope="module")
def codes(truth: Lake) -> dict[str, list[str]]:
    return lake_codes(truth)


@pytest.fixture(scope="module")
def values(truth: Lake, catalog: Catalog) -> dict[tuple[str, str], list[Any]]:
    return frequent_values(truth, catalog)


def check(reply: Reply, keys: frozenset[str]) -> None:
    leaked = leaked_keys(reply, keys)
    assert not leaked, f"keys of the lake came out: {sorted(leaked)[:5]}: {reply.describe()}"
    if reply.is_error:
        assert "budget" not in reply.text.lower(), "the test budget is large: this refusal should not happen"
        return
    assert_safe_answer(reply, keys)
    for cell in _cells(reply.data):
        patients = cell.get("patients") or {}
        if patients.get("count") is None:
            for name in ("mean", "median", "p25", "p75"):
                assert cell.get(name) is None, f"a statistic of a hidden cell is shown: {cell}"


def _cells(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, dict):
        if "dimensions" in data and "patients" in data:
            yield data
        for value in data.values():
            yield from _cells(value)
    elif isinstance(data, list):
        for value in data:
            yield from _cells(value)


@st.composite
def any_call(draw: st.DrawFn, codes: dict[str, list[str]], catalog: Catalog, values: dict[tuple[str, str], list[Any]],
             keys: list[str]) -> tuple[str, dict[str, Any]]:
    tool = draw(st.sampled_from(["list_views", "describe_view", "search_codes", "count_cohort", "count_cohort",
                                 "cohort_breakdown", "cohort_breakdown", "compare_cohorts", "save_cohort",
                                 "run_aggregate_sql", "run_aggregate_sql"]))
    if tool == "list_views":
        return tool, {}
    if tool == "describe_view":
        return tool, {"view": draw(st.sampled_from(sorted(catalog.views)))}
    if tool == "search_codes":
        text = draw(st.sampled_from(["diab", "hypertension", "glucose", "pressure", "vaccine", "%", "' OR 1=1 --", "__fl_pk",
                                     "patient_id", *keys, *(k[:8] for k in keys)]))
        return tool, {"text": text, "limit": draw(st.integers(1, 100))}
    if tool == "count_cohort":
        return tool, {"cohort": draw(cohort(codes))}
    if tool == "cohort_breakdown":
        return tool, draw(breakdown_arguments(codes))
    if tool == "compare_cohorts":
        return tool, {"a": draw(cohort(codes)), "b": draw(cohort(codes))}
    if tool == "save_cohort":
        return tool, {"name": f"c{draw(st.integers(0, 5))}", "cohort": draw(cohort(codes))}
    return tool, {"sql": draw(valid_query(catalog, values))[0]}


def test_no_answer_of_any_tool_holds_a_key_or_a_small_count(session: Session, codes: dict[str, list[str]], catalog: Catalog,
                                                             values: dict[tuple[str, str], list[Any]], patient_ids: list[str],
                                                             lake_keys: frozenset[str]) -> None:
    """80 drawn calls of every tool; failures are collected (the server keeps state, so examples are not replayed)."""
    failures: list[str] = []

    @settings(max_examples=80, phases=[Phase.generate], **SETTINGS)
    @given(data=st.data())
    def call(data: st.DataObject) -> None:
        tool, arguments = data.draw(any_call(codes, catalog, values, patient_ids[:3]), label="call")
        replies = [session.call(tool, arguments)]
        if tool == "save_cohort":
            replies.append(session.call("list_cohorts", {}))
        for reply in replies:
            try:
                check(reply, lake_keys)
            except AssertionError as exc:
                failures.append(str(exc).splitlines()[0][:600])

    call()
    assert not failures, f"{len(failures)} unsafe answers:\n" + "\n".join(dict.fromkeys(failures))


def test_every_view_description_and_resource_is_free_of_keys(session: Session, catalog: Catalog,
                                                             lake_keys: frozenset[str]) -> None:
    check(session.call("list_views", {}), lake_keys)
    for view in sorted(catalog.views):
        reply = session.call("describe_view", {"view": view})
        check(reply, lake_keys)
        for column in assert_answered(reply).get("columns", []):
            role = column.get("role")
            if role in ("key", "quasi-identifier", "text") or column["name"] == "patient_id" or column["name"].endswith("_id"):
                assert not column.get("values"), f"describe_view lists values of {view}.{column['name']} ({role})"

    async def read_everything() -> list[str]:
        texts = []
        for resource in (await session.client.list_resources()).resources:
            texts += [getattr(c, "text", "") for c in (await session.client.read_resource(resource.uri)).contents]
        for view in sorted(catalog.views):
            texts += [getattr(c, "text", "") for c in (await session.client.read_resource(f"fhirlake://schema/{view}")).contents]
        prompt = await session.client.get_prompt("explore_cohort", {"question": "how many patients have diabetes?"})
        texts += [str(m.content) for m in prompt.messages]
        return texts

    texts = session.portal.call(read_everything)
    for text in texts:
        found = leaked_keys(Reply("resource", {}, True, text, None, 0.0), lake_keys)
        assert not found, f"keys of the lake in a resource or prompt: {sorted(found)[:3]}"


def test_searching_for_a_key_finds_nothing_about_it(session: Session, patient_ids: list[str], truth: Lake,
                                                    lake_keys: frozenset[str]) -> None:
    encounter = str(truth.sql("SELECT min(encounter_id) FROM gold.encounter").item())
    for text in [patient_ids[0], patient_ids[0][:8], encounter, encounter[:8]]:
        reply = session.call("search_codes", {"text": text})
        check(reply, lake_keys)


def test_a_breakdown_measure_stays_inside_its_bounds(session: Session, codes: dict[str, list[str]], lake_keys: frozenset[str]) -> None:
    """Quantiles come from a private quantile over a grid inside the bounds: never a raw value outside them."""
    code = codes["observation"][0]
    for bounds in ([0, 1000], [50, 60], [4, 15]):
        reply = session.call("cohort_breakdown", {"cohort": {"criteria": {"kind": "observation", "codes": [code]}},
                                                  "dimensions": ["sex"],
                                                  "measure": {"codes": [code], "per_patient": "mean", "bounds": bounds}})
        check(reply, lake_keys)
        for cell in _cells(assert_answered(reply)):
            for name in ("median", "p25", "p75"):
                value = cell.get(name)
                assert value is None or bounds[0] - 1e-9 <= value <= bounds[1] + 1e-9, f"{name} = {value} outside {bounds}"


NEAR_UNIQUE = [
    ("SELECT p.birth_year AS y, count(*) AS n FROM patient p GROUP BY p.birth_year",
     "SELECT birth_year, count(DISTINCT patient_id) FROM gold.patient GROUP BY 1"),
    ("SELECT p.region AS r, p.gender AS g, p.marital_status AS m, count(*) AS n FROM patient p GROUP BY ALL",
     "SELECT region, gender, marital_status, count(DISTINCT patient_id) FROM gold.patient GROUP BY ALL"),
    ("SELECT c.code AS code, p.region AS r, count(DISTINCT c.patient_id) AS n FROM condition c "
     "JOIN patient p ON c.patient_id = p.patient_id GROUP BY ALL",
     "SELECT c.code, p.region, count(DISTINCT c.patient_id) FROM gold.condition c JOIN gold.patient p USING (patient_id) GROUP BY ALL"),
    ("SELECT o.code AS code, p.region AS r, count(DISTINCT o.patient_id) AS n FROM observation o "
     "JOIN patient p ON o.patient_id = p.patient_id GROUP BY ALL",
     "SELECT o.code, p.region, count(DISTINCT o.patient_id) FROM gold.observation o JOIN gold.patient p USING (patient_id) GROUP BY ALL"),
    ("SELECT e.reason_code AS reason, p.region AS r, count(DISTINCT e.patient_id) AS n FROM encounter e "
     "JOIN patient p ON e.patient_id = p.patient_id GROUP BY ALL",
     "SELECT e.reason_code, p.region, count(DISTINCT e.patient_id) FROM gold.encounter e JOIN gold.patient p USING (patient_id) "
     "GROUP BY ALL"),
]


@pytest.mark.parametrize(("query", "exact"), NEAR_UNIQUE, ids=["birth_year", "region-gender-marital", "condition code-region",
                                                                "observation code-region", "encounter reason-region"])
def test_grouping_by_near_unique_columns_shows_no_single_patient_cell(session: Session, truth: Lake, lake_keys: frozenset[str],
                                                                     query: str, exact: str) -> None:
    """Cells keyed by data (codes, years, regions) are many and small: none of one patient is ever shown."""
    reply = session.sql(query)
    check(reply, lake_keys)
    answer = assert_answered(reply)
    width = len(answer["columns"]) - 1
    patients = {tuple(str(v) for v in row[:-1]): int(row[-1]) for row in truth.sql(exact).rows()}
    assert sum(1 for n in patients.values() if n == 1) >= 3, "the demo lake should have single-patient cells here"
    shown = {key: value for key, value in sql_by_key(answer, width, "n").items() if value is not None}
    singles = [key for key in shown if patients.get(key, 0) <= 1]
    assert not singles, f"cells of one patient (or none) shown: {singles[:5]}"
