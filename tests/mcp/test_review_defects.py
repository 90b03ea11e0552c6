"""Regression tests of the security review of the guarded SQL tool and the cohort restriction.

Each test replays one of the reviewer's attacks on the demo lake and checks it no longer
reveals a patient's identifier or values, nor a count under k.
"""

from __future__ import annotations

import anyio
import pytest
from mcp.server.mcpserver.exceptions import ToolError

from fhirlake.cohorts import CohortDefinition
from fhirlake.lake import Lake
from fhirlake.mcp_server.context import CallRecord, local_user
from fhirlake.mcp_server.dispatch import Dispatcher
from fhirlake.serving import CohortService, DataScope, QueryRefused, Trace

SCOPE = DataScope()


def patient_ids(truth: Lake) -> set[str]:
    return {str(k) for k in truth.sql("SELECT patient_id FROM gold.patient").to_series()}


def lone_birth_date(truth: Lake) -> str:
    """A birth date only one patient of the demo lake has."""
    return str(truth.sql("SELECT min(birth_date) FROM (SELECT birth_date FROM gold.patient GROUP BY 1 "
                         "HAVING count(*) = 1)").item())


# ---------------------------------------------------------------------------- 1. error text


def leaking_queries(birth_date: str) -> list[str]:
    return [
        # the reviewer's exact example, then the same with a birth date that exists in this lake
        "SELECT count(*) FROM patient WHERE CAST(If(birth_date='1957-07-18', concat(patient_id,'|',region), '1') AS INTEGER) = 1",
        f"SELECT count(*) FROM patient WHERE CAST(If(birth_date='{birth_date}', concat(patient_id,'|',region), '1') AS INTEGER) = 1",
        "SELECT count(*) FROM patient WHERE CAST(patient_id AS INTEGER) = 1",
        "SELECT count(*) FROM patient WHERE date(patient_id) = DATE '2000-01-01'",
    ]


def test_runtime_errors_do_not_quote_row_values(service: CohortService, truth: Lake) -> None:
    ids = patient_ids(truth)
    for sql in leaking_queries(lone_birth_date(truth)):
        with pytest.raises(QueryRefused) as refused:
            service.run_sql("t", sql, SCOPE, Trace())
        assert "withheld" in refused.value.reason
        assert not [i for i in ids if i in str(refused.value)], sql


def test_runtime_errors_reach_neither_the_client_nor_the_audit(service: CohortService, truth: Lake) -> None:
    ids = patient_ids(truth)
    records: list[CallRecord] = []
    dispatcher = Dispatcher(local_user, records.append, "stdio")
    sql = leaking_queries(lone_birth_date(truth))[0]

    async def call() -> str:
        try:
            await dispatcher.call("run_aggregate_sql", {"sql": sql}, lambda c, t: service.run_sql(c.id, sql, c.scope, t))
        except ToolError as exc:
            return str(exc)
        raise AssertionError("the query was answered")

    shown = anyio.run(call)
    assert records and records[0].decision == "refused" and records[0].reason is not None
    assert "Conversion" in shown and not [i for i in ids if i in shown or i in str(records[0].reason)]


def test_binder_errors_still_explain_the_query(service: CohortService) -> None:
    with pytest.raises(QueryRefused, match='Binder Error: Referenced column "nosuch"'):
        service.run_sql("t", "SELECT count(*) FROM patient WHERE nosuch = 1", SCOPE, Trace())


# ---------------------------------------------------------------------------- 2. aggregates over few values


def test_an_aggregate_fed_by_one_patient_is_suppressed(service: CohortService, truth: Lake) -> None:
    birth_date = lone_birth_date(truth)
    code, value = truth.sql(f"SELECT o.code, o.value_quantity FROM gold.observation o JOIN gold.patient p USING (patient_id) "
                            f"WHERE p.birth_date = '{birth_date}' AND o.value_quantity IS NOT NULL "
                            "ORDER BY o.effective_datetime DESC LIMIT 1").row(0)
    empty = truth.sql("SELECT code FROM gold.observation GROUP BY code HAVING count(value_quantity) = 0 "
                      "ORDER BY count(DISTINCT patient_id) DESC LIMIT 1").item()
    answer = service.run_sql("t", "SELECT avg(o.value_quantity), count(o.value_quantity) FROM observation o "
                                  "JOIN patient p ON p.patient_id = o.patient_id "
                                  f"WHERE (p.birth_date = '{birth_date}' AND o.code = '{code}') OR o.code = '{empty}'",
                             SCOPE, Trace())
    assert answer.rows == [] and answer.suppressed_rows == 1
    assert str(value) not in answer.model_dump_json()


