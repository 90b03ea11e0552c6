"""AccessControl without a server: grants become scopes, start-time checks, the call record sink."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mcp.server.auth.provider import AccessToken

from fhirlake.access import AccessPolicyError, parse_policy
from fhirlake.access.serve import AccessControl
from fhirlake.audit import AuditLog, AuditTrail, read_entries, verify_log
from fhirlake.mcp_server.context import CallRecord, ResolveRequest
from fhirlake.serving.errors import QueryRefused

DOCUMENT: dict[str, Any] = {
    "k": 11,
    "tenants": {"north": {"sources": ["site-a"]}},
    "cohorts": {"strep": {"criteria": {"kind": "condition", "codes": ["43878008"]}}},
    "local": {"k": 15},
    "clients": [{"id": "onco", "identity": {"token_sha256": "a" * 64}, "tenant": "north", "tools": ["count_cohort"],
                 "views": ["patient"], "cohort": "strep", "hide": {"patient": ["region"]},
                 "generalise": {"patient": {"birth_date": "year"}}, "k": 20}],
}


def control(tmp_path: Path, document: dict[str, Any] = DOCUMENT, transport: Any = "http") -> AccessControl:
    trail = AuditTrail(AuditLog(tmp_path / "audit.jsonl", fsync=False))
    return AccessControl(parse_policy(document, path="policy.yaml"), trail, transport=transport)


def token(client_id: str) -> AccessToken:
    return AccessToken(token="", client_id=client_id, scopes=[])


def test_a_client_grant_becomes_its_scope(tmp_path: Path) -> None:
    access = control(tmp_path)
    context = access.resolve(ResolveRequest("http", token("onco"), "count_cohort"))
    assert context.id == "onco" and context.allows("count_cohort") and not context.allows("run_aggregate_sql")
    assert context.allows("resource:schema")
    scope = context.scope
    assert scope.sources == frozenset({"site-a"}) and scope.views == frozenset({"patient"})
    assert scope.hidden("patient") == frozenset({"region"}) and scope.generalized("patient") == {"birth_date": "year"}
    assert scope.cohort is not None and not isinstance(scope.cohort, str)
    assert access.k == 20


def test_http_without_a_known_client_never_becomes_the_local_user(tmp_path: Path) -> None:
    access = control(tmp_path)
    with pytest.raises(QueryRefused, match="no authenticated client"):
        access.resolve(ResolveRequest("http", None, "list_views"))
    with pytest.raises(QueryRefused, match="not in the access policy"):
        access.resolve(ResolveRequest("http", token("ghost"), "list_views"))
    local = control(tmp_path, transport="stdio").resolve(ResolveRequest("stdio", None, "list_views"))
    assert local.id == "local" and local.tools is None and local.scope.sources is None


@pytest.mark.parametrize(
    ("change", "message"),
    [({"tools": ["count_patients"]}, "policy.yaml: /clients/0/tools: unknown tool 'count_patients'"),
     ({"cohort": {"criteria": {"kind": "condition", "codes": []}}}, "policy.yaml: /clients/0/cohort/criteria/condition/codes:")],
)
def test_start_fails_on_unknown_tools_and_invalid_cohorts(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    document = {**DOCUMENT, "clients": [{**DOCUMENT["clients"][0], **change}]}
    with pytest.raises(AccessPolicyError) as caught:
        control(tmp_path, document)
    assert str(caught.value).startswith(message)


def test_a_call_record_becomes_one_chained_entry_without_values(tmp_path: Path) -> None:
    access = control(tmp_path)
    access.record_call(CallRecord(time=datetime.now(UTC), client="onco", tool="count_cohort", arguments={"cohort": {"x": 1}},
                                  sql=("SELECT 1",), decision="allowed", reason=None, suppressed=1, rows=1, duration_ms=2.5))
    access.close()
    entries = [entry for _, entry in read_entries(tmp_path / "audit.jsonl")]
    assert [e["event"] for e in entries] == ["genesis", "call"]
    call = entries[1]
    assert (call["client"], call["tool"], call["sql"], call["suppressed_cells"], call["transport"]) == (
        "onco", "count_cohort", ["SELECT 1"], 1, "http")
    assert verify_log(tmp_path / "audit.jsonl").entries == 2
