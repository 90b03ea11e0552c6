"""Differencing cannot cancel the noise: pairs of queries over populations one patient apart, through every tool.

Issue #16, deliver 2. The populations are "everyone" and "everyone but the only patient of region R"
(and the same restricted to one sex, or to a diagnosis), asked through run_aggregate_sql,
count_cohort (with or/and/not pads), cohort_breakdown (its margins) and compare_cohorts. Checked:

* the released difference is noisy: over several attempts, the attacker's estimate is not exactly the
  true difference every time, and every release is within the documented bound
  (|released - true| <= 12 x scale, a probability of about exp(-12) each);
* repeating the identical, or a canonically equal, query returns the identical answer and spends
  nothing (no averaging);
* every rephrasing spends budget, and the period budget stops the attack: at most
  epsilon_per_day / epsilon_per_call answers, then a refusal containing "budget";
* the budget and the release cache are shared by sessions, by servers over one state directory,
  and by two ``fhirlake mcp`` processes given the same ``--state``.

Strict readings: the canonical form normalises the order of AND/OR operands and of IN lists, for
SQL and for cohort definitions alike (a cohort's ``and``/``or`` criteria and its value lists in another
order are the same query); a repeated query is answered from the cache even after the budget is
spent (it spends nothing); ``epsilon_left`` after a call is the previous value minus that call's
``epsilon``; a patient count's noise has ``scale x epsilon >= 1`` (sensitivity 1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhirlake.lake import Lake

from .conftest import (
    EPS_CALL,
    EPS_DAY,
    EVERYONE,
    Harness,
    Reply,
    Servers,
    Session,
    Target,
    assert_answered,
    assert_refused,
    but_region,
    cohort_pad,
    count_of,
    noise_bound,
    sql_by_key,
    sql_cell,
    sql_pad,
    stdio_server,
    strip_privacy,
)

ATTEMPTS = 8


def released(reply: Reply, *path: str) -> float | None:
    data: Any = assert_answered(reply)
    for part in path:
        data = data[part]
    return count_of(data)


def assert_same_release(first: Reply, again: Reply, left: float | None = None) -> None:
    """`again` repeats `first`: the same answer, from the cache, spending nothing (`left`: the budget left just before)."""
    assert_answered(first)
    assert_answered(again)
    assert strip_privacy(again.data) == strip_privacy(first.data), (
        f"a repeated query got another answer (noise could be averaged out):\n{first.describe()}\n{again.describe()}")
    assert again.privacy["cached"] is True and float(again.privacy["epsilon"]) == 0.0, again.privacy
    # epsilon_left is the client's budget left now (spec): a repeat spends nothing, so it never grows
    assert float(again.privacy["epsilon_left"]) <= float(first.privacy["epsilon_left"]) + 1e-9, (first.privacy, again.privacy)
    if left is not None:
        assert float(again.privacy["epsilon_left"]) == pytest.approx(left), (left, again.privacy)


def assert_count_noise_is_calibrated(reply: Reply) -> None:
    """A patient count (sensitivity 1) released with epsilon e has noise scale >= 1/e."""
    for entry in reply.privacy["noise"]:
        if float(entry["epsilon"]) > 0:
            assert float(entry["scale"]) * float(entry["epsilon"]) >= 1 - 1e-6, entry
    assert sum(float(e["epsilon"]) for e in reply.privacy["noise"]) <= float(reply.privacy["epsilon"]) + 1e-9 or reply.privacy["cached"]


def assert_not_exact(estimates: list[float], truth: float, what: str) -> None:
    assert estimates, f"{what}: no estimate could be made"
    exact = [e for e in estimates if abs(e - truth) < 0.5]
    assert len(exact) < len(estimates), f"{what}: every one of {len(estimates)} attempts gave the exact true difference {truth}"


@pytest.fixture
def session(servers: Servers, harness: Harness) -> Session:
    return harness.connect(servers.new().mcp, "attacker")


def truth_count(truth: Lake, where: str = "TRUE") -> int:
    return int(truth.sql(f"SELECT count(*) FROM gold.patient p WHERE {where}").item())


# ------------------------------------------------------------------------------------------ repeats


def test_an_identical_query_returns_the_identical_answer_and_spends_nothing(session: Session, target: Target) -> None:
    calls = [
        ("run_aggregate_sql", {"sql": "SELECT p.gender, count(*) AS n FROM patient p GROUP BY p.gender"}),
        ("count_cohort", {"cohort": {"criteria": {"kind": "condition", "codes": [target.has_code]}}}),
        ("cohort_breakdown", {"cohort": {"criteria": EVERYONE}, "dimensions": ["sex"]}),
        ("compare_cohorts", {"a": {"criteria": {"kind": "demographics", "sex": ["female"]}},
                             "b": {"criteria": {"kind": "condition", "codes": [target.has_code]}}}),
    ]
    for tool, arguments in calls:
        first = session.call(tool, arguments)
        assert_answered(first)
        assert float(first.privacy["epsilon"]) > 0 and first.privacy["cached"] is False, first.privacy
        for _ in range(3):
            assert_same_release(first, session.call(tool, json.loads(json.dumps(arguments))), float(first.privacy["epsilon_left"]))


def test_canonically_equal_queries_share_one_release(session: Session) -> None:
    base = "SELECT p.gender, count(*) AS n FROM patient p WHERE p.deceased = FALSE AND p.region IN ('CA', 'TX', 'MA') GROUP BY p.gender"
    variants = [
        "select p.gender, count(*) as n from patient p where p.deceased = false and p.region in ('CA', 'TX', 'MA') group by p.gender",
        "SELECT  p.gender,\n  count(*) AS n\nFROM patient p\nWHERE p.deceased = FALSE\n  AND p.region IN ('CA', 'TX', 'MA')\nGROUP BY p.gender",
        "SELECT p.gender, count(*) AS n FROM patient p WHERE p.region IN ('CA', 'TX', 'MA') AND p.deceased = FALSE GROUP BY p.gender",
        "SELECT p.gender, count(*) AS n FROM patient p WHERE p.deceased = FALSE AND p.region IN ('TX', 'MA', 'CA') GROUP BY p.gender",
        "SELECT p.gender, count(*) AS n FROM patient p WHERE p.region IN ('MA', 'CA', 'TX') AND p.deceased = FALSE GROUP BY p.gender",
    ]
    first = session.sql(base)
    for variant in variants:
        assert_same_release(first, session.sql(variant), float(first.privacy["epsilon_left"]))
    a = {"kind": "demographics", "sex": ["female", "male"]}
    b = {"kind": "condition", "codes": ["44054006", "15777000"]}
    for kind in ("and", "or"):
        first = session.count({"kind": kind, "criteria": [a, b]})
        assert_same_release(first, session.count({"kind": kind, "criteria": [b, a]}))
        swapped_lists = {"kind": kind, "criteria": [{"kind": "demographics", "sex": ["male", "female"]},
                                                    {"kind": "condition", "codes": ["15777000", "44054006"]}]}
        assert_same_release(first, session.count(swapped_lists))


# ------------------------------------------------------------------------------------------ noise


def test_rephrased_counts_are_noisy_and_within_the_documented_bound(session: Session, truth: Lake) -> None:
    true = truth_count(truth, "p.gender = 'female'")
    values = []
    for i in range(12):
        reply = session.sql(f"SELECT count(*) AS n FROM patient p WHERE p.gender = 'female' AND {sql_pad(i)}")
        value = sql_cell(assert_answered(reply), "n")
        assert value is not None, reply.describe()
        assert abs(value - true) <= noise_bound(reply), f"released {value}, true {true}, beyond the bound: {reply.privacy}"
        assert_count_noise_is_calibrated(reply)
        values.append(value)
    assert len(set(values)) > 1, f"rephrasings all got the same value {values[0]}: the noise does not depend on the query"
    assert_not_exact(values, true, "a count of women")


def test_one_patient_differencing_through_sql_is_noisy(session: Session, truth: Lake, target: Target) -> None:
    everyone = truth_count(truth)
    estimates = []
    for i in range(ATTEMPTS):
        a = session.sql(f"SELECT count(*) AS n FROM patient p WHERE {sql_pad(i)}")
        b = session.sql(f"SELECT count(*) AS n FROM patient p WHERE {sql_pad(i)} AND p.region <> '{target.region}'")
        va, vb = sql_cell(assert_answered(a), "n"), sql_cell(assert_answered(b), "n")
        assert va is not None and vb is not None
        assert abs(va - everyone) <= noise_bound(a) and abs(vb - (everyone - 1)) <= noise_bound(b)
        estimates.append(va - vb)
    assert_not_exact(estimates, 1, "count(everyone) - count(everyone but one)")


def test_one_patient_differencing_through_count_cohort_pads_is_noisy(session: Session, truth: Lake, target: Target) -> None:
    everyone = truth_count(truth)
    estimates = []
    for i in range(ATTEMPTS):
        a = session.count(cohort_pad(EVERYONE, i))
        b = session.count(cohort_pad(but_region(EVERYONE, target.region), i))
        va, vb = released(a, "patients"), released(b, "patients")
        assert va is not None and vb is not None, (a.describe(), b.describe())
        assert abs(va - everyone) <= noise_bound(a) and abs(vb - (everyone - 1)) <= noise_bound(b)
        assert_count_noise_is_calibrated(a)
        estimates.append(va - vb)
    assert_not_exact(estimates, 1, "count_cohort(everyone) - count_cohort(everyone but one), or/and/not pads")


def test_one_patient_differencing_through_breakdown_margins_is_noisy(session: Session, truth: Lake, target: Target) -> None:
    everyone = truth_count(truth)
    same_sex = truth_count(truth, f"p.gender = '{target.gender}'")
    totals, cells = [], []
    for i in range(ATTEMPTS):
        a = session.call("cohort_breakdown", {"cohort": {"criteria": cohort_pad(EVERYONE, i)}, "dimensions": ["sex"]})
        b = session.call("cohort_breakdown", {"cohort": {"criteria": cohort_pad(but_region(EVERYONE, target.region), i)},
                                              "dimensions": ["sex"]})
        for reply, total in ((a, everyone), (b, everyone - 1)):
            data = assert_answered(reply)
            shown = [count_of(c["patients"]) for c in data["cells"]]
            released_total = count_of(data["total"])
            assert released_total is not None
            assert abs(released_total - total) <= noise_bound(reply)
            if all(v is not None for v in shown):
                assert released_total == sum(shown), f"the margin is not the sum of its released cells: {data}"
        totals.append(released(a, "total") - released(b, "total"))
        cell_a = next(count_of(c["patients"]) for c in a.data["cells"] if c["dimensions"]["sex"] == target.gender)
        cell_b = next(count_of(c["patients"]) for c in b.data["cells"] if c["dimensions"]["sex"] == target.gender)
        if cell_a is not None and cell_b is not None:
            cells.append(cell_a - cell_b)
    assert same_sex >= 11
    assert_not_exact(totals, 1, "breakdown totals")
    if cells:  # a cell may be hidden by secondary suppression; what is shown must not give the patient away
        assert_not_exact(cells, 1, f"breakdown cells of sex {target.gender}")


def test_one_patient_differencing_through_compare_cohorts_is_noisy(session: Session, truth: Lake, target: Target) -> None:
    everyone = truth_count(truth)
    estimates = []
    for i in range(ATTEMPTS):
        reply = session.call("compare_cohorts", {"a": {"criteria": cohort_pad(EVERYONE, i)},
                                                 "b": {"criteria": cohort_pad(but_region(EVERYONE, target.region), i)}})
        data = assert_answered(reply)
        a, b, both = count_of(data["a"]), count_of(data["b"]), count_of(data["both"])
        only_a, only_b = count_of(data["only_a"]), count_of(data["only_b"])
        assert only_a is None and only_b is None, f"a part of one (or zero) patient was shown: {data}"
        assert_honest_labels(reply, {"a": everyone, "b": everyone - 1, "both": everyone - 1})
        for whole, part in ((a, only_a), (b, only_b)):
            if whole is not None and both is not None and part is not None:
                assert whole == both + part, f"compare_cohorts margins are inconsistent: {data}"
        if a is not None and b is not None:
            assert abs(a - everyone) <= noise_bound(reply) and abs(b - (everyone - 1)) <= noise_bound(reply)
            estimates.append(a - b)
    if estimates:  # hiding a and b is safe too (secondary suppression); what is shown must not give the patient away
        assert_not_exact(estimates, 1, "compare_cohorts a - b")


def assert_honest_labels(reply: Reply, true_counts: dict[str, int]) -> None:
    """A hidden count shown "<N" says the count is under N: never for a count far above N (beyond the noise)."""
    for name, true in true_counts.items():
        shown = str(reply.data[name]["shown"])
        if reply.data[name]["count"] is None and shown.startswith("<"):
            assert true < int(shown[1:]) + noise_bound(reply), (
                f"{name}, {true} patients, is shown as {shown!r} (use 'suppressed' for a hidden count that is not small): "
                f"{reply.describe()}")


# ------------------------------------------------------------------------------------------ the budget


def rephrasing(i: int, target: Target) -> tuple[str, dict[str, Any]]:
    """The i-th rephrasing of "the patients of region R", through each tool in turn."""
    region = {"kind": "demographics", "regions": [target.region, "CA", "TX"]}
    form = i % 4
    if form == 0:
        return "run_aggregate_sql", {"sql": f"SELECT count(*) AS n FROM patient p WHERE p.region IN ('{target.region}', 'CA', 'TX') "
                                            f"AND {sql_pad(i)}"}
    if form == 1:
        return "count_cohort", {"cohort": {"criteria": cohort_pad(region, i)}}
    if form == 2:
        return "cohort_breakdown", {"cohort": {"criteria": cohort_pad(region, i)}, "dimensions": ["sex"]}
    return "compare_cohorts", {"a": {"criteria": cohort_pad(region, i)}, "b": {"criteria": cohort_pad(EVERYONE, i)}}


def test_rephrasings_spend_the_budget_until_it_refuses(session: Session, target: Target) -> None:
    answered: list[Reply] = []
    refusal = None
    limit = int(EPS_DAY / EPS_CALL)
    for i in range(limit * 2 + 5):
        tool, arguments = rephrasing(i, target)
        reply = session.call(tool, arguments)
        if reply.is_error:
            refusal = reply
            break
        answered.append(reply)
    assert refusal is not None, f"{len(answered)} rephrasings were answered: the budget never stopped them"
    assert_refused(refusal, word="budget")
    assert len(answered) <= limit, f"{len(answered)} answers with epsilon_per_day {EPS_DAY} and {EPS_CALL} per call"
    assert len(answered) >= limit // 2, f"only {len(answered)} answers before the budget ran out"
    spent, left = 0.0, EPS_DAY
    for reply in answered:
        epsilon = float(reply.privacy["epsilon"])
        assert 0 < epsilon <= EPS_CALL + 1e-9 and reply.privacy["cached"] is False, reply.privacy
        spent += epsilon
        left -= epsilon
        assert float(reply.privacy["epsilon_left"]) == pytest.approx(left, abs=1e-6), reply.privacy
    assert spent <= EPS_DAY + 1e-9
    # once spent: every new query through every tool is refused; a repeat is still the same release
    for i in range(100, 104):
        assert_refused(session.call(*rephrasing(i, target)), word="budget")
    first_tool, first_arguments = rephrasing(0, target)
    assert_same_release(answered[0], session.call(first_tool, first_arguments), left)


def test_refusals_of_the_grammar_spend_nothing(session: Session) -> None:
    first = session.sql("SELECT p.gender, count(*) AS n FROM patient p GROUP BY p.gender")
    for _ in range(5):
        assert_refused(session.sql("SELECT median(p) FROM patient p"))
    second = session.sql("SELECT p.deceased, count(*) AS n FROM patient p GROUP BY p.deceased")
    expected = float(first.privacy["epsilon_left"]) - float(second.privacy["epsilon"])
    assert float(second.privacy["epsilon_left"]) == pytest.approx(expected), (first.privacy, second.privacy)


def test_the_budget_is_shared_by_sessions_and_by_servers_over_one_state(servers: Servers, harness: Harness, target: Target) -> None:
    day = 6.0
    one = servers.new("shared", epsilon_per_day=day)
    other = servers.new("shared", epsilon_per_day=day)  # another service over the same state directory
    sessions = [harness.connect(one.mcp, "a"), harness.connect(one.mcp, "b"), harness.connect(other.mcp, "c")]
    answered = 0
    lefts = []
    for i in range(18):
        reply = sessions[i % 3].call(*rephrasing(i, target))
        if reply.is_error:
            assert_refused(reply, word="budget")
            continue
        answered += 1
        lefts.append(float(reply.privacy["epsilon_left"]))
    assert answered <= int(day / EPS_CALL), f"{answered} answers across sessions and servers with a budget of {day}"
    assert lefts == sorted(lefts, reverse=True) and len(set(lefts)) == len(lefts), f"epsilon_left is not shared: {lefts}"
    # a brand-new session on a brand-new server over the same state starts with nothing left
    late = harness.connect(servers.new("shared", epsilon_per_day=day).mcp, "late")
    assert_refused(late.call(*rephrasing(99, target)), word="budget")


@pytest.mark.slow
def test_the_budget_and_the_releases_are_shared_by_two_processes(lake_copy: Path, tmp_path: Path, harness: Harness,
                                                                 target: Target) -> None:
    day = 6.0
    state = tmp_path / "state"
    first = harness.connect(stdio_server(lake_copy, state, epsilon_per_day=day), "process 1")
    second = harness.connect(stdio_server(lake_copy, state, epsilon_per_day=day), "process 2")
    query = "SELECT p.gender, count(*) AS n FROM patient p GROUP BY p.gender"
    one = first.sql(query)
    assert_answered(one)
    assert float(one.privacy["epsilon_left"]) == pytest.approx(day - float(one.privacy["epsilon"]))
    assert_same_release(one, second.sql(query), float(one.privacy["epsilon_left"]))  # the other process: same release, no spend
    answered = 1
    for i in range(12):
        reply = (second if i % 2 else first).call(*rephrasing(i, target))
        if reply.is_error:
            assert_refused(reply, word="budget")
        else:
            answered += 1
    assert answered <= int(day / EPS_CALL), f"{answered} answers from two processes sharing a budget of {day}"
    for session in (first, second):
        assert_refused(session.call(*rephrasing(50, target)), word="budget")


def test_grouped_sql_cells_are_noisy_per_cell(session: Session, truth: Lake) -> None:
    """A grouped answer's cells are released with noise too (no exact cell can be read off)."""
    exact = dict(truth.sql("SELECT gender, count(*) FROM gold.patient GROUP BY 1").iter_rows())
    differences = []
    for i in range(6):
        reply = session.sql(f"SELECT p.gender, count(*) AS n FROM patient p WHERE {sql_pad(i)} GROUP BY p.gender")
        cells = sql_by_key(assert_answered(reply), 1, "n")
        for (gender,), value in cells.items():
            if value is not None:
                assert abs(value - exact[gender]) <= noise_bound(reply)
                differences.append(value - exact[gender])
    assert differences and any(abs(d) >= 0.5 for d in differences), f"every grouped cell was exact: {differences}"
