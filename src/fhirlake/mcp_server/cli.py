"""``fhirlake mcp``: serve the lake's gold tables to LLMs over MCP (stdio, or streamable HTTP)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from fhirlake.mcp_server.http import DEFAULT_HOST, DEFAULT_PATH, DEFAULT_PORT

__all__ = ["mcp_command"]


@click.command("mcp")
@click.option("--lake", type=click.Path(path_type=Path), default=None, help="Lake root (default $FHIRLAKE_LAKE, else ./.fhirlake).")
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True)
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="HTTP: address to listen on.")
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True, help="HTTP: port.")
@click.option("--path", "http_path", default=DEFAULT_PATH, show_default=True, help="HTTP: endpoint path.")
@click.option("--k", "k", type=int, default=None, help="Minimum cell size (default 11; never below the floor of 5).")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Time limit of one query, in seconds.")
@click.option("--log-calls/--no-log-calls", default=False, help="Log one line per tool call on stderr (no values).")
@click.option("--policy", "access_policy", type=click.Path(dir_okay=False, path_type=Path), envvar="FHIRLAKE_ACCESS_POLICY",
              default=None, help="Access policy (YAML; env FHIRLAKE_ACCESS_POLICY): clients, scopes, tenants; audits every call.")
def mcp_command(lake: Path | None, transport: str, host: str, port: int, http_path: str, k: int | None, timeout: float,
                log_calls: bool, access_policy: Path | None) -> None:
    """Serve cohort counts to LLMs over MCP: aggregates only, small counts suppressed."""
    import anyio
    import uvicorn

    from fhirlake.access.serve import AccessControl
    from fhirlake.mcp_server.context import log_call
    from fhirlake.mcp_server.http import build_http_app
    from fhirlake.mcp_server.server import ServerOptions, build_server
    from fhirlake.serving import CohortService, GoldReader, SuppressionPolicy

    if log_calls:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    control = AccessControl.open(access_policy, lake, transport="http" if transport == "http" else "stdio") if access_policy else None
    if control is not None:
        k = max(k or 0, control.k)
    policy = SuppressionPolicy(k) if k is not None else SuppressionPolicy()
    service = CohortService(GoldReader(lake, timeout_seconds=timeout), policy=policy)
    options = ServerOptions(on_call=log_call if log_calls else None)
    if control is not None:
        options = control.server_options(base_url=f"http://{host}:{port}", path=http_path)
    server = build_server(service, options)
    try:
        if transport == "stdio":
            anyio.run(server.mcp.run_stdio_async)
            return
        app = build_http_app(server, host=host, path=http_path)
        click.echo(f"fhirlake mcp: http://{host}:{port}{http_path}", err=True)
        uvicorn.run(control.wrap_http(app) if control is not None else app, host=host, port=port, log_level="warning")
    finally:
        if control is not None:
            control.close()