def test_aggregates_over_many_patients_are_still_shown(service: CohortService, truth: Lake) -> None:
    common = truth.sql("SELECT code FROM gold.observation WHERE value_quantity IS NOT NULL GROUP BY code "
                       "ORDER BY count(DISTINCT patient_id) DESC LIMIT 1").item()
    answer = service.run_sql("t", f"SELECT avg(value_quantity), median(value_quantity) FROM observation WHERE code = '{common}'",
                             SCOPE, Trace())
    assert len(answer.rows) == 1 and answer.rows[0][0] is not None and answer.suppressed_rows == 0


# ---------------------------------------------------------------------------- 3. joins and differencing

HYPERTENSION = "Essential hypertension (disorder)"


@pytest.mark.parametrize("join", ["LEFT JOIN", "RIGHT JOIN", "FULL OUTER JOIN", "LEFT OUTER JOIN"])
def test_outer_joins_are_refused(service: CohortService, join: str) -> None:
    sql = (f"SELECT count(DISTINCT c.patient_id) FROM patient p {join} condition c "
           f"ON c.patient_id = p.patient_id AND c.code_display = '{HYPERTENSION}'")
    with pytest.raises(QueryRefused, match="outer joins"):
        service.run_sql("t", sql, SCOPE, Trace())


@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM patient p CROSS JOIN condition c",
    "SELECT count(*) FROM patient p, condition c WHERE c.patient_id = p.patient_id",
    "SELECT count(*) FROM patient p NATURAL JOIN condition c",
    "SELECT count(*) FROM patient p SEMI JOIN condition c ON c.patient_id = p.patient_id",
    "SELECT count(*) FROM patient p ANTI JOIN condition c ON c.patient_id = p.patient_id",
    "SELECT count(*) FROM patient p POSITIONAL JOIN condition c",
])
def test_other_joins_are_refused(service: CohortService, sql: str) -> None:
    with pytest.raises(QueryRefused, match=r"JOIN is not allowed|CROSS joins"):
        service.run_sql("t", sql, SCOPE, Trace())


def test_differencing_on_a_joined_table_is_refused(service: CohortService, truth: Lake) -> None:
    """The first table keeps every patient; the second loses one: the second answer is refused."""
    patient = truth.sql(f"SELECT min(patient_id) FROM gold.condition WHERE code_display = '{HYPERTENSION}'").item()
    base = (f"SELECT count(DISTINCT c.patient_id) FROM patient p JOIN condition c ON c.code_display = '{HYPERTENSION}'")
    first = service.run_sql("d", base, SCOPE, Trace())
    assert first.rows and first.rows[0][0] >= service.k
    with pytest.raises(QueryRefused, match="differs from an earlier answer"):
        service.run_sql("d", base + f" AND c.patient_id <> '{patient}'", SCOPE, Trace())
    with pytest.raises(QueryRefused, match="differs from an earlier answer"):
        service.run_sql("d", base + " JOIN patient q ON q.patient_id = c.patient_id "
                                    f"WHERE q.patient_id <> '{patient}'", SCOPE, Trace())


def test_inner_joins_are_answered(service: CohortService) -> None:
    answer = service.run_sql("t", "SELECT count(DISTINCT c.patient_id) FROM patient p JOIN condition c "
                                  f"ON c.patient_id = p.patient_id AND c.code_display = '{HYPERTENSION}'", SCOPE, Trace())
    assert answer.rows and answer.rows[0][0] >= service.k
    assert service.run_sql("t", "SELECT count(*) FROM patient p JOIN condition c USING (patient_id)", SCOPE, Trace()).rows


# ---------------------------------------------------------------------------- 4. grouped results


@pytest.mark.parametrize("group", ["ROLLUP(gender, deceased)", "CUBE(gender, deceased)",
                                   "GROUPING SETS ((gender), (gender, deceased))"])
def test_subtotals_are_refused(service: CohortService, group: str) -> None:
    with pytest.raises(QueryRefused, match="ROLLUP, CUBE and GROUPING SETS"):
        service.run_sql("t", f"SELECT gender, deceased, count(*) FROM patient GROUP BY {group}", SCOPE, Trace())


def assert_no_line_has_one_hidden_cell(truth_cells: dict[tuple[str, str], int], shown: set[tuple[str, str]], k: int) -> None:
    """In the whole table and in each line (one dimension fixed), the hidden cells are none, all,
    or at least two summing to k or more: no hidden cell is the difference of the others."""
    hidden = set(truth_cells) - shown
    assert {key for key, n in truth_cells.items() if n < k} <= hidden
    lines = [list(truth_cells)]
    for dim in (0, 1):
        by_other: dict[str, list[tuple[str, str]]] = {}
        for key in truth_cells:
            by_other.setdefault(key[1 - dim], []).append(key)
        lines += by_other.values()
    for line in lines:
        masked = [key for key in line if key in hidden]
        assert len(masked) != 1, line
        assert len(masked) in (0, len(line)) or sum(truth_cells[key] for key in masked) >= k, line


