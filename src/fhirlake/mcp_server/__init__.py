"""The MCP cohort server (``fhirlake mcp``): LLMs ask aggregate questions, never see a patient.

:func:`build_server` gives an ``MCPServer`` (stdio via ``server.mcp.run_stdio_async``),
:func:`build_http_app` its streamable HTTP app. The seams for access control and audit are in
:mod:`fhirlake.mcp_server.context`: :class:`ClientContext`, the ``resolver`` that finds it per
call, and the :class:`CallRecord` handed to ``on_call``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhirlake._lazy import lazy_attribute

if TYPE_CHECKING:
    from fhirlake.mcp_server.context import (
        CallRecord,
        CallSink,
        ClientContext,
        ClientResolver,
        ResolveRequest,
        local_user,
        log_call,
    )
    from fhirlake.mcp_server.dispatch import Dispatcher
    from fhirlake.mcp_server.http import build_http_app
    from fhirlake.mcp_server.server import TOOLS, FhirlakeServer, ServerOptions, build_server

__all__ = [
    "TOOLS", "CallRecord", "CallSink", "ClientContext", "ClientResolver", "Dispatcher", "FhirlakeServer", "ResolveRequest",
    "ServerOptions", "build_http_app", "build_server", "local_user", "log_call",
]

# imported on first use: ``fhirlake mcp --help`` loads neither the MCP SDK nor the serving layer
_EXPORTS = {
    **dict.fromkeys(("CallRecord", "CallSink", "ClientContext", "ClientResolver", "ResolveRequest", "local_user", "log_call"),
                    "fhirlake.mcp_server.context"),
    "Dispatcher": "fhirlake.mcp_server.dispatch",
    "build_http_app": "fhirlake.mcp_server.http",
    **dict.fromkeys(("TOOLS", "FhirlakeServer", "ServerOptions", "build_server"), "fhirlake.mcp_server.server"),
}


def __getattr__(name: str) -> object:
    return lazy_attribute(__name__, _EXPORTS, name)
