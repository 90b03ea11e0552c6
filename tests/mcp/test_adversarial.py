"""A battery of hostile inputs: each is refused, or its small cells are suppressed, or noise and
the budget stand in the way. (The generated attacks written apart from the implementation are
in ``tests/mcp/attacks/``.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirlake.cohorts import CohortDefinition
from fhirlake.lake import Lake
from fhirlake.serving import (
    BudgetExhausted,
    CohortService,
    DataScope,
    GoldReader,
    PrivacyPolicy,
    QueryRefused,
    Trace,
)

SCOPE = DataScope()

REFUSED = {
    "read_csv": "SELECT count(*) FROM read_csv('/etc/passwd')",
    "read_parquet_gold_files": "SELECT count(*) FROM read_parquet('gold/patient/**/*.parquet')",
    "replacement_scan": "SELECT count(*) FROM '/etc/passwd'",
    "quoted_file": 'SELECT count(*) FROM "data.csv"',
    "glob": "SELECT count(*) FROM glob('/etc/*')",
    "read_text_in_where": "SELECT count(*) FROM patient WHERE gender IN (SELECT content FROM read_text('/etc/hostname'))",
    "attach": "ATTACH '/tmp/other.duckdb' AS other",
    "copy": "COPY (SELECT gender FROM patient) TO '/tmp/out.csv'",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "pragma": "PRAGMA database_list",
    "set": "SET enable_external_access = true",
    "several_statements": "SELECT count(*) FROM patient; SELECT count(*) FROM condition",
    "comment_then_statement": "SELECT count(*) FROM patient /* ok */; DROP VIEW patient",
    "union": "SELECT count(*) FROM patient UNION ALL SELECT count(*) FROM condition",
    "cte": "WITH x AS (SELECT gender FROM patient) SELECT count(*) FROM x",
    "silver": "SELECT count(*) FROM silver.Patient",
    "catalog_tables": "SELECT count(*) FROM fhirlake.files",
    "duckdb_settings": "SELECT count(*) FROM duckdb_settings()",
    "group_by_patient_key": "SELECT patient_id, count(*) FROM condition GROUP BY patient_id",
    "group_by_key_expression": "SELECT count(*) FROM condition GROUP BY left(patient_id, 40)",
    "order_by_key": "SELECT count(*) FROM condition GROUP BY code ORDER BY any_value(patient_id)",
    "show_resource_key": "SELECT observation_id, count(*) FROM observation GROUP BY ALL",
    "star": "SELECT * FROM patient",
    "min_reveals_one": "SELECT gender, min(age) FROM patient GROUP BY gender",
    "list_agg": "SELECT list(region) FROM patient",
    "string_agg": "SELECT string_agg(patient_id, ',') FROM patient",
    "condition_inside_aggregate": "SELECT sum(CASE WHEN birth_date = '1957-05-06' THEN age END) FROM patient",
    "filter_clause": "SELECT count(*) FILTER (WHERE birth_date = '1957-05-06') FROM patient",
    "extreme_quantile": "SELECT quantile_cont(age, 0.999) FROM patient",
    "window_function": "SELECT gender, count(*) OVER () FROM patient",
    "derived_table": "SELECT count(*) FROM (SELECT * FROM patient) p",
    "internal_key": "SELECT count(DISTINCT __fl_pk) FROM patient",
    "getenv": "SELECT count(*) FROM patient WHERE region = getenv('HOME')",
    "not_sql": "DROP TABLE patient",
    "unparsable": "SELEC count(*) FROM patient",
    # the named attacks of issue #16
    "whole_row_through_median": "SELECT median(p) FROM patient p",
    "whole_row_per_group": "SELECT gender, median(o) FROM observation o JOIN patient USING (patient_id) GROUP BY gender",
    "subquery_oracle": "SELECT count(*) FROM patient WHERE (SELECT count(*) FROM patient q WHERE q.deceased) = 7",
    "binary_search_on_a_key": "SELECT count(*) FROM patient q WHERE q.patient_id >= 'm'",
    "cast_oracle": "SELECT count(*) FROM patient WHERE CAST(CASE WHEN deceased THEN 'x' ELSE '1' END AS INTEGER) = 1",
    "division_oracle": "SELECT count(*) FROM patient WHERE 1 / (CASE WHEN deceased THEN 0 ELSE 1 END) = 1",
    "text_column_with_a_number": "SELECT count(*) FROM patient WHERE region = 3",
    "having": "SELECT region, count(*) FROM patient GROUP BY region HAVING count(*) > 1",
    "rollup": "SELECT gender, deceased, count(*) FROM patient GROUP BY ROLLUP (gender, deceased)",
    "outer_join": "SELECT count(*) FROM patient p LEFT JOIN condition c ON c.patient_id = p.patient_id",
    "non_key_join": "SELECT count(*) FROM patient p JOIN condition c ON c.code = p.gender",
    "comma_join": "SELECT count(*) FROM patient p, condition c WHERE c.patient_id = p.patient_id",
    "deep_nesting": "SELECT count(*) FROM patient WHERE " + "(" * 100 + "age > 1" + ")" * 100,
    "free_text_column": "SELECT value_string, count(*) FROM observation GROUP BY ALL",
    "arithmetic_in_select": "SELECT age + 1, count(*) FROM patient GROUP BY 1",
}


@pytest.mark.parametrize("sql", list(REFUSED.values()), ids=list(REFUSED))
def test_hostile_sql_is_refused(service: CohortService, sql: str) -> None:
    with pytest.raises(QueryRefused):
        service.run_sql("t", sql, SCOPE, Trace())


def test_comments_do_not_reach_duckdb(service: CohortService) -> None:
    trace = Trace()
    service.run_sql("t", "SELECT gender, count(*) FROM patient /* ; ATTACH 'x' */ GROUP BY gender -- ; COPY", SCOPE, trace)
    assert trace.sql and all("ATTACH" not in s and "COPY" not in s and "/*" not in s for s in trace.sql)


def test_a_key_cannot_be_filtered_on(service: CohortService, truth: Lake) -> None:
    patient = truth.sql("SELECT patient_id FROM gold.patient ORDER BY patient_id LIMIT 1").item()
    with pytest.raises(QueryRefused, match="is a key"):
        service.run_sql("t", f"SELECT gender, count(*) FROM condition c JOIN patient p ON p.patient_id = c.patient_id "
                             f"WHERE p.patient_id = '{patient}' GROUP BY gender", SCOPE, Trace())


def test_a_quasi_identifier_cannot_be_grouped_by(service: CohortService) -> None:
    with pytest.raises(QueryRefused, match="quasi-identifier"):
        service.run_sql("t", "SELECT birth_date, count(*) FROM patient GROUP BY birth_date", SCOPE, Trace())


def test_high_cardinality_grouping_is_suppressed(service: CohortService, truth: Lake) -> None:
    years = truth.sql("SELECT count(DISTINCT birth_year) FROM gold.patient").item()
    answer = service.run_sql("t", "SELECT birth_year, count(*) FROM patient GROUP BY birth_year", SCOPE, Trace())
    assert len(answer.rows) < years / 4 and all(row[1] >= service.k for row in answer.rows)
    # rows under k are left out without a trace: counting them would say someone is there
    assert answer.suppressed_rows == 0 or "suppressed" in answer.note


def test_a_single_suppressed_row_takes_a_second_with_it(service: CohortService, truth: Lake) -> None:
    answer = service.run_sql("t", "SELECT deceased, count(*) FROM patient GROUP BY deceased", SCOPE, Trace())
    # 'true' is rare (left out); 'false' would give it away from the total: hidden as 'suppressed'
    assert answer.suppressed_rows == 1 and answer.rows == []


def test_differencing_two_cohorts_meets_noise_not_exact_counts(noisy_service: CohortService, truth: Lake) -> None:
    """Everyone, then everyone but one region's single patient: each answer is noisy, so the
    difference is not the one patient; asking again gives the same answers, for free."""
    region = truth.sql("SELECT region FROM gold.patient GROUP BY region HAVING count(*) = 1 LIMIT 1").item()
    everyone = CohortDefinition.model_validate({"criteria": {"kind": "demographics"}})
    all_but_one = CohortDefinition.model_validate(
        {"criteria": {"kind": "not", "criterion": {"kind": "demographics", "regions": [region]}}})
    first = noisy_service.count("t", everyone, SCOPE, Trace())
    second = noisy_service.count("t", all_but_one, SCOPE, Trace())
    assert first.privacy.noise[0].scale == second.privacy.noise[0].scale == 1.0
    again = noisy_service.count("t", all_but_one, SCOPE, Trace())
    assert again.patients == second.patients and again.privacy.cached and again.privacy.epsilon == 0.0
    assert second.privacy.epsilon_left == first.privacy.epsilon_left - 1.0


def test_the_budget_stops_an_attacker_across_services(demo_lake: Path, tmp_path: Path) -> None:
    """Rephrasings cost budget; the ledger is shared by every service (process) on the state folder."""
    policy = PrivacyPolicy(epsilon_per_call=1.0, epsilon_per_day=3.0)
    readers = [GoldReader(demo_lake), GoldReader(demo_lake)]
    services = [CohortService(r, privacy=policy, state_dir=tmp_path / "state") for r in readers]
    try:
        for age in (40, 41, 42):
            services[age % 2].run_sql("mallory", f"SELECT count(*) FROM patient WHERE age >= {age}", SCOPE, Trace())
        with pytest.raises(BudgetExhausted, match="budget"):
            services[1].run_sql("mallory", "SELECT count(*) FROM patient WHERE age >= 43", SCOPE, Trace())
        # an answer already released is given again at no cost
        assert services[1].run_sql("mallory", "SELECT count(*) FROM patient WHERE age >= 40", SCOPE, Trace()).privacy.cached
        assert services[0].run_sql("alice", "SELECT count(*) FROM patient WHERE age >= 43", SCOPE, Trace()).rows
    finally:
        for service, reader in zip(services, readers, strict=True):
            service.close()
            reader.close()


def test_answers_never_hold_keys(service: CohortService, truth: Lake) -> None:
    keys = {str(k) for k in truth.sql("SELECT patient_id FROM gold.patient").to_series()}
    answers = [service.list_views("t", SCOPE, Trace()), service.describe_view("t", "patient", SCOPE, Trace()),
               service.search_codes("t", "diabetes", SCOPE, Trace()),
               service.run_sql("t", "SELECT gender, count(DISTINCT c.patient_id) FROM condition c JOIN patient p "
                                    "ON p.patient_id = c.patient_id GROUP BY gender", SCOPE, Trace())]
    text = " ".join(a.model_dump_json() for a in answers)
    assert not [k for k in keys if k in text]


def test_k_has_a_floor() -> None:
    from fhirlake.errors import ConfigurationError
    from fhirlake.serving import K_FLOOR, SuppressionPolicy

    with pytest.raises(ConfigurationError):
        SuppressionPolicy(k=K_FLOOR - 1)