@pytest.mark.parametrize("sql", [
    "SELECT gender, marital_status, count(*) FROM patient GROUP BY gender, marital_status",
    "SELECT marital_status, gender, count(*) FROM patient GROUP BY ALL",
    "SELECT gender AS g, marital_status AS m, count(DISTINCT patient_id) FROM patient GROUP BY 1, m",
])
def test_a_two_dimension_table_hides_a_second_cell_in_each_line(service: CohortService, truth: Lake, sql: str) -> None:
    rows = truth.sql("SELECT gender, marital_status, count(*) FROM gold.patient GROUP BY ALL").rows()
    cells = {(str(g), str(m)): int(n) for g, m, n in rows}
    assert min(cells.values()) < service.k  # the demo lake has small cells here
    answer = service.run_sql("t", sql, SCOPE, Trace())
    flipped = answer.columns[0] == "marital_status"
    shown = {(str(r[1]), str(r[0])) if flipped else (str(r[0]), str(r[1])) for r in answer.rows}
    assert answer.suppressed_rows == len(cells) - len(shown) >= 2
    assert_no_line_has_one_hidden_cell(cells, shown, service.k)


def test_grouping_columns_not_shown_still_key_the_cells(service: CohortService) -> None:
    full = service.run_sql("t", "SELECT gender, marital_status, count(*) FROM patient GROUP BY 1, 2", SCOPE, Trace())
    partial = service.run_sql("t", "SELECT count(*) FROM patient GROUP BY gender, marital_status", SCOPE, Trace())
    assert partial.suppressed_rows == full.suppressed_rows
    assert sorted(r[0] for r in partial.rows) == sorted(r[2] for r in full.rows)


def test_limit_and_offset_apply_after_suppression(service: CohortService) -> None:
    everything = service.run_sql("t", "SELECT gender, marital_status, count(*) FROM patient GROUP BY 1, 2 ORDER BY 3", SCOPE, Trace())
    first = service.run_sql("t", "SELECT gender, marital_status, count(*) FROM patient GROUP BY 1, 2 ORDER BY 3 LIMIT 1",
                            SCOPE, Trace())
    second = service.run_sql("t", "SELECT gender, marital_status, count(*) FROM patient GROUP BY 1, 2 ORDER BY 3 "
                                  "LIMIT 1 OFFSET 1", SCOPE, Trace())
    assert everything.rows[0][2] >= service.k
    assert first.rows == everything.rows[:1] and second.rows == everything.rows[1:2]
    assert first.suppressed_rows == everything.suppressed_rows
    with pytest.raises(QueryRefused, match="LIMIT must be a whole number"):
        service.run_sql("t", "SELECT gender, count(*) FROM patient GROUP BY 1 LIMIT 1.5", SCOPE, Trace())


# ---------------------------------------------------------------------------- 5. cohort restriction

MALE = CohortDefinition.model_validate({"criteria": {"kind": "demographics", "sex": ["male"]}})
FEMALE = CohortDefinition.model_validate({"criteria": {"kind": "demographics", "sex": ["female"]}})
EVERYONE = CohortDefinition.model_validate({"criteria": {"kind": "demographics"}})
RESTRICTED = DataScope(cohort=CohortDefinition.model_validate({"criteria": {"kind": "cohort", "name": "site_cohort"}}))


def test_a_shared_cohort_name_cannot_be_saved_over(service: CohortService) -> None:
    service.share_cohort("site_cohort", FEMALE)
    with pytest.raises(QueryRefused, match="shared cohort"):
        service.save_cohort("evil", "site_cohort", MALE, SCOPE, Trace())


def test_a_clients_own_cohort_does_not_redefine_its_restriction(service: CohortService, truth: Lake) -> None:
    women = int(truth.sql("SELECT count(*) FROM gold.patient WHERE gender = 'female'").item())
    service.save_cohort("evil", "site_cohort", MALE, SCOPE, Trace())  # saved before the policy shares the name
    service.share_cohort("site_cohort", FEMALE)
    assert service.count("evil", EVERYONE, RESTRICTED, Trace()).patients.count == women
    answer = service.run_sql("evil", "SELECT gender, count(*) FROM patient GROUP BY gender", RESTRICTED, Trace())
    assert [row[0] for row in answer.rows] == ["female"]
