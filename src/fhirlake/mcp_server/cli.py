"""``fhirlake mcp``: serve the lake's gold tables to LLMs over MCP (stdio, or streamable HTTP)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

__all__ = ["mcp_command"]

# the defaults of fhirlake.mcp_server.http, repeated so that --help imports nothing heavy
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_PATH = "/mcp"


@click.command("mcp")
@click.option("--lake", type=click.Path(path_type=Path), default=None, help="Lake root (default $FHIRLAKE_LAKE, else ./.fhirlake).")
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True)
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="HTTP: address to listen on.")
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True, help="HTTP: port.")
@click.option("--path", "http_path", default=DEFAULT_PATH, show_default=True, help="HTTP: endpoint path.")
@click.option("--k", "k", type=int, default=None, help="Minimum cell size (default 11; never below the floor of 5).")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Time limit of one query, in seconds.")
@click.option("--connections", type=int, default=4, show_default=True, help="Read-only DuckDB connections (queries at once).")
@click.option("--memory-limit", default="768MB", show_default=True, help="DuckDB memory limit of each connection.")
@click.option("--epsilon-per-call", type=float, default=1.0, show_default=True,
              help="Privacy loss (epsilon) one new answer spends.")
@click.option("--epsilon-per-day", type=float, default=20.0, show_default=True,
              help="Each client's privacy budget per UTC day.")
@click.option("--state", "state_dir", type=click.Path(file_okay=False, path_type=Path), envvar="FHIRLAKE_SERVING_STATE", default=None,
              help="Folder of the privacy ledger (budgets, released answers), shared by every server on the lake "
                   "(default <lake>/_fhirlake/serving).")
@click.option("--audit-log", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Audit log (default $FHIRLAKE_AUDIT_LOG, else <lake>/_fhirlake/audit.jsonl).")
@click.option("--log-calls/--no-log-calls", default=False, help="Log one line per tool call on stderr (no values).")
@click.option("--policy", "access_policy", type=click.Path(dir_okay=False, path_type=Path), envvar="FHIRLAKE_ACCESS_POLICY",
              default=None, help="Access policy (YAML; env FHIRLAKE_ACCESS_POLICY): clients, scopes, tenants.")
@click.option("--no-auth", is_flag=True, default=False,
              help="HTTP on a non-loopback address without a policy: serve anyone who can connect (you were warned).")
def mcp_command(lake: Path | None, transport: str, host: str, port: int, http_path: str, k: int | None, timeout: float,
                connections: int, memory_limit: str, epsilon_per_call: float, epsilon_per_day: float, state_dir: Path | None,
                audit_log: Path | None, log_calls: bool, access_policy: Path | None, no_auth: bool) -> None:
    """Serve cohort counts to LLMs over MCP: noisy aggregates only, small counts suppressed, every call audited."""
    import anyio
    import uvicorn

    from fhirlake.access.network import is_loopback_host
    from fhirlake.access.serve import AccessControl
    from fhirlake.audit.trail import AuditTrail, call_entry
    from fhirlake.mcp_server.context import CallRecord, Transport, log_call
    from fhirlake.mcp_server.http import build_http_app
    from fhirlake.mcp_server.server import ServerOptions, build_server
    from fhirlake.serving import CohortService, GoldReader, PrivacyPolicy, SuppressionPolicy

    if transport == "http" and access_policy is None and not is_loopback_host(host) and not no_auth:
        raise click.UsageError(f"refusing to serve HTTP on {host} without an access policy: anyone who reaches it would be "
                               "served; give --policy (tokens, networks), bind 127.0.0.1, or pass --no-auth deliberately")
    if log_calls:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    mode: Transport = "http" if transport == "http" else "stdio"
    control = AccessControl.open(access_policy, lake, transport=mode, log_path=audit_log) if access_policy else None
    trail = control.trail if control is not None else AuditTrail.for_lake(lake, log_path=audit_log)
    if control is not None:
        k = max(k or 0, control.k)
    policy = SuppressionPolicy(k) if k is not None else SuppressionPolicy()
    reader = GoldReader(lake, timeout_seconds=timeout, connections=connections, memory_limit=memory_limit)
    budgets = control.budgets() if control is not None else {}
    service = CohortService(reader, policy=policy, state_dir=state_dir, privacy=PrivacyPolicy(
        epsilon_per_call=epsilon_per_call, epsilon_per_day=epsilon_per_day, budgets=budgets))

    def record(call: CallRecord) -> None:  # the audit is always on, with or without a policy
        trail.record(call_entry(call, mode, policy=None))
        if log_calls:
            log_call(call)

    options = ServerOptions(on_call=record, transport=mode)
    if control is not None:
        options = control.server_options(base_url=f"http://{host}:{port}", path=http_path)
    server = build_server(service, options)
    try:
        if transport == "stdio":
            if sys.stdin.isatty():
                click.echo("fhirlake mcp: serving MCP on stdio. An MCP client starts this command itself; see "
                           "'fhirlake mcp --help' and docs/mcp.md for the Claude Desktop and VS Code settings.", err=True)
            anyio.run(server.mcp.run_stdio_async)
            return
        app = build_http_app(server, host=host, path=http_path)
        click.echo(f"fhirlake mcp: http://{host}:{port}{http_path}", err=True)
        # forwarded headers are read by the policy's own trusted_proxies, never by uvicorn
        uvicorn.run(control.wrap_http(app) if control is not None else app, host=host, port=port, log_level="warning",
                    proxy_headers=False, forwarded_allow_ips="")
    finally:
        service.close()
        reader.close()
        trail.close()
