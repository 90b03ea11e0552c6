"""Regression tests of the security review of the guarded SQL tool and the cohort restriction.

Each test replays one of the reviewer's attacks on the demo lake and checks it no longer
reveals a patient's identifier or values, nor a count under k.
"""

from __future__ import annotations

import anyio
import pytest
from mcp.server.mcpserver.exceptions import ToolError

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
