"""The MCP cohort server (``fhirlake mcp``): LLMs ask aggregate questions, never see a patient.

:func:`build_server` gives an ``MCPServer`` (stdio via ``server.mcp.run_stdio_async``),
:func:`build_http_app` its streamable HTTP app. The seams for access control and audit are in
:mod:`fhirlake.mcp_server.context`: :class:`ClientContext`, the ``resolver`` that finds it per
call, and the :class:`CallRecord` handed to ``on_call``.
"""

from __future__ import annotations

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
