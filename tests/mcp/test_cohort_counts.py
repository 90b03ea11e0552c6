"""count_cohort and cohort_breakdown agree with hand-written SQL on the demo lake."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fhirlake.cohorts import CohortDefinition, Measure
from fhirlake.lake import Lake
from fhirlake.serving import CohortService, DataScope, Trace

SCOPE = DataScope()


def cohort(criteria: dict[str, Any], index_date: str | None = None) -> CohortDefinition:
    return CohortDefinition.model_validate({"criteria": criteria, **({"index_date": index_date} if index_date else {})})


def one(lake: Lake, sql: str) -> int:
    return int(lake.sql(sql).item())


def reference_date(lake: Lake) -> date:
    value = lake.sql("SELECT reference_time FROM fhirlake.catalog").item()
    assert isinstance(value, date)
    return value.date() if hasattr(value, "date") else value


CASES = [
    ({"kind": "demographics", "sex": ["female"]},
     "SELECT count(DISTINCT patient_id) FROM gold.patient WHERE gender = 'female'"),
    ({"kind": "condition", "codes": ["444814009"]},
     "SELECT count(DISTINCT patient_id) FROM gold.condition WHERE code = '444814009'"),
    ({"kind": "and", "criteria": [{"kind": "demographics", "sex": ["male"]}, {"kind": "condition", "codes": ["195662009"]}]},
     "SELECT count(DISTINCT c.patient_id) FROM gold.condition c JOIN gold.patient p USING (patient_id) "
     "WHERE p.gender = 'male' AND c.code = '195662009'"),
    ({"kind": "or", "criteria": [{"kind": "condition", "codes": ["15777000"]}, {"kind": "condition", "codes": ["44054006"]}]},
     "SELECT count(DISTINCT patient_id) FROM gold.condition WHERE code IN ('15777000', '44054006')"),
    ({"kind": "not", "criterion": {"kind": "condition", "codes": ["444814009"]}},
     "SELECT count(*) FROM gold.patient WHERE patient_id NOT IN (SELECT patient_id FROM gold.condition WHERE code = '444814009')"),
    ({"kind": "observation", "codes": ["4548-4"], "value": {"op": "gt", "value": 5.7, "unit": "%"}},
     "SELECT count(DISTINCT patient_id) FROM gold.observation WHERE code = '4548-4' AND value_quantity > 5.7 AND value_unit = '%'"),
    ({"kind": "observation", "codes": ["8480-6"], "value": {"op": "ge", "value": 130}},
     "SELECT count(DISTINCT patient_id) FROM gold.observation_component WHERE code = '8480-6' AND value_quantity >= 130"),
    ({"kind": "encounter", "class_codes": ["AMB"], "min_count": 20},
     "SELECT count(*) FROM (SELECT patient_id FROM gold.encounter WHERE class_code = 'AMB' GROUP BY patient_id HAVING count(*) >= 20)"),
    ({"kind": "condition", "codes": ["444814009"], "window": {"start": "2020-01-01", "end": "2022-12-31"}},
     "SELECT count(DISTINCT patient_id) FROM gold.condition WHERE code = '444814009' "
     "AND CAST(left(coalesce(onset_datetime, recorded_date), 10) AS DATE) BETWEEN DATE '2020-01-01' AND DATE '2022-12-31'"),
]


@pytest.mark.parametrize(("criteria", "sql"), CASES, ids=[c[0]["kind"] + str(i) for i, c in enumerate(CASES)])
def test_count_matches_independent_sql(service: CohortService, truth: Lake, criteria: dict[str, Any], sql: str) -> None:
    expected = one(truth, sql)
    answer = service.count("t", cohort(criteria), SCOPE, Trace())
    if expected < service.k:
        assert answer.patients.suppressed and answer.patients.count is None
    else:
        assert answer.patients.count == expected


def test_age_at_index_date(service: CohortService, truth: Lake) -> None:
    expected = one(truth, "SELECT count(*) FROM gold.patient WHERE date_diff('year', CAST(birth_date AS DATE), DATE '2020-01-01') "
                          "- CASE WHEN strftime(CAST(birth_date AS DATE), '%m-%d') > '01-01' THEN 1 ELSE 0 END BETWEEN 18 AND 64")
    answer = service.count("t", cohort({"kind": "demographics", "age_min": 18, "age_max": 64}, "2020-01-01"), SCOPE, Trace())
    assert answer.patients.count == expected


def test_breakdown_cells_sum_to_the_total_and_match_sql(service: CohortService, truth: Lake) -> None:
    definition = cohort({"kind": "condition", "codes": ["444814009"]})
    answer = service.breakdown("t", definition, ["sex"], SCOPE, Trace())
    by_sex = dict(truth.sql("SELECT p.gender, count(DISTINCT p.patient_id) FROM gold.patient p JOIN gold.condition c "
                            "USING (patient_id) WHERE c.code = '444814009' GROUP BY 1").iter_rows())
    shown = {cell.dimensions["sex"]: cell.patients.count for cell in answer.cells if not cell.patients.suppressed}
    assert shown == by_sex
    # female and male are listed always (an empty one as '<11'), so a cell's presence says nothing;
    # a rarer value (other, unknown, none recorded) only when it is shown
    assert {"female", "male"} <= {cell.dimensions["sex"] for cell in answer.cells}
    assert answer.total.count == sum(by_sex.values())


def test_breakdown_measure_matches_sql(service: CohortService, truth: Lake) -> None:
    definition = cohort({"kind": "observation", "codes": ["4548-4"]})
    answer = service.breakdown("t", definition, [], SCOPE, Trace(),
                               measure=Measure(codes=["4548-4"], per_patient="mean", bounds=(0.0, 20.0)))
    expected = truth.sql("SELECT median(v), avg(v), count(*) FROM (SELECT patient_id, avg(value_quantity) v FROM gold.observation "
                         "WHERE code = '4548-4' GROUP BY 1)").row(0)
    [cell] = answer.cells
    # quantiles are chosen among 201 candidates in the bounds: exact to one step (0.1 here)
    assert cell.median == pytest.approx(expected[0], abs=0.1)
    assert cell.mean == pytest.approx(expected[1], abs=1e-3)
    assert cell.patients.count == expected[2]


def test_breakdown_quartiles_by_sex_match_sql(service: CohortService, truth: Lake) -> None:
    definition = cohort({"kind": "observation", "codes": ["4548-4"]})
    answer = service.breakdown("t", definition, ["sex"], SCOPE, Trace(),
                               measure=Measure(codes=["4548-4"], per_patient="max", bounds=(0.0, 20.0)))
    expected = {row[0]: row[1:] for row in truth.sql(
        "SELECT p.gender, count(*), quantile_cont(v, 0.25), median(v), quantile_cont(v, 0.75) FROM gold.patient p "
        "JOIN (SELECT patient_id, max(value_quantity) v FROM gold.observation WHERE code = '4548-4' GROUP BY 1) "
        "USING (patient_id) GROUP BY 1").iter_rows()}
    shown = [cell for cell in answer.cells if cell.median is not None]
    assert shown, "no cell was large enough to show its measure"
    for cell in shown:
        patients, p25, median, p75 = expected[cell.dimensions["sex"]]
        assert cell.patients.count == patients
        assert (cell.p25, cell.median, cell.p75) == pytest.approx((p25, median, p75), abs=0.1)


def test_breakdown_suppresses_small_cells_and_a_second_one(service: CohortService) -> None:
    answer = service.breakdown("t", cohort({"kind": "demographics"}), ["region"], SCOPE, Trace())
    shown = [c.patients.count for c in answer.cells if c.patients.count is not None]
    assert all(n >= service.k for n in shown)
    # regions under k are left out (a region's key comes from the data), and the smallest shown
    # region goes with them, so the total minus the shown regions is at least k
    assert answer.total.count is not None and answer.total.count - sum(shown) >= service.k
    assert answer.suppressed_cells == len([c for c in answer.cells if c.patients.suppressed])
    assert "not listed" in answer.note


def test_saved_cohort_is_reused_and_compared(service: CohortService) -> None:
    women = cohort({"kind": "demographics", "sex": ["female"]})
    service.save_cohort("t", "women", women, SCOPE, Trace())
    by_name = cohort({"kind": "cohort", "name": "women"})
    assert service.count("t", by_name, SCOPE, Trace()).patients.count == service.count("t", women, SCOPE, Trace()).patients.count
    answer = service.compare("t", by_name, cohort({"kind": "demographics", "sex": ["male"]}), SCOPE, Trace())
    assert answer.both.count is None and answer.both.suppressed  # nobody is both
    # nobody is both: 'both' is hidden, and with it a second cell of each line (a = both + only_a);
    # the totals stay, consistent with the cells they add up
    assert answer.only_a.suppressed and answer.only_b.suppressed
    assert answer.a.count == service.count("t", women, SCOPE, Trace()).patients.count
