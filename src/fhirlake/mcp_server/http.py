"""The streamable HTTP app: a Starlette ASGI app serving the MCP endpoint (``/mcp``).

Built by a function so access control can wrap it (a network allow-list middleware) and the
server can carry the SDK's auth settings and token verifier (:class:`ServerOptions`). Bound to
127.0.0.1 by default; the SDK's DNS-rebinding protection accepts only that host.
"""

from __future__ import annotations

from starlette.applications import Starlette

from fhirlake.mcp_server.server import FhirlakeServer

__all__ = ["DEFAULT_HOST", "DEFAULT_PATH", "DEFAULT_PORT", "build_http_app"]

from fhirlake.mcp_server.cli import DEFAULT_HOST, DEFAULT_PATH, DEFAULT_PORT


def build_http_app(server: FhirlakeServer, *, host: str = DEFAULT_HOST, path: str = DEFAULT_PATH) -> Starlette:
    """The ASGI app serving ``server`` over streamable HTTP at ``path``."""
    server.dispatcher.transport = "http"
    return server.mcp.streamable_http_app(streamable_http_path=path, host=host)
