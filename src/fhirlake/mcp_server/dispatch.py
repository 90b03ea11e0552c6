"""The one door every tool call goes through: resolve the client, check the tool, run, record.

:meth:`Dispatcher.call` resolves the :class:`~fhirlake.mcp_server.context.ClientContext` (from
the transport and the verified access token), refuses a tool the client may not call, runs the
work in a worker thread (DuckDB blocks), turns a refusal into an MCP tool error with its
reason, and hands a :class:`~fhirlake.mcp_server.context.CallRecord` to the ``on_call`` sink
whatever happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import anyio.to_thread
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver.exceptions import ToolError

from fhirlake.cohorts.errors import CohortError
from fhirlake.errors import FhirlakeError
from fhirlake.mcp_server.context import (
    CallRecord,
    CallSink,
    ClientContext,
    ClientResolver,
    ResolveRequest,
    Transport,
)
from fhirlake.serving.errors import QueryRefused
from fhirlake.serving.service import Trace

__all__ = ["Dispatcher"]

T = TypeVar("T")


class Dispatcher:
    """Runs tool calls for a server: ``resolver`` finds the caller, ``on_call`` gets each record."""

    def __init__(self, resolver: ClientResolver, on_call: CallSink | None, transport: Transport) -> None:
        self.resolver = resolver
        self.on_call = on_call
        self.transport = transport

    def visible(self, tools: Sequence[str]) -> list[str]:
        """The tools of ``tools`` the current caller may call (what ``tools/list`` shows it);
        none for a caller the resolver turns away."""
        try:
            client = self.resolver(ResolveRequest(self.transport, get_access_token(), "tools/list"))
        except QueryRefused:
            return []
        return [tool for tool in tools if client.allows(tool)]

    async def call(self, tool: str, arguments: Mapping[str, Any], work: Callable[[ClientContext, Trace], T]) -> T:
        """Run ``work(client, trace)`` for ``tool``; a refusal becomes a ToolError naming the rule."""
        started = time.perf_counter()
        trace = Trace()
        client_id = "?"
        decision: Literal["allowed", "refused", "error"] = "error"
        reason: str | None = None
        try:
            client = self.resolver(ResolveRequest(self.transport, get_access_token(), tool))
            client_id = client.id
            if not client.allows(tool):
                raise QueryRefused(f"client {client.id!r} may not call {tool}")
            result = await anyio.to_thread.run_sync(lambda: work(client, trace))
            decision = "allowed"
            return result
        except (QueryRefused, CohortError) as exc:
            decision, reason = "refused", exc.reason
            raise ToolError(f"refused: {exc.reason}") from exc
        except FhirlakeError as exc:
            reason = str(exc)
            raise ToolError(f"error: {exc}") from exc
        except Exception as exc:
            reason = type(exc).__name__
            raise
        finally:
            if self.on_call is not None:
                self.on_call(CallRecord(
                    time=datetime.now(UTC), client=client_id, tool=tool, arguments=dict(arguments), sql=tuple(trace.sql),
                    decision=decision, reason=reason, suppressed=trace.suppressed, rows=trace.rows,
                    duration_ms=(time.perf_counter() - started) * 1000, epsilon=trace.epsilon))
