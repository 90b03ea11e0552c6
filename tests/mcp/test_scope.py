"""A scoped client never counts outside its scope: sources, cohort, views, hidden columns."""

from __future__ import annotations

import pytest

from fhirlake.cohorts import CohortDefinition
from fhirlake.lake import Lake
from fhirlake.serving import CohortService, DataScope, QueryRefused, Trace

SITE_A = DataScope(sources=frozenset({"site-a"}))
EVERYONE = CohortDefinition.model_validate({"criteria": {"kind": "demographics"}})


def test_source_scope_counts_only_its_tenant(service: CohortService, truth: Lake) -> None:
    expected = int(truth.sql("SELECT count(*) FROM gold.patient WHERE _source = 'site-a'").item())
    assert service.count("a", EVERYONE, SITE_A, Trace()).patients.count == expected
    sql = service.run_sql("a", "SELECT count(DISTINCT patient_id) AS n FROM patient", SITE_A, Trace())
    assert sql.rows == [[expected]]
    by_source = service.run_sql("b", "SELECT _source, count(*) FROM condition GROUP BY _source", SITE_A, Trace())
    assert [row[0] for row in by_source.rows] == ["site-a"]


def test_source_scope_holds_in_subqueries_and_joins(service: CohortService, truth: Lake) -> None:
    expected = int(truth.sql("SELECT count(DISTINCT patient_id) FROM gold.condition WHERE _source = 'site-a'").item())
    answer = service.run_sql("a", "SELECT count(DISTINCT p.patient_id) FROM patient p JOIN condition c ON c.patient_id = p.patient_id "
                                  "JOIN encounter e USING (patient_id)", SITE_A, Trace())
    assert answer.rows[0][0] <= expected


def test_cohort_restriction_limits_every_query(service: CohortService, truth: Lake) -> None:
    women = CohortDefinition.model_validate({"criteria": {"kind": "demographics", "sex": ["female"]}})
    scope = DataScope(cohort=women)
    expected = int(truth.sql("SELECT count(*) FROM gold.patient WHERE gender = 'female'").item())
    assert service.count("c", EVERYONE, scope, Trace()).patients.count == expected
    answer = service.run_sql("c2", "SELECT gender, count(*) FROM patient GROUP BY gender", scope, Trace())
    assert [row[0] for row in answer.rows] == ["female"]
    service.share_cohort("women", women)
    named = DataScope(cohort="women")
    assert service.count("c3", EVERYONE, named, Trace()).patients.count == expected


def test_views_and_hidden_columns(service: CohortService) -> None:
    scope = DataScope(views=frozenset({"patient"}), hidden_columns={"patient": frozenset({"region"})})
    assert [v.name for v in service.list_views("h", scope, Trace()).views] == ["patient"]
    with pytest.raises(QueryRefused):
        service.run_sql("h", "SELECT count(*) FROM condition", scope, Trace())
    with pytest.raises(QueryRefused):
        service.run_sql("h", "SELECT region, count(*) FROM patient GROUP BY region", scope, Trace())
    assert "region" not in [c.name for c in service.describe_view("h", "patient", scope, Trace()).columns]


def test_generalised_column(service: CohortService) -> None:
    scope = DataScope(generalized_columns={"patient": {"marital_status": "prefix:1"}})
    answer = service.run_sql("g", "SELECT marital_status, count(*) FROM patient GROUP BY 1", scope, Trace())
    assert answer.rows and all(row[0] is None or len(row[0]) == 1 for row in answer.rows)
