"""The attacks of issue #16, each replayed as a regression test.

Each test replays one attack of the issue's "Why" on the demo lake (150 patients, two sources) and
checks that it no longer reveals a row, a key, a small count or one patient's value: either the
grammar refuses it (the same way whatever the data), or the answers are noisy enough that the
attacker's estimate is not the truth.

Strict readings: when the attack is expressible in the allowed grammar (``sum(age)`` with ``age`` a
measure, cohort pads, breakdowns) it must be *answered*, noisily, not refused (refusing it would
also be safe but is the 20% usability failure the issue names); a new session and a new server over
the same state start with the budget already spent and the releases already made.
"""

from __future__ import annotations

import re
import time

import pytest

from fhirlake.lake import Lake

from .conftest import (
    EPS_CALL,
    EPS_DAY,
    EVERYONE,
    Catalog,
    Harness,
    K,
    Servers,
    Session,
    Target,
    assert_answered,
    assert_refused,
    assert_safe_answer,
    but_region,
    cohort_pad,
    count_of,
    leaked_keys,
    noise_bound,
    sql_by_key,
    sql_cell,
    sql_pad,
)
from .test_differencing import assert_not_exact, assert_same_release, released


@pytest.fixture
def session(servers: Servers, harness: Harness) -> Session:
    return harness.connect(servers.new().mcp, "attacker")


def same_refusal(replies: list[tuple[str, str]]) -> None:
    """Every (reply text, literal) is a refusal, and the reasons differ only by the attacker's own literal."""
    texts = {re.sub(r'"[^"]*"', '"<fragment>"', text.replace(literal, "<literal>")) for text, literal in replies}
    assert len(texts) == 1, f"the refusal depends on the data: {texts}"


# ------------------------------------------------------------------------------------------ whole rows


def test_median_of_a_table_alias_gives_no_row(session: Session, lake_keys: frozenset[str]) -> None:
    """`SELECT median(p) FROM patient p` returned a whole patient row; five such calls gave 22 keys."""
    queries = ["SELECT median(p) FROM patient p", "SELECT median(o) FROM observation o",
               "SELECT p.gender, median(p) FROM patient p GROUP BY p.gender",
               "SELECT o.code, median(o) FROM observation o GROUP BY o.code",
               "SELECT quantile_cont(p, 0.5) FROM patient p", "SELECT max(p) FROM patient p", "SELECT min(o) FROM observation o",
               "SELECT median(c) FROM condition c JOIN patient p ON c.patient_id = p.patient_id",
               "SELECT median(p) FROM gold.patient p", "SELECT median(\"p\") FROM patient AS \"p\""]
    leaked: set[str] = set()
    for sql in queries:
        reply = session.sql(sql)
        assert_refused(reply)
        leaked |= leaked_keys(reply, lake_keys)
    assert not leaked, f"{len(leaked)} keys came out"


# ------------------------------------------------------------------------------------------ oracles


def test_a_subquery_oracle_in_where_is_refused_whatever_its_truth(session: Session, truth: Lake) -> None:
    """`WHERE (SELECT count(*) FROM patient q WHERE q.deceased) = 7` answered only when true."""
    deceased = int(truth.sql("SELECT count(*) FROM gold.patient WHERE deceased").item())
    replies = []
    for n in sorted({0, 1, deceased, deceased + 1, 7}):
        sql = f"SELECT count(*) AS n FROM patient p WHERE (SELECT count(*) FROM patient q WHERE q.deceased) = {n}"
        replies.append((assert_refused(session.sql(sql)), str(n)))
    same_refusal(replies)


def test_a_binary_search_over_patient_id_learns_nothing(session: Session, patient_ids: list[str]) -> None:
    """149 calls recovered a full patient id by bisecting `q.patient_id >= '...'`: replay the search."""
    alphabet = "0123456789abcdef-"
    templates = ["SELECT count(*) AS n FROM patient p WHERE (SELECT count(*) FROM patient q WHERE q.patient_id >= '{}') > 0",
                 "SELECT count(*) AS n FROM patient p WHERE EXISTS (SELECT 1 FROM patient q WHERE q.patient_id >= '{}')",
                 "SELECT count(*) AS n FROM patient p WHERE p.patient_id >= '{}'",
                 "SELECT p.gender, count(*) AS n FROM patient p WHERE p.patient_id < '{}' GROUP BY p.gender"]
    for template in templates:
        learned, replies = "", []
        started = time.monotonic()
        for _ in range(40):  # the attacker bisects the next character; an answer would tell which half
            low, high = 0, len(alphabet) - 1
            while low < high:
                middle = (low + high + 1) // 2
                probe = learned + alphabet[middle]
                reply = session.sql(template.format(probe))
                replies.append((assert_refused(reply), probe))
                answered_true = not reply.is_error
                low, high = (middle, high) if answered_true else (low, middle - 1)
                if len(replies) >= 40:
                    break
            if len(replies) >= 40:
                break
            learned += alphabet[low]
        same_refusal(replies)
        assert time.monotonic() - started < 20, "40 refused probes took too long"


