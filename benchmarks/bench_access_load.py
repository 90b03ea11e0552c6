"""Load test of the MCP server over streamable HTTP on loopback, with and without access control.

The real server (``fhirlake mcp --transport http``, a subprocess) serves a synthetic lake
(``--patients``, two sources); ``--clients`` concurrent MCP clients (the SDK's streamable HTTP
client, asyncio, in this process) each open a session and make ``--calls`` tool calls (a fixed
mix: list_views, count_cohort, run_aggregate_sql). Two configurations, alternated ``--repeat``
times: the baseline (no ``--policy``: no authentication, no scope, no audit) and access control
on (``--policy``: one bearer token per client, tenant + cohort-free scope, the network allow-list,
every call appended to the fsync-ed, hash-chained audit log and the Delta audit table).

Printed per configuration: throughput (calls/s), p50/p95 latency of one call, errors (tool errors
and transport failures; the goal is none), audit entries vs calls (access control on) with the
chain verified, and the server's peak RSS (VmHWM); then the ratios access/baseline. Generated
data goes under ``bench-data/`` (git-ignored).

    .venv/bin/python benchmarks/bench_access_load.py --clients 50 --calls 10 --repeat 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp.client.streamable_http import streamable_http_client

import fhirlake
from fhirlake.access import mint_token, token_sha256
from fhirlake.audit import read_entries, verify_log
from fhirlake.synth import generate
from mcp import ClientSession

ROOT = Path(__file__).resolve().parents[1] / "bench-data" / "access-load"
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("list_views", {}),
    ("count_cohort", {"cohort": {"criteria": {"kind": "condition", "codes": ["43878008"]}}}),
    # the same question as the cohort, through the aggregate language (each is released once, then cached)
    ("run_aggregate_sql", {"sql": "SELECT count(DISTINCT patient_id) AS n FROM gold.condition WHERE code = '43878008'"}),
]


def build_lake(patients: int) -> Path:
    lake_dir = ROOT / f"lake-{patients}"
    if (lake_dir / "catalog.duckdb").exists():
        return lake_dir
    shutil.rmtree(lake_dir, ignore_errors=True)
    lake = fhirlake.connect(lake_dir, read_only=False)
    for source, seed in (("site-a", 7), ("site-b", 8)):
        export = ROOT / "exports" / f"{source}-{patients}"
        shutil.rmtree(export, ignore_errors=True)
        generate(export, patients=patients // 2, seed=seed, workers=2)
        lake.ingest(export, source=source, allow_raw=True)
    lake.close()
    return lake_dir


def write_policy(folder: Path, tokens: list[str]) -> Path:
    policy = {
        "k": 11,
        "network": {"allow": ["127.0.0.0/8", "::1/128"]},
        "tenants": {"north": {"sources": ["site-a"]}, "south": {"sources": ["site-b"]}},
        "clients": [{"id": f"client-{i:02d}", "identity": {"token_sha256": token_sha256(token)},
                     "tenant": "north" if i % 2 == 0 else "south", "tools": "all",
                     "hide": {"patient": ["region"]}} for i, token in enumerate(tokens)],
    }
    path = folder / "policy.yaml"
    path.write_text(json.dumps(policy))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Run:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    audit_calls: int | None = None
    peak_rss_mb: float = 0.0


class Server:
    """``fhirlake mcp --transport http`` in a subprocess (started and stopped by this script)."""

    def __init__(self, lake: Path, policy: Path | None, *, extra: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        command = [sys.executable, "-m", "fhirlake.cli", "mcp", "--transport", "http", "--port", str(self.port), "--lake", str(lake)]
        if policy is not None:
            command += ["--policy", str(policy)]
        command += extra or []
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=1)
                break
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start: {self.process.stderr.read() if self.process.stderr else ''}") from None
                time.sleep(0.1)

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def one_client(url: str, token: str | None, calls: int, run: Run) -> None:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        async with (
            httpx2.AsyncClient(headers=headers, timeout=120) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            for i in range(calls):
                tool, arguments = CALLS[i % len(CALLS)]
                started = time.perf_counter()
                result = await session.call_tool(tool, arguments)
                run.latencies.append(time.perf_counter() - started)
                if result.is_error:
                    run.errors.append(f"{tool}: {result.content[0].text if result.content else '?'}"[:200])
    except Exception as exc:  # a transport failure is an error of the run, reported, not raised
        run.errors.append(f"{type(exc).__name__}: {exc}"[:200])


def load(lake: Path, clients: int, calls: int, access: bool, folder: Path) -> Run:
    tokens = [mint_token() for _ in range(clients)]
    policy = write_policy(folder, tokens) if access else None
    audit = lake / "_fhirlake" / "audit.jsonl"
    before = sum(1 for _ in read_entries(audit)) if audit.exists() else 0
    server = Server(lake, policy)
    try:
        started = time.perf_counter()

        async def everyone() -> Run:
            run = Run(0.0)
            await asyncio.gather(*(one_client(server.url, tokens[i] if access else None, calls, run) for i in range(clients)))
            return run

        run = asyncio.run(everyone())
        run.seconds = time.perf_counter() - started
        run.peak_rss_mb = server.peak_rss_mb()
    finally:
        server.stop()
    if access:
        verify_log(audit)
        entries = [entry for number, entry in read_entries(audit) if number > before]
        run.audit_calls = sum(1 for entry in entries if entry and entry.get("event") == "call")
    return run


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=150)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    lake = build_lake(args.patients)
    folder = ROOT / "work"
    folder.mkdir(parents=True, exist_ok=True)
    total = args.clients * args.calls
    results: dict[str, list[Run]] = {"baseline": [], "access": []}
    for _ in range(args.repeat):
        for name in results:
            results[name].append(load(lake, args.clients, args.calls, name == "access", folder))
    summary: dict[str, dict[str, float]] = {}
    for name, runs in results.items():
        throughput = statistics.median(total / r.seconds for r in runs)
        p50 = statistics.median(pct(r.latencies, 0.50) for r in runs) * 1000
        p95 = statistics.median(pct(r.latencies, 0.95) for r in runs) * 1000
        errors = sum(len(r.errors) for r in runs)
        rss = max(r.peak_rss_mb for r in runs)
        summary[name] = {"throughput": throughput, "p50": p50, "p95": p95, "rss": rss}
        audit = "" if name == "baseline" else "; audit entries/calls: " + ", ".join(f"{r.audit_calls}/{total}" for r in runs) + " (chain verified)"
        print(f"{name:8s}: {args.clients} clients x {args.calls} calls, {args.repeat} runs: median {throughput:.1f} calls/s, "
              f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, errors {errors}, server peak RSS {rss:.0f} MB{audit}")
        for error in sorted({e for r in runs for e in r.errors})[:5]:
            print(f"          error: {error}")
    a, b = summary["access"], summary["baseline"]
    print(f"ratio access/baseline: throughput {a['throughput'] / b['throughput']:.2f}x, p50 {a['p50'] / b['p50']:.2f}x, "
          f"p95 {a['p95'] / b['p95']:.2f}x, peak RSS {a['rss'] / b['rss']:.2f}x")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
