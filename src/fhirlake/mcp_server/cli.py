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
def mcp_command(lake: Path | None, transport: str, host: str, port: int, http_path: str, k: int | None, timeout: float,
                log_calls: bool) -> None:
    """Serve cohort counts to LLMs over MCP: aggregates only, small counts suppressed."""
    import anyio
    import uvicorn

    from fhirlake.mcp_server.context import log_call
    from fhirlake.mcp_server.http import build_http_app
    from fhirlake.mcp_server.server import ServerOptions, build_server
    from fhirlake.serving import CohortService, GoldReader, SuppressionPolicy

    if log_calls:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    policy = SuppressionPolicy(k) if k is not None else SuppressionPolicy()
    service = CohortService(GoldReader(lake, timeout_seconds=timeout), policy=policy)
    server = build_server(service, ServerOptions(on_call=log_call if log_calls else None))
    if transport == "stdio":
        anyio.run(server.mcp.run_stdio_async)
        return
    app = build_http_app(server, host=host, path=http_path)
    click.echo(f"fhirlake mcp: http://{host}:{port}{http_path}", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
