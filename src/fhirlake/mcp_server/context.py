"""The seams access control and audit plug into: who is calling, and what each call did.

* :class:`ClientContext`: one caller, resolved per call: an id, a
  :class:`~fhirlake.serving.scope.DataScope`, the tools it may call (None: all).
* :data:`ClientResolver`: a function from a :class:`ResolveRequest` (the transport, and on HTTP
  the MCP SDK's verified access token, if any) to a ClientContext, or a
  :class:`~fhirlake.serving.errors.QueryRefused` to turn the caller away. The default,
  :func:`local_user`, is the trusted local user with the full scope.
* :class:`CallRecord`: what one tool call did (client, tool, arguments, SQL run, decision and
  reason, suppressed cells, rows, duration), passed to an ``on_call`` sink. It never holds a
  result value. :func:`log_call` is a sink that writes one log line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from mcp.server.auth.provider import AccessToken

from fhirlake.serving.scope import DataScope

__all__ = ["CallRecord", "CallSink", "ClientContext", "ClientResolver", "ResolveRequest", "Transport", "local_user", "log_call"]

Transport = Literal["stdio", "http", "memory"]
LOCAL_USER = "local"
logger = logging.getLogger("fhirlake.mcp")


@dataclass(frozen=True)
class ClientContext:
    """One caller: ``id`` (for audit and per-client memory), ``scope``, allowed ``tools`` (None: all)."""

    id: str
    scope: DataScope = field(default_factory=DataScope)
    tools: frozenset[str] | None = None

    def allows(self, tool: str) -> bool:
        return self.tools is None or tool in self.tools


@dataclass(frozen=True)
class ResolveRequest:
    """What a resolver knows of a call: the transport and the verified bearer token (HTTP with auth)."""

    transport: Transport
    access_token: AccessToken | None
    tool: str


ClientResolver = Callable[[ResolveRequest], ClientContext]


def local_user(request: ResolveRequest) -> ClientContext:
    """The default resolver: the local trusted user (or the token's client id), full scope."""
    client = request.access_token.client_id if request.access_token is not None else LOCAL_USER
    return ClientContext(id=client)


@dataclass(frozen=True)
class CallRecord:
    """One tool call as the audit sees it (never a result value)."""

    time: datetime
    client: str
    tool: str
    arguments: Mapping[str, Any]
    sql: tuple[str, ...]
    decision: Literal["allowed", "refused", "error"]
    reason: str | None
    suppressed: int
    rows: int
    duration_ms: float
    epsilon: float = 0.0


CallSink = Callable[[CallRecord], None]


def log_call(record: CallRecord) -> None:
    """A sink writing one line per call: who, what, the decision, and sizes; no values, no SQL."""
    logger.info("call client=%s tool=%s decision=%s reason=%s suppressed=%d rows=%d ms=%.1f args=%s",
                record.client, record.tool, record.decision, json.dumps(record.reason), record.suppressed,
                record.rows, record.duration_ms, json.dumps(sorted(record.arguments)))
