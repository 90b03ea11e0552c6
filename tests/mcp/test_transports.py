"""The server over the real MCP client: in-process, stdio, streamable HTTP, and the MCP Inspector CLI."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from fhirlake.mcp_server import (
    TOOLS,
    CallRecord,
    ClientContext,
    FhirlakeServer,
    ResolveRequest,
    ServerOptions,
    build_server,
)
from fhirlake.serving import CohortService, DataScope
from mcp import Client, StdioServerParameters

PROJECT = Path(__file__).resolve().parents[2]
INSPECTOR = PROJECT / ".npm-tools" / "node_modules" / ".bin" / "mcp-inspector"
WOMEN = {"cohort": {"criteria": {"kind": "demographics", "sex": ["female"]}}}


async def _exercise(client: Client) -> dict[str, Any]:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == set(TOOLS)
    for name, tool in tools.items():
        assert tool.output_schema, name
        assert tool.annotations is not None and tool.annotations.read_only_hint == (name != "save_cohort")
    result = await client.call_tool("count_cohort", WOMEN)
    assert not result.is_error and result.structured_content is not None
    return result.structured_content


def test_in_process_client(server: FhirlakeServer) -> None:
    async def run() -> None:
        async with Client(server.mcp) as client:
            counted = await _exercise(client)
            assert counted["patients"]["count"] > 11
            refused = await client.call_tool("run_aggregate_sql", {"sql": "SELECT count(*) FROM read_csv('/etc/passwd')"})
            assert refused.is_error and "refused" in refused.content[0].text  # type: ignore[union-attr]
            schema = await client.read_resource("fhirlake://schema/patient")
            assert "patient_id" in schema.contents[0].text  # type: ignore[union-attr]
            prompt = await client.get_prompt("explore_cohort", {"question": "diabetes in women"})
            assert "search_codes" in prompt.messages[0].content.text  # type: ignore[union-attr]
    anyio.run(run)


def test_resolver_scope_and_call_records(service: CohortService) -> None:
    records: list[CallRecord] = []

    def resolver(request: ResolveRequest) -> ClientContext:
        return ClientContext("tenant-a", DataScope(sources=frozenset({"site-a"})), tools=frozenset({"count_cohort"}))

    server = build_server(service, ServerOptions(resolver=resolver, on_call=records.append))

    async def run() -> None:
        async with Client(server.mcp) as client:
            counted = await client.call_tool("count_cohort", WOMEN)
            assert counted.structured_content is not None
            denied = await client.call_tool("run_aggregate_sql", {"sql": "SELECT count(*) FROM patient"})
            assert denied.is_error
    anyio.run(run)
    assert [(r.client, r.tool, r.decision) for r in records] == [
        ("tenant-a", "count_cohort", "allowed"), ("tenant-a", "run_aggregate_sql", "refused")]
    assert records[0].sql and "site-a" in records[0].sql[0] and records[0].duration_ms > 0


def test_stdio(demo_lake: Path) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "fhirlake", "mcp", "--lake", str(demo_lake)])

    async def run() -> None:
        async with Client(params) as client:
            await _exercise(client)
    anyio.run(run)


@pytest.fixture
def http_server(demo_lake: Path) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "fhirlake", "mcp", "--lake", str(demo_lake), "--transport", "http",
                                "--port", str(port)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("fhirlake mcp --transport http did not start")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.live
def test_streamable_http(http_server: str) -> None:
    async def run() -> None:
        async with Client(http_server) as client:
            await _exercise(client)
    anyio.run(run)


@pytest.mark.live
def test_mcp_inspector_cli(demo_lake: Path) -> None:
    if shutil.which("node") is None or not INSPECTOR.exists():
        pytest.skip("node or the MCP Inspector CLI (npm install --prefix .npm-tools @modelcontextprotocol/inspector) is missing")
    command = [str(INSPECTOR), "--cli", sys.executable, "-m", "fhirlake", "mcp", "--lake", str(demo_lake)]
    listed = subprocess.run([*command, "--method", "tools/list"], capture_output=True, text=True, timeout=120, check=True)
    assert {t["name"] for t in json.loads(listed.stdout)["tools"]} == set(TOOLS)
    called = subprocess.run([*command, "--method", "tools/call", "--tool-name", "describe_view", "--tool-arg", "view=patient"],
                            capture_output=True, text=True, timeout=120, check=True)
    answer = json.loads(called.stdout)
    assert not answer.get("isError") and answer["structuredContent"]["name"] == "patient"