def test_a_cast_or_division_failing_only_when_a_predicate_holds_is_refused(session: Session, truth: Lake, target: Target) -> None:
    """Even with the error text withheld, an error only when `p.region = 'R'` holds is a one-bit oracle."""
    lone_birth = str(truth.sql(f"SELECT birth_date FROM gold.patient WHERE patient_id = '{target.patient_id}'").item())
    templates = [
        "SELECT count(*) AS n FROM patient p WHERE CAST(CASE WHEN p.region = '{}' THEN 'x' ELSE '1' END AS INTEGER) = 1",
        "SELECT count(*) AS n FROM patient p WHERE TRY_CAST(IF(p.region = '{}', 'x', '1') AS INTEGER) IS NULL",
        "SELECT count(*) AS n FROM patient p WHERE 1 / (CASE WHEN p.region = '{}' THEN 0 ELSE 1 END) = 1",
        "SELECT count(*) AS n FROM patient p WHERE CAST(IF(p.birth_date = '{}', concat(p.patient_id, '|'), '1') AS INTEGER) = 1",
        "SELECT count(*) AS n FROM patient p WHERE p.region = '{}' AND p.gender = 1",
    ]
    for template in templates:
        literals = [target.region, "no-such-region"] if "region" in template else [lone_birth, "1800-01-01"]
        same_refusal([(assert_refused(session.sql(template.format(value))), value) for value in literals])


def test_a_text_column_compared_with_a_number_is_refused_before_it_runs(session: Session) -> None:
    """A conversion that fails on some rows only answers whether such rows are in the population."""
    for sql in ["SELECT count(*) AS n FROM patient p WHERE p.region = 5", "SELECT count(*) AS n FROM patient p WHERE p.gender > 3",
                "SELECT count(*) AS n FROM observation o WHERE o.code = 8480",
                "SELECT count(*) AS n FROM patient p WHERE p.region IN ('CA', 5)"]:
        reply = session.sql(sql)
        assert_refused(reply)
        assert "conversion" not in reply.text.lower() or "literal" in reply.text.lower(), reply.text


# ------------------------------------------------------------------------------------------ differencing


def test_having_then_margins_gives_no_hidden_cell(session: Session, truth: Lake) -> None:
    """HAVING removed small cells before secondary suppression; margins of a second query revealed them."""
    assert_refused(session.sql("SELECT p.region, p.gender, count(*) AS n FROM patient p GROUP BY p.region, p.gender "
                               "HAVING count(*) >= 11"))
    region, small_gender, small = truth.sql(
        "SELECT region, gender, count(*) AS n FROM gold.patient GROUP BY ALL HAVING count(*) < 11 AND region IN "
        "(SELECT region FROM gold.patient GROUP BY region HAVING count(*) >= 2 * 11 AND min(gender) <> max(gender)) "
        "ORDER BY n, region LIMIT 1").row(0)
    estimates = []
    for i in range(8):
        margins = session.sql(f"SELECT p.region, count(*) AS n FROM patient p WHERE {sql_pad(i)} GROUP BY p.region")
        cells = session.sql(f"SELECT p.region, p.gender, count(*) AS n FROM patient p WHERE {sql_pad(i)} "
                            "GROUP BY p.region, p.gender")
        total = sql_by_key(assert_answered(margins), 1, "n").get((region,))
        by_cell = sql_by_key(assert_answered(cells), 2, "n")
        assert by_cell.get((region, small_gender)) is None, f"a cell of {small} patients was shown"
        others = [v for (r, g), v in by_cell.items() if r == region and g != small_gender]
        if total is not None and others and all(v is not None for v in others):
            estimates.append(total - sum(others))
    if estimates:
        assert_not_exact(estimates, small, f"margin of {region} minus its shown cells")


def test_two_sums_over_overlapping_populations_do_not_give_one_age(session: Session, target: Target, catalog: Catalog) -> None:
    """sum(age) of the women, then of the women outside region R, gave R's only woman's exact age."""
    age_is_a_measure = catalog.role("patient", "age") == "measure"
    estimates = []
    for i in range(ATTEMPTS := 8):
        base = f"SELECT sum(p.age) AS s FROM patient p WHERE p.gender = '{target.gender}' AND {sql_pad(i)}"
        a, b = session.sql(base), session.sql(base + f" AND p.region <> '{target.region}'")
        if not age_is_a_measure:
            assert_refused(a)
            return
        va, vb = sql_cell(assert_answered(a), "s"), sql_cell(assert_answered(b), "s")
        if va is not None and vb is not None:
            estimates.append(va - vb)
            assert abs((va - vb) - target.age) <= noise_bound(a) + noise_bound(b)
    assert len(estimates) == ATTEMPTS
    assert_not_exact(estimates, target.age, "sum(age) difference")
    near = [e for e in estimates if abs(e - target.age) <= 2]
    assert len(near) < len(estimates), f"every estimate of the age {target.age} is within 2 years: {estimates}"


