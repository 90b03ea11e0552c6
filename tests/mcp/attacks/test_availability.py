"""Availability under abuse: deep nesting, slow queries and self-joins neither stall nor bloat the server.

Issue #16, deliver 3 and the "Availability" findings: 100 nested parentheses froze the whole server
for 57-100 s (a RecursionError), three heavy queries made a count wait 29 s (one lock), and a GROUP
BY over a self-join grew the server by 1.4-2.3 GB (no DuckDB memory limit).

Strict readings: a refusal for depth or size comes within 2 s; a simple count from another client
is answered within 5 s while deep or heavy queries from a first client are in flight; a heavy query
ends (answered, refused or stopped by the time limit) within 30 s; the server process's peak memory
grows by less than 1 GiB for a self-join of observations over the patient key.
"""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from .conftest import Harness, Reply, Servers, assert_answered, assert_refused, stdio_server

SIMPLE = "SELECT p.gender, count(*) AS n FROM patient p GROUP BY p.gender"
SELF_JOIN = ("SELECT a.code AS code, median(b.value_quantity) AS m, count(*) AS n FROM observation a "
             "JOIN observation b ON a.patient_id = b.patient_id JOIN observation c ON b.patient_id = c.patient_id GROUP BY a.code")
SELF_JOIN_2 = ("SELECT a.code AS code, count(*) AS n, avg(b.value_quantity) AS m FROM observation a "
               "JOIN observation b USING (patient_id) JOIN observation c USING (patient_id) JOIN observation d USING (patient_id) "
               "GROUP BY ALL")


def deep_queries() -> list[str]:
    queries = [
        "SELECT count(*) FROM patient WHERE " + "(" * 100 + "gender = 'female'" + ")" * 100,  # the 100 parentheses
        "SELECT " + "(" * 100 + "1" + ")" * 100 + " FROM patient",
        "SELECT count(*) FROM patient WHERE " + "(" * 5_000 + "gender = 'female'" + ")" * 5_000,
        "SELECT count(*) FROM patient WHERE " + "NOT " * 3_000 + "gender = 'female'",
        "SELECT " + "abs(" * 1_500 + "age" + ")" * 1_500 + " FROM patient",
        "SELECT count(*) FROM patient WHERE age > " + "(SELECT " * 600 + "1" + ")" * 600,
        "SELECT count(*) FROM patient WHERE " + " OR ".join(["gender = 'female'"] * 900),
        "SELECT count(*) FROM patient WHERE gender IN (" + ", ".join(["'f'"] * 3_000) + ")",
    ]
    return [q for q in queries if len(q) <= 20_000]


def test_deep_nesting_is_refused_quickly_and_does_not_stall_another_client(servers: Servers, harness: Harness) -> None:
    server = servers.new(epsilon_per_day=1_000.0)
    attacker, neighbour = harness.connect(server.mcp, "attacker"), harness.connect(server.mcp, "neighbour")
    assert_answered(neighbour.sql(SIMPLE))  # warm
    started = time.monotonic()
    pending = [attacker.submit("run_aggregate_sql", {"sql": sql}, timeout=120) for sql in deep_queries()]
    other = neighbour.call("run_aggregate_sql", {"sql": "SELECT p.deceased, count(*) AS n FROM patient p GROUP BY p.deceased"})
    neighbour_seconds = time.monotonic() - started
    replies: list[Reply] = [future.result(timeout=180) for future in pending]
    assert_answered(other)
    assert neighbour_seconds < 5, f"another client waited {neighbour_seconds:.1f} s behind deeply nested queries"
    for reply in replies:
        assert_refused(reply, max_seconds=2.0)
    assert_answered(neighbour.sql("SELECT p.marital_status, count(*) AS n FROM patient p GROUP BY p.marital_status"))


@pytest.mark.slow
def test_heavy_queries_do_not_block_a_simple_count(servers: Servers, harness: Harness) -> None:
    """Queries run on a pool of connections with a time limit: a count overtakes three self-joins."""
    server = servers.new(epsilon_per_day=1_000.0)
    heavy, light = harness.connect(server.mcp, "heavy"), harness.connect(server.mcp, "light")
    assert_answered(light.sql(SIMPLE))
    pending = [heavy.submit("run_aggregate_sql", {"sql": sql}, timeout=120) for sql in (SELF_JOIN, SELF_JOIN_2, SELF_JOIN)]
    time.sleep(0.3)
    started = time.monotonic()
    count = light.sql("SELECT p.deceased, count(*) AS n FROM patient p GROUP BY p.deceased")
    waited = time.monotonic() - started
    assert_answered(count)
    assert waited < 5, f"a simple count waited {waited:.1f} s behind three heavy queries"
    for future in pending:
        reply = future.result(timeout=120)
        assert reply.seconds < 30, f"a heavy query ran {reply.seconds:.0f} s: the time limit did not stop it"
        if reply.is_error:
            assert "\n" not in reply.text.strip() and "Traceback" not in reply.text, reply.text


def _server_process(state: Path) -> psutil.Process:
    for child in psutil.Process().children(recursive=True):
        try:
            if str(state) in " ".join(child.cmdline()) and "mcp" in child.cmdline():
                return child
        except psutil.Error:
            continue
    raise AssertionError("the fhirlake mcp process was not found")


def _peak_bytes(process: psutil.Process) -> int:
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return process.memory_info().rss


@pytest.mark.slow
def test_a_self_join_group_by_is_refused_or_bounded(lake_copy: Path, tmp_path: Path, harness: Harness) -> None:
    """A GROUP BY over a self-join grew the server by 1.4-2.3 GB: now a memory limit and a time limit hold it."""
    state = tmp_path / "state"
    session = harness.connect(stdio_server(lake_copy, state, epsilon_per_day=1_000.0), "stdio")
    assert_answered(session.sql(SIMPLE))
    process = _server_process(state)
    before = _peak_bytes(process)
    for sql in (SELF_JOIN, SELF_JOIN_2):
        reply = session.sql(sql, timeout=120)
        assert reply.seconds < 30, f"the self-join ran {reply.seconds:.0f} s"
        if reply.is_error:
            assert "\n" not in reply.text.strip() and "Traceback" not in reply.text, reply.text
    grown = _peak_bytes(process) - before
    assert grown < 1024**3, f"the server's peak memory grew by {grown / 1024**3:.2f} GiB for a self-join"
    started = time.monotonic()
    assert_answered(session.sql("SELECT p.deceased, count(*) AS n FROM patient p GROUP BY p.deceased"))
    assert time.monotonic() - started < 5
