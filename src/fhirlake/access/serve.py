"""Access control and audit plugged into the MCP server (``fhirlake mcp --policy``).

:class:`AccessControl` turns a policy and an audit trail into what the server's seams take:

* :meth:`~AccessControl.resolve`: the ``ClientResolver``: the verified access token's client
  (HTTP) or the local user (stdio) → a ``ClientContext`` whose ``DataScope`` carries the tenant's
  sources, the views, the cohort restriction and the hidden and generalised columns;
* :meth:`~AccessControl.record_call`: the ``on_call`` sink: one audit entry per tool call;
* :meth:`~AccessControl.server_options`: the resolver, the sink, the SDK's ``AuthSettings`` and
  the :class:`~fhirlake.access.verifier.PolicyTokenVerifier` (so the SDK answers 401 itself);
* :meth:`~AccessControl.wrap_http`: the HTTP app behind the network allow-list, each client's
  own networks, and an audit entry for every request refused with 401 or 403.

The server's suppression ``k`` is the largest ``k`` of the policy (:meth:`~AccessControl.k`):
the service has one ``k`` for everyone, and no client may see cells smaller than its own.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic
from mcp.server.auth.settings import AuthSettings
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhirlake.access.catalog import library_catalog
from fhirlake.access.errors import AccessPolicyError
from fhirlake.access.network import NetworkAllowList, guard_clients, peer_address
from fhirlake.access.policy import AccessPolicy, Grant, load_policy
from fhirlake.access.verifier import PolicyTokenVerifier
from fhirlake.audit.trail import AuditTrail, call_entry
from fhirlake.mcp_server.context import (
    LOCAL_USER,
    CallRecord,
    ClientContext,
    ResolveRequest,
    Transport,
)
from fhirlake.mcp_server.server import TOOLS, ServerOptions
from fhirlake.serving.errors import QueryRefused
from fhirlake.serving.scope import DataScope

if TYPE_CHECKING:
    from fhirlake.cohorts.model import CohortDefinition

__all__ = ["AccessControl"]

#: Reasons for refusing the current HTTP request, filled by the checks, read by the audit wrapper.
_refusals: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("fhirlake_refusals", default=None)


#: What every client may call whatever its tools: reading the (scoped) schema resources.
_ALWAYS = frozenset({"resource:schema"})


def _note_refusal(reason: str) -> None:
    reasons = _refusals.get()
    if reasons is not None:
        reasons.append(reason)


class AccessControl:
    """One policy and one audit trail, applied to a server; build it once at start."""

    def __init__(self, policy: AccessPolicy, trail: AuditTrail, *, transport: Transport = "stdio") -> None:
        self.policy = policy
        self.trail = trail
        self.transport = transport
        self._local = self._context(LOCAL_USER, policy.local, "/local")
        self._clients = {client.id: self._context(client.id, client.grant, f"/clients/{i}") for i, client in enumerate(policy.clients)}

    @classmethod
    def open(cls, policy_path: str | Path, lake: str | Path | None = None, *, transport: Transport = "stdio",
             log_path: str | Path | None = None) -> AccessControl:
        """Load and check the policy (view and column names against the view library) and open the
        lake's audit trail; any mistake stops here, before the server starts."""
        policy = load_policy(policy_path, catalog=library_catalog())
        return cls(policy, AuditTrail.for_lake(lake, log_path=log_path), transport=transport)

    def budgets(self) -> dict[str, float]:
        """Each client's own privacy budget per day, where its grant sets one (the local user as ``local``)."""
        grants = [(LOCAL_USER, self.policy.local), *((client.id, client.grant) for client in self.policy.clients)]
        return {client: grant.epsilon_per_day for client, grant in grants if grant.epsilon_per_day is not None}

    @property
    def k(self) -> int:
        """The server's minimum cell size: the largest ``k`` any grant asks for."""
        return max([self.policy.local.k, *(client.grant.k for client in self.policy.clients)])

    # ------------------------------------------------------------------ the server's seams

    def resolve(self, request: ResolveRequest) -> ClientContext:
        """The caller's context; HTTP without a verified token is refused (never the local user)."""
        if request.transport != "http":
            return self._local
        if request.access_token is None:
            raise QueryRefused("no authenticated client on this HTTP request")
        context = self._clients.get(request.access_token.client_id)
        if context is None:
            raise QueryRefused(f"client {request.access_token.client_id!r} is not in the access policy")
        return context

    def record_call(self, record: CallRecord) -> None:
        """The audit entry of one tool call: who, what, the SQL, the decision; never a value."""
        self.trail.record(call_entry(record, self.transport, policy=self.policy.sha256[:16]))

    def server_options(self, *, base_url: str | None = None, path: str = "/mcp") -> ServerOptions:
        """Options for ``build_server``: resolver and audit sink; on HTTP also the SDK auth hooks.

        ``base_url`` (``http://host:port``) is where the server is reached; it names the
        protected resource in the SDK's 401 answers and metadata.
        """
        if self.transport != "http":
            return ServerOptions(resolver=self.resolve, on_call=self.record_call, transport=self.transport)
        if base_url is None:
            raise ValueError("an HTTP server needs its base_url")
        issuer = self.policy.jwt.issuer if self.policy.jwt is not None else base_url
        auth = AuthSettings(issuer_url=issuer, resource_server_url=f"{base_url}{path}", validate_token_resource=False)  # type: ignore[arg-type]
        verifier = PolicyTokenVerifier(self.policy, on_refused=_note_refusal)
        return ServerOptions(resolver=self.resolve, on_call=self.record_call, transport="http",
                             token_verifier=verifier, auth=auth)

    def wrap_http(self, app: Starlette) -> ASGIApp:
        """``app`` behind the network allow-list and per-client networks, auditing refusals."""
        guard_clients(app, self.policy, on_denied=lambda _client, _peer, reason: _note_refusal(reason))
        gated = NetworkAllowList(app, policy=self.policy, on_denied=lambda _client, _peer, reason: _note_refusal(reason))
        return _AuditRefusals(gated, self)

    def close(self) -> None:
        """Sync the audit table and close the log."""
        self.trail.close()

    # ------------------------------------------------------------------ the grant as a scope

    def _context(self, client_id: str, grant: Grant, pointer: str) -> ClientContext:
        tools = None
        if grant.tools is not None:
            for tool in sorted(grant.tools):
                if tool not in TOOLS:
                    raise AccessPolicyError(self.policy.path, f"{pointer}/tools", f"unknown tool {tool!r} (tools: {', '.join(TOOLS)})")
            tools = grant.tools | _ALWAYS  # the schema resources show only the scope's views anyway
        return ClientContext(id=client_id, scope=self._scope(grant, pointer), tools=tools)

    def _scope(self, grant: Grant, pointer: str) -> DataScope:
        cohort = self._cohort(grant, pointer) if grant.cohort is not None else None
        return DataScope(
            views=grant.views,
            sources=grant.sources,
            cohort=cohort,
            hidden_columns=dict(grant.hidden),
            generalized_columns={view: dict(columns) for view, columns in grant.generalised.items()},
        )

    def _cohort(self, grant: Grant, pointer: str) -> CohortDefinition:
        # imported here: importing fhirlake.cohorts before fhirlake.serving is circular
        from fhirlake.cohorts.model import CohortDefinition

        assert grant.cohort is not None
        where = f"/cohorts/{grant.cohort.name}" if grant.cohort.name != "inline" else f"{pointer}/cohort"
        try:
            return CohortDefinition.model_validate(dict(grant.cohort.definition))
        except pydantic.ValidationError as exc:
            error = exc.errors()[0]
            location = "/".join(str(part) for part in error["loc"])
            raise AccessPolicyError(self.policy.path, f"{where}/{location}".rstrip("/"), error["msg"]) from exc


class _AuditRefusals:
    """Writes one audit entry for every HTTP request answered 401 or 403 (with the reason)."""

    def __init__(self, app: ASGIApp, control: AccessControl) -> None:
        self.app = app
        self.control = control

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        reasons: list[str] = []
        token = _refusals.set(reasons)

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (401, 403):
                self._record(scope, int(message["status"]), reasons)
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            _refusals.reset(token)

    def _record(self, scope: Scope, status: int, reasons: list[str]) -> None:
        address = peer_address(scope, self.control.policy.network.trusted_proxies)
        user: Any = scope.get("user")
        client = getattr(getattr(user, "access_token", None), "client_id", None)
        entry: Mapping[str, Any] = {
            "event": "http-refused",
            "transport": "http",
            "client": client,
            "decision": "refused",
            "level": "identity" if status == 401 else ("scope" if not reasons else "network"),
            "reason": "; ".join(reasons) or ("no valid bearer token" if status == 401 else "forbidden"),
            "status": status,
            "method": scope.get("method"),
            "path": scope.get("path"),
            "peer": str(address) if address is not None else None,
            "policy": self.control.policy.sha256[:16],
        }
        self.control.trail.record(entry)