def test_cohort_pads_and_compare_cohorts_do_not_reveal_a_diagnosis(servers: Servers, harness: Harness, target: Target) -> None:
    """count(X) - count(X and not region R), through or/and/not pads and compare_cohorts: does R's patient have X?

    Asked for a diagnosis R's only patient has (true difference 1) and one it lacks (0), ten times each
    (a budget of 100 here, five times the default, to gather the attempts). The attacker wins if the
    differences separate the two cases perfectly; the cohort counts must also be noisy in each case.
    """
    session = harness.connect(servers.new(epsilon_per_day=100.0).mcp, "attacker")
    estimates: dict[str, dict[bool, list[float]]] = {"count_cohort": {True: [], False: []}, "compare_cohorts": {True: [], False: []}}
    for has, code in ((True, target.has_code), (False, target.lacks_code)):
        with_x = {"kind": "condition", "codes": [code]}
        for i in range(10):
            a = session.count(cohort_pad(with_x, i))
            b = session.count(cohort_pad(but_region(with_x, target.region), i))
            va, vb = released(a, "patients"), released(b, "patients")
            assert va is not None and vb is not None, (a.describe(), b.describe())
            estimates["count_cohort"][has].append(va - vb)
            reply = session.call("compare_cohorts", {"a": {"criteria": cohort_pad(with_x, i + 50)},
                                                     "b": {"criteria": cohort_pad(but_region(with_x, target.region), i + 50)}})
            data = assert_answered(reply)
            assert count_of(data["only_a"]) is None and count_of(data["only_b"]) is None, data
            if count_of(data["a"]) is not None and count_of(data["b"]) is not None:
                estimates["compare_cohorts"][has].append(count_of(data["a"]) - count_of(data["b"]))
    assert_not_exact(estimates["count_cohort"][True], 1, f"count_cohort pads ({target.has_code}, which the patient has)")
    assert_not_exact(estimates["count_cohort"][False], 0, f"count_cohort pads ({target.lacks_code}, which the patient lacks)")
    for tool, by_case in estimates.items():
        has, lacks = by_case[True], by_case[False]
        if has and lacks:
            assert not min(has) > max(lacks), f"{tool}: the differences tell the diagnosis every time: has {has}, lacks {lacks}"


def test_a_new_session_does_not_start_with_a_clean_memory(servers: Servers, harness: Harness, target: Target) -> None:
    """The differencing guard's memory was per process: a new session started clean. Now the state is shared."""
    everyone = {"criteria": cohort_pad(EVERYONE, 7)}
    all_but_one = {"criteria": cohort_pad(but_region(EVERYONE, target.region), 7)}
    server = servers.new("memory")
    first = harness.connect(server.mcp, "first")
    a = first.call("count_cohort", {"cohort": everyone})
    spent_left = float(a.privacy["epsilon_left"])
    first.close()
    for label, again in (("new session", server), ("new server", servers.new("memory"))):
        later = harness.connect(again.mcp, label)
        assert_same_release(a, later.call("count_cohort", {"cohort": everyone}))
        b = later.call("count_cohort", {"cohort": all_but_one})
        assert_answered(b)
        assert float(b.privacy["epsilon_left"]) < spent_left, f"{label}: the budget started again: {b.privacy}"
        spent_left = float(b.privacy["epsilon_left"])
        all_but_one = {"criteria": cohort_pad(but_region(EVERYONE, target.region), 8)}


def test_a_breakdown_margin_with_two_hidden_cells_does_not_reveal_them(session: Session, truth: Lake) -> None:
    """A margin of 20 with two cells shown "<11" revealed both as 10. Margins are noisy and consistent now."""
    rows = truth.sql("SELECT region, count(*) AS n FROM gold.patient GROUP BY 1 HAVING count(*) < 11 ORDER BY n DESC, region").rows()
    (r1, n1), (r2, n2) = rows[0], rows[1]
    assert n1 + n2 >= K, (rows[:2],)
    true_total = n1 + n2
    totals = []
    for i in range(8):
        reply = session.call("cohort_breakdown", {"cohort": {"criteria": cohort_pad({"kind": "demographics", "regions": [r1, r2]}, i)},
                                                  "dimensions": ["region"]})
        data = assert_answered(reply)
        cells = {c["dimensions"]["region"]: count_of(c["patients"]) for c in data["cells"]}
        total = count_of(data["total"])
        assert cells.get(r1) is None and cells.get(r2) is None, f"a cell under k was shown: {data}"
        if total is None:
            continue
        assert abs(total - true_total) <= noise_bound(reply)
        totals.append(total)
    assert_not_exact(totals, true_total, "the margin of two hidden cells")


# ------------------------------------------------------------------------------------------ the budget as a lock-out


def test_the_attacker_with_the_whole_budget_is_locked_out(session: Session, target: Target, lake_keys: frozenset[str]) -> None:
    """i2b2/SHRINE-style lock-out: after epsilon_per_day / epsilon_per_call answers, only refusals naming the budget."""
    answers = 0
    for i in range(int(EPS_DAY / EPS_CALL) + 10):
        reply = session.count(cohort_pad(but_region(EVERYONE, target.region), 200 + i))
        if reply.is_error:
            assert_refused(reply, word="budget")
        else:
            assert_safe_answer(reply, lake_keys)
            answers += 1
    assert answers <= int(EPS_DAY / EPS_CALL)
