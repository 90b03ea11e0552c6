"""Deployment: no open HTTP server without a policy, X-Forwarded-For not believed from loopback, audit always on.

Issue #16, deliver 3 and the "Deployment" findings: ``X-Forwarded-For`` from a loopback peer was
trusted (uvicorn's default), which defeated the network allow-list and the per-client networks;
``fhirlake mcp`` without ``--policy`` wrote no audit at all.

Every server here is a real ``fhirlake mcp`` process on 127.0.0.1 over a private copy of the demo lake
(the audit trail writes into the lake). No traffic leaves the loopback interface: the addresses of
other networks appear only inside headers.

Strict readings: the policy is the annotated example (anonymization/access-policy.example.yaml)
with our own token hashes, without its JWT issuer (no network here); ``X-Forwarded-For``,
``Forwarded`` and ``X-Real-IP`` from a peer outside ``network.trusted_proxies`` are all ignored; the
audit trail of a server without ``--policy`` is found under ``<lake>/audit/`` (the interface) or the
documented ``<lake>/_fhirlake/`` (docs/access-control.md), holds one entry per call (allowed and
refused alike), and ``fhirlake audit verify --lake`` accepts it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
import yaml
from mcp.client.streamable_http import streamable_http_client

from mcp import ClientSession

from .conftest import (
    PROJECT,
    Harness,
    Reply,
    assert_answered,
    assert_refused,
    leaked_keys,
    server_env,
    stdio_server,
)

pytestmark = [pytest.mark.live]

EXAMPLE_POLICY = PROJECT / "anonymization" / "access-policy.example.yaml"
WARD = "10.20.30.7"  # inside the example's onco-team network (10.20.30.0/24); only ever written in headers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def mcp_command(lake: Path, state: Path, port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "fhirlake", "mcp", "--lake", str(lake), "--state", str(state), "--transport", "http",
            "--port", str(port), *extra]


@contextmanager
def http_server(command: list[str], log: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=server_env())
    try:
        deadline = time.monotonic() + 40
        while not listening(port):
            if process.poll() is not None:
                pytest.fail(f"the server exited ({process.returncode}): {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def initialize(url: str, token: str, **headers: str) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "attacker", "version": "0"}}}
    return httpx.post(url, json=body, timeout=30,
                      headers={"accept": "application/json, text/event-stream", "authorization": f"Bearer {token}", **headers})


# ------------------------------------------------------------------------------------------ no open server without a policy


def test_http_on_a_non_loopback_address_without_a_policy_does_not_start(lake_copy: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "refused.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(mcp_command(lake_copy, tmp_path / "state", port, "--host", "0.0.0.0"),
                                   stdout=subprocess.DEVNULL, stderr=stderr, env=server_env())
    served = False
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            served = served or listening(port)
            time.sleep(0.1)
    finally:
        still_running = process.poll() is None
        if still_running:
            process.kill()
        process.wait(10)
    message = log.read_text()
    assert not still_running, "fhirlake mcp --transport http --host 0.0.0.0 without --policy is still running after 30 s"
    assert process.returncode != 0, f"it exited 0: {message[-1000:]}"
    assert not served, "it served on 0.0.0.0 without a policy before exiting"
    assert "No such option" not in message, f"an unknown option, not a refusal: {message[-600:]}"
    assert "policy" in message.lower(), f"the refusal does not say a policy is needed: {message[-600:]}"
    # the same command on loopback starts: the options themselves are fine
    port = free_port()
    with http_server(mcp_command(lake_copy, tmp_path / "state-2", port, "--host", "127.0.0.1"), tmp_path / "loopback.log", port):
        assert listening(port)


# ------------------------------------------------------------------------------------------ X-Forwarded-For


async def http_calls(url: str, token: str, queries: list[str]) -> list[Any]:
    """run_aggregate_sql over streamable HTTP with a bearer token (the MCP SDK's client session)."""
    async with (
        httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=60) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        return [await session.call_tool("run_aggregate_sql", {"sql": q}) for q in queries]


def policy_from_example(folder: Path, tokens: dict[str, str], allow: list[str] | None = None) -> Path:
    """The example policy with our own static tokens, and without its JWT issuer (no network here)."""
    document: dict[str, Any] = yaml.safe_load(EXAMPLE_POLICY.read_text())
    document.pop("jwt", None)
    clients = [c for c in document["clients"] if "token_sha256" in c.get("identity", {})]
    assert clients and clients[0]["id"] == "onco-team" and clients[0]["networks"] == ["10.20.30.0/24"]
    clients[0]["identity"] = {"token_sha256": hashlib.sha256(tokens["onco-team"].encode()).hexdigest()}
    clients.append({"id": "loopback-ok", "identity": {"token_sha256": hashlib.sha256(tokens["loopback-ok"].encode()).hexdigest()},
                    "tenant": "hopital-nord", "tools": ["list_views", "run_aggregate_sql"], "views": ["patient"]})
    document["clients"] = clients
    if allow is not None:
        document["network"]["allow"] = allow
    assert document["network"]["trusted_proxies"] == []
    path = folder / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


FORWARDED = [{"x-forwarded-for": WARD}, {"x-forwarded-for": f"{WARD}, 127.0.0.1"}, {"forwarded": f"for={WARD}"},
             {"x-real-ip": WARD}, {"x-forwarded-for": WARD, "x-forwarded-proto": "https", "x-forwarded-host": "ward.example"}]


def test_forwarded_for_from_a_loopback_peer_is_not_believed(lake_copy: Path, tmp_path: Path, lake_keys: frozenset[str]) -> None:
    tokens = {"onco-team": secrets.token_urlsafe(32), "loopback-ok": secrets.token_urlsafe(32)}
    # 1. per-client networks: onco-team may connect only from 10.20.30.0/24; we are 127.0.0.1
    port = free_port()
    policy = policy_from_example(tmp_path, tokens)
    command = mcp_command(lake_copy, tmp_path / "state", port, "--policy", str(policy))
    with http_server(command, tmp_path / "clients.log", port):
        url = f"http://127.0.0.1:{port}/mcp"
        assert initialize(url, tokens["loopback-ok"]).status_code == 200, "the control client (no networks) must connect"
        assert initialize(url, tokens["onco-team"]).status_code == 403
        for headers in FORWARDED:
            response = initialize(url, tokens["onco-team"], **headers)
            assert response.status_code == 403, f"{headers} from a loopback peer was believed: {response.status_code}"
        # a scoped HTTP client got the median(p) row too (minus its hidden column): now refused, and no key comes out
        refused, answered = anyio.run(http_calls, url, tokens["loopback-ok"],
                                      ["SELECT median(p) FROM patient p", "SELECT p.gender, count(*) AS n FROM patient p GROUP BY p.gender"])
        assert refused.is_error and "refused" in refused.content[0].text, refused
        assert not answered.is_error and "privacy" in (answered.structured_content or {}), answered
        for result in (refused, answered):
            text = " ".join(getattr(c, "text", "") for c in result.content) + json.dumps(result.structured_content)
            assert not leaked_keys(Reply("run_aggregate_sql", {}, True, text, None, 0.0), lake_keys), text[:300]
    # 2. the network allow-list: only 10.20.0.0/16 may connect; we are 127.0.0.1
    (tmp_path / "allow").mkdir()
    port = free_port()
    policy = policy_from_example(tmp_path / "allow", tokens, allow=["10.20.0.0/16"])
    command = mcp_command(lake_copy, tmp_path / "state-allow", port, "--policy", str(policy))
    with http_server(command, tmp_path / "allow.log", port):
        url = f"http://127.0.0.1:{port}/mcp"
        assert initialize(url, tokens["loopback-ok"]).status_code == 403
        for headers in FORWARDED:
            response = initialize(url, tokens["loopback-ok"], **headers)
            assert response.status_code == 403, f"{headers} from a loopback peer passed the allow-list: {response.status_code}"


# ------------------------------------------------------------------------------------------ the audit is always on


def audit_text(lake: Path) -> str:
    texts = []
    for folder in (lake / "audit", lake / "_fhirlake"):
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.is_file() and path.suffix not in (".duckdb",) and path.name != "snapshots.json":
                    texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


def test_without_a_policy_every_call_reaches_the_audit_trail(lake_copy: Path, tmp_path: Path, harness: Harness) -> None:
    before = audit_text(lake_copy)
    assert "run_aggregate_sql" not in before
    session = harness.connect(stdio_server(lake_copy, tmp_path / "state"), "local")
    assert_answered(session.call("count_cohort", {"cohort": {"criteria": {"kind": "demographics", "sex": ["female"]}}}))
    assert_refused(session.sql("SELECT * FROM patient"))
    assert_answered(session.call("list_views", {}))
    session.close()
    text = audit_text(lake_copy)
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("tool"):
            entries.append(entry)
    tools = [(e.get("tool"), e.get("decision")) for e in entries]
    assert ("count_cohort", "allowed") in tools, f"the allowed call is not in the audit: {tools}"
    assert ("run_aggregate_sql", "refused") in tools, f"the refused call is not in the audit: {tools}"
    assert ("list_views", "allowed") in tools, tools
    assert all(e.get("client") for e in entries), entries
    verified = subprocess.run([sys.executable, "-m", "fhirlake", "audit", "verify", "--lake", str(lake_copy)],
                              capture_output=True, text=True, timeout=120, env=server_env())
    assert verified.returncode == 0, f"fhirlake audit verify: {verified.stdout[-500:]} {verified.stderr[-1000:]}"
