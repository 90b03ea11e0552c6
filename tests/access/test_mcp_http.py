"""The five levels, tenant isolation and the audit trail, over real streamable HTTP on loopback.

One server (the real ``MCPServer`` app behind the access middleware, uvicorn on 127.0.0.1) over
the shared demo lake, with a policy of five clients; the MCP SDK's own client calls the tools.
The loopback peer is configured as a trusted proxy so ``X-Forwarded-For`` can play clients from
other networks (a client cannot do that unless the proxy is trusted: see test_network.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp.client.streamable_http import streamable_http_client

import fhirlake
from fhirlake.access import load_policy, mint_token, token_sha256
from fhirlake.access.loopback import serve_on_loopback
from fhirlake.access.serve import AccessControl
from fhirlake.audit import AuditTrail, read_entries, verify_log
from fhirlake.cli import main
from fhirlake.mcp_server.http import build_http_app
from fhirlake.mcp_server.server import TOOLS, build_server
from fhirlake.serving import CohortService, GoldReader, SuppressionPolicy
from mcp import ClientSession
from tests.mcp.conftest import EXACT

pytestmark = [pytest.mark.live, pytest.mark.slow]

STREP = "43878008"  # streptococcal sore throat: the restricted client's cohort
ISSUER, AUDIENCE = "https://idp.test/realms/research", "fhirlake-mcp"


@dataclass
class Stack:
    url: str
    tokens: dict[str, str]
    key: Any
    log: Path
    demo: Path
    calls: dict[str, int]

    def jwt(self, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "sub": "svc-south", **claims}
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": "k1"})


def write_policy(folder: Path, tokens: dict[str, str], key: Any) -> Path:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    (folder / "jwks.json").write_text(json.dumps({"keys": [{**public, "kid": "k1", "alg": "RS256"}]}))
    digest = {name: token_sha256(token) for name, token in tokens.items()}
    policy = {
        "k": 5,
        "network": {"allow": ["127.0.0.0/8", "::1/128", "10.99.0.0/16"], "trusted_proxies": ["127.0.0.1/32"]},
        "jwt": {"issuer": ISSUER, "audience": AUDIENCE, "jwks_file": "jwks.json"},
        "tenants": {"north": {"sources": ["site-a"]}, "south": {"sources": ["site-b"]}},
        "cohorts": {"strep": {"criteria": {"kind": "condition", "codes": [STREP]}}},
        "clients": [
            {"id": "north-all", "identity": {"token_sha256": digest["north-all"]}, "tenant": "north", "tools": "all"},
            {"id": "north-strep", "identity": {"token_sha256": digest["north-strep"]}, "tenant": "north", "tools": "all",
             "cohort": "strep"},
            {"id": "north-narrow", "identity": {"token_sha256": digest["north-narrow"]}, "tenant": "north",
             "tools": ["list_views", "describe_view", "run_aggregate_sql"], "views": ["patient"],
             "hide": {"patient": ["region"]}, "generalise": {"patient": {"birth_date": "year"}}},
            {"id": "ward", "identity": {"token_sha256": digest["ward"]}, "tenant": "north", "tools": "all",
             "networks": ["10.99.30.0/24"]},
            {"id": "south-oauth", "identity": {"jwt": {"subject": "svc-south"}}, "tenant": "south", "tools": "all"},
        ],
    }
    path = folder / "policy.yaml"
    path.write_text(json.dumps(policy))
    return path


@pytest.fixture(scope="module")
def stack(demo_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("access-http")
    tokens = {name: mint_token() for name in ("north-all", "north-strep", "north-narrow", "ward")}
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    policy = load_policy(write_policy(folder, tokens, key))
    log = folder / "audit.jsonl"
    control = AccessControl(policy, AuditTrail.for_lake(folder / "audit-lake", log_path=log, fsync=False), transport="http")
    reader = GoldReader(demo_lake)
    service = CohortService(reader, policy=SuppressionPolicy(control.k), privacy=EXACT, state_dir=tmp_path_factory.mktemp("state"))

    def build(base_url: str) -> Any:
        server = build_server(service, control.server_options(base_url=base_url))
        return control.wrap_http(build_http_app(server, host="127.0.0.1"))

    with serve_on_loopback(build) as url:
        yield Stack(url + "/mcp", tokens, key, log, demo_lake, {})
    control.close()
    reader.close()


@asynccontextmanager
async def _session(stack: Stack, bearer: str, forwarded: str | None = None) -> AsyncIterator[ClientSession]:
    """An initialised MCP client session (the SDK's) over streamable HTTP with a bearer token."""
    headers = {"authorization": f"Bearer {bearer}"}
    if forwarded:
        headers["x-forwarded-for"] = forwarded
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        streamable_http_client(stack.url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def _session_calls(stack: Stack, bearer: str, calls: list[tuple[str, dict[str, Any]]],
                         forwarded: str | None = None) -> list[Any]:
    async with _session(stack, bearer, forwarded) as session:
        return [await session.call_tool(tool, arguments) for tool, arguments in calls]


async def _listed_tools(stack: Stack, bearer: str) -> list[str]:
    async with _session(stack, bearer) as session:
        return sorted(tool.name for tool in (await session.list_tools()).tools)


def call(stack: Stack, client: str, *calls: tuple[str, dict[str, Any]], bearer: str | None = None,
         forwarded: str | None = None) -> list[Any]:
    results = anyio.run(_session_calls, stack, bearer or stack.tokens[client], list(calls), forwarded)
    stack.calls[client] = stack.calls.get(client, 0) + len(calls)
    return results


def sql(query: str) -> tuple[str, dict[str, Any]]:
    return ("run_aggregate_sql", {"sql": query})


def value(result: Any) -> Any:
    assert not result.is_error, result.content[0].text
    return result.structured_content


def refusal(result: Any) -> str:
    assert result.is_error, result.structured_content
    return str(result.content[0].text)


def truth(lake: Path, query: str) -> int:
    connection = fhirlake.connect(lake)
    try:
        return int(connection.connection.execute(query).fetchone()[0])
    finally:
        connection.close()


def post(stack: Stack, headers: dict[str, str]) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
    return httpx.post(stack.url, json=body, headers={"accept": "application/json, text/event-stream", **headers}, timeout=30)


# ---------------------------------------------------------------- level 1: network


def test_network_allow_list_and_client_networks(stack: Stack) -> None:
    outside = post(stack, {"authorization": f"Bearer {stack.tokens['north-all']}", "x-forwarded-for": "192.168.7.7"})
    assert outside.status_code == 403 and "not in the network allow-list" in outside.json()["error_description"]
    # the ward client may connect only from its ward's network
    assert post(stack, {"authorization": f"Bearer {stack.tokens['ward']}"}).status_code == 403
    assert post(stack, {"authorization": f"Bearer {stack.tokens['ward']}", "x-forwarded-for": "10.99.31.5"}).status_code == 403
    views = value(call(stack, "ward", ("list_views", {}), forwarded="10.99.30.5")[0])
    assert views["views"]


# ---------------------------------------------------------------- level 2: identity


def test_missing_unknown_and_forged_credentials_get_401(stack: Stack) -> None:
    for headers in ({}, {"authorization": "Bearer " + mint_token()}, {"authorization": "Bearer " + stack.jwt(aud="other")},
                    {"authorization": "Bearer " + stack.jwt(sub="svc-unknown")}, {"authorization": "Basic dXNlcjpwYXNz"}):
        response = post(stack, headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer ")
        assert "resource_metadata=" in response.headers["www-authenticate"]
    views = value(call(stack, "south-oauth", ("list_views", {}), bearer=stack.jwt())[0])
    assert views["views"]


# ---------------------------------------------------------------- level 3: scopes


def test_tools_and_views_outside_the_scope_are_refused(stack: Stack) -> None:
    results = call(stack, "north-narrow",
                   ("count_cohort", {"cohort": {"criteria": {"kind": "condition", "codes": [STREP]}}}),
                   sql("SELECT count(*) AS n FROM gold.condition"),
                   ("list_views", {}))
    assert "may not call count_cohort" in refusal(results[0])
    assert "condition" in refusal(results[1])
    assert [v["name"] for v in value(results[2])["views"]] == ["patient"]
    # tools/list shows each client its own tools only
    assert anyio.run(_listed_tools, stack, stack.tokens["north-narrow"]) == ["describe_view", "list_views", "run_aggregate_sql"]
    assert anyio.run(_listed_tools, stack, stack.tokens["north-all"]) == sorted(TOOLS)


# ---------------------------------------------------------------- level 4: cohort


def test_a_cohort_restricted_client_never_counts_outside_its_cohort(stack: Stack) -> None:
    lake = stack.demo
    in_cohort = truth(lake, f"SELECT count(DISTINCT patient_id) FROM gold.condition WHERE code = '{STREP}' AND _source = 'site-a'")
    tenant = truth(lake, "SELECT count(*) FROM gold.patient WHERE _source = 'site-a'")
    assert 5 <= in_cohort < tenant
    attempts = [
        sql("SELECT count(DISTINCT patient_id) AS n FROM gold.patient"),
        sql("SELECT count(*) AS n FROM patient"),
        sql("SELECT count(DISTINCT e.patient_id) AS n FROM gold.encounter e JOIN gold.patient p ON p.patient_id = e.patient_id"),
        sql("SELECT count(DISTINCT patient_id) AS n FROM gold.condition WHERE code <> '" + STREP + "'"),
        sql("WITH everyone AS (SELECT patient_id FROM gold.observation) SELECT count(DISTINCT patient_id) AS n FROM everyone"),
        sql("SELECT count(DISTINCT patient_id) AS n FROM (SELECT patient_id FROM gold.patient UNION ALL SELECT patient_id FROM gold.encounter)"),
        sql("SELECT count(DISTINCT patient_id) AS n FROM lake.gold.patient"),
        sql("SELECT count(DISTINCT patient_id) AS n FROM silver.Patient"),
        sql("SELECT count(*) AS n FROM read_parquet('" + str(stack.demo) + "/gold/patient/**/*.parquet')"),
        ("count_cohort", {"cohort": {"criteria": {"kind": "demographics", "sex": ["female", "male", "other", "unknown"]}}}),
        ("count_cohort", {"cohort": {"criteria": {"kind": "not", "criterion": {"kind": "condition", "codes": [STREP]}}}}),
    ]
    counts = []
    for result in call(stack, "north-strep", *attempts):
        if result.is_error:
            counts.append(None)
            continue
        answer = result.structured_content
        if "patients" in answer:
            counts.append(answer["patients"]["count"])
        else:
            counts.extend(row[0] for row in answer["rows"])
    seen = [c for c in counts if c is not None]
    assert seen, "some attempts must be answered"
    assert all(c <= in_cohort for c in seen), (counts, in_cohort)
    assert counts[0] == in_cohort


# ---------------------------------------------------------------- level 5: attributes


def test_hidden_columns_are_gone_and_generalised_ones_coarsened(stack: Stack) -> None:
    results = call(stack, "north-narrow",
                   ("describe_view", {"view": "patient"}),
                   sql("SELECT region, count(*) AS n FROM gold.patient GROUP BY region"),
                   sql("SELECT birth_date, count(*) AS n FROM gold.patient GROUP BY ALL"))
    columns = [c["name"] for c in value(results[0])["columns"]]
    assert "region" not in columns and "gender" in columns
    assert "region" in refusal(results[1])
    # generalised or not, a birth date is a quasi-identifier: the aggregate language never uses it
    # (generalisation itself is tested in tests/mcp/test_scope.py)
    assert "quasi-identifier" in refusal(results[2])


# ---------------------------------------------------------------- tenants


def test_a_client_sees_only_its_tenants_sources(stack: Stack) -> None:
    lake = stack.demo
    north = truth(lake, "SELECT count(*) FROM gold.patient WHERE _source = 'site-a'")
    south = truth(lake, "SELECT count(*) FROM gold.patient WHERE _source = 'site-b'")
    everyone = "SELECT count(DISTINCT patient_id) AS n FROM gold.patient"
    other_site = "SELECT count(DISTINCT patient_id) AS n FROM gold.patient WHERE _source = 'site-b'"
    a = call(stack, "north-all", sql(everyone), sql(other_site))
    b = call(stack, "south-oauth", sql(everyone), bearer=stack.jwt())
    assert value(a[0])["rows"] == [[north]]
    assert a[1].is_error or value(a[1])["rows"] in ([], [[0]])
    assert value(b[0])["rows"] == [[south]]


# ---------------------------------------------------------------- audit


def test_audit_entries_equal_calls_and_tampering_is_detected(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    call(stack, "north-all", ("list_views", {}), sql("SELECT gender, count(*) AS n FROM gold.patient GROUP BY gender"))
    entries = [entry for _, entry in read_entries(stack.log)]
    calls: dict[str, int] = {}
    for entry in entries:
        if entry["event"] == "call":
            calls[entry["client"]] = calls.get(entry["client"], 0) + 1
            assert set(entry) >= {"client", "tool", "arguments", "sql", "decision", "suppressed_cells", "rows", "duration_ms"}
    assert calls == stack.calls
    refused = [e for e in entries if e["event"] == "http-refused"]
    assert {e["status"] for e in refused} == {401, 403}
    assert all(token not in stack.log.read_text() for token in stack.tokens.values())
    assert verify_log(stack.log).entries == len(entries)
    # no result value in the log: the gender counts are not there
    last = entries[-1]
    assert last["tool"] == "run_aggregate_sql" and last["rows"] >= 1 and "result" not in last

    copy = stack.log.parent / "tampered.jsonl"
    lines = stack.log.read_bytes().splitlines(keepends=True)
    edited = json.loads(lines[3])
    edited["decision"] = "allowed" if edited.get("decision") != "allowed" else "refused"
    copy.write_bytes(b"".join([*lines[:3], json.dumps(edited).encode() + b"\n", *lines[4:]]))
    assert main(["audit", "verify", "--log", str(copy), "--no-head"]) == 1
    assert "tampered.jsonl:4:" in capsys.readouterr().err
