"""A battery of hostile inputs: each is refused, or its small cells are suppressed."""

from __future__ import annotations

import pytest

from fhirlake.cohorts import CohortDefinition
from fhirlake.lake import Lake
from fhirlake.serving import CohortService, DataScope, QueryRefused, Trace

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
}


@pytest.mark.parametrize("sql", list(REFUSED.values()), ids=list(REFUSED))
def test_hostile_sql_is_refused(service: CohortService, sql: str) -> None:
    with pytest.raises(QueryRefused):
        service.run_sql("t", sql, SCOPE, Trace())


def test_comments_do_not_reach_duckdb(service: CohortService) -> None:
    trace = Trace()
    service.run_sql("t", "SELECT gender, count(*) FROM patient /* ; ATTACH 'x' */ GROUP BY gender -- ; COPY", SCOPE, trace)
    assert trace.sql and all("ATTACH" not in s and "COPY" not in s and "/*" not in s for s in trace.sql)


def test_one_patient_filtered_is_suppressed(service: CohortService, truth: Lake) -> None:
    patient = truth.sql("SELECT patient_id FROM gold.patient ORDER BY patient_id LIMIT 1").item()
    answer = service.run_sql("t", f"SELECT gender, count(*) FROM condition c JOIN patient p ON p.patient_id = c.patient_id "
                                  f"WHERE p.patient_id = '{patient}' GROUP BY gender", SCOPE, Trace())
    assert answer.rows == [] and answer.suppressed_rows == 1


def test_high_cardinality_grouping_is_suppressed(service: CohortService) -> None:
    answer = service.run_sql("t", "SELECT birth_date, count(*) FROM patient GROUP BY birth_date", SCOPE, Trace())
    assert answer.rows == [] and answer.suppressed_rows > 100


def test_a_single_suppressed_row_takes_a_second_with_it(service: CohortService, truth: Lake) -> None:
    answer = service.run_sql("t", "SELECT deceased, count(*) FROM patient GROUP BY deceased", SCOPE, Trace())
    assert answer.suppressed_rows == 2 and answer.rows == []  # 'true' is rare: 'false' would give it away


def test_differencing_two_cohorts_is_refused(service: CohortService, truth: Lake) -> None:
    patient = truth.sql("SELECT region FROM gold.patient GROUP BY region HAVING count(*) = 1 LIMIT 1").item()
    everyone = CohortDefinition.model_validate({"criteria": {"kind": "demographics"}})
    all_but_one = CohortDefinition.model_validate(
        {"criteria": {"kind": "not", "criterion": {"kind": "demographics", "regions": [patient]}}})
    assert service.count("t", everyone, SCOPE, Trace()).patients.count is not None
    with pytest.raises(QueryRefused, match="differs from an earlier answer"):
        service.count("t", all_but_one, SCOPE, Trace())
    with pytest.raises(QueryRefused, match="differ by fewer than"):
        service.compare("u", everyone, all_but_one, SCOPE, Trace())


def test_differencing_through_sql_is_refused(service: CohortService, truth: Lake) -> None:
    patient = truth.sql("SELECT patient_id FROM gold.patient ORDER BY patient_id LIMIT 1").item()
    service.run_sql("t", "SELECT gender, avg(age) FROM patient GROUP BY gender", SCOPE, Trace())
    with pytest.raises(QueryRefused, match="differs from an earlier answer"):
        service.run_sql("t", f"SELECT gender, avg(age) FROM patient WHERE patient_id <> '{patient}' GROUP BY gender", SCOPE, Trace())


def test_answers_never_hold_keys(service: CohortService, truth: Lake) -> None:
    keys = {str(k) for k in truth.sql("SELECT patient_id FROM gold.patient").to_series()}
    answers = [service.list_views(SCOPE, Trace()), service.describe_view("patient", SCOPE, Trace()),
               service.search_codes("diabetes", SCOPE, Trace()),
               service.run_sql("t", "SELECT gender, count(DISTINCT c.patient_id) FROM condition c JOIN patient p "
                                    "ON p.patient_id = c.patient_id GROUP BY gender", SCOPE, Trace())]
    text = " ".join(a.model_dump_json() for a in answers)
    assert not [k for k in keys if k in text]


def test_k_has_a_floor() -> None:
    from fhirlake.errors import ConfigurationError
    from fhirlake.serving import K_FLOOR, SuppressionPolicy

    with pytest.raises(ConfigurationError):
        SuppressionPolicy(k=K_FLOOR - 1)
