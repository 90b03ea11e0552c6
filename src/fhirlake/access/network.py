"""Network controls as ASGI middleware: the global allow-list and each client's own networks.

:class:`NetworkAllowList` wraps the whole HTTP app and refuses (403, JSON body) a connection
whose address is in none of the allowed CIDRs, before any authentication work is done.
:class:`ClientNetworkGuard` runs after the MCP SDK's authentication (insert it with
:func:`guard_clients`) and refuses an authenticated client coming from outside its own
``networks``. ``X-Forwarded-For`` is read only when the direct peer is one of the configured
trusted proxies; otherwise a client could claim any address.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Sequence

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from fhirlake.access.policy import AccessPolicy, Network

__all__ = ["ClientNetworkGuard", "NetworkAllowList", "guard_clients", "in_networks", "is_loopback_host", "peer_address"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Called with (client id or None, peer address, reason) for every refused connection.
OnDenied = Callable[[str | None, str, str], None]


def peer_address(scope: Scope, trusted_proxies: Sequence[Network] = ()) -> Address | None:
    """The client's address: the direct peer, or, behind trusted proxies, the right-most
    ``X-Forwarded-For`` hop that is not itself a trusted proxy."""
    client = scope.get("client")
    if not client:
        return None
    try:
        address: Address = ipaddress.ip_address(client[0])
    except ValueError:
        return None
    if not trusted_proxies or not in_networks(address, trusted_proxies):
        return address
    hops = [
        part.strip()
        for name, value in scope.get("headers", [])
        if name.lower() == b"x-forwarded-for"
        for part in value.decode("latin-1").split(",")
    ]
    for hop in reversed(hops):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return None  # a garbled chain is not trusted at all
        if not in_networks(address, trusted_proxies):
            return address
    return address


def in_networks(address: Address, networks: Sequence[Network]) -> bool:
    """Whether the address is in one of the networks (an IPv4-mapped IPv6 address counts as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in networks)


async def _forbid(send: Send, description: str) -> None:
    body = json.dumps({"error": "forbidden", "error_description": description}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class NetworkAllowList:
    """Refuses HTTP requests from addresses outside the policy's ``network.allow`` CIDRs."""

    def __init__(self, app: ASGIApp, *, policy: AccessPolicy, on_denied: OnDenied | None = None) -> None:
        self.app = app
        self.allow = policy.network.allow
        self.proxies = policy.network.trusted_proxies
        self.on_denied = on_denied

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        address = peer_address(scope, self.proxies)
        if address is None or not in_networks(address, self.allow):
            shown = str(address) if address is not None else "unknown"
            if self.on_denied is not None:
                self.on_denied(None, shown, "address not in the network allow-list")
            await _forbid(send, f"address {shown} is not in the network allow-list")
            return
        await self.app(scope, receive, send)


class ClientNetworkGuard:
    """Refuses an authenticated client that connects from outside its own ``networks``."""

    def __init__(self, app: ASGIApp, *, policy: AccessPolicy, on_denied: OnDenied | None = None) -> None:
        self.app = app
        self.networks = {client.id: client.networks for client in policy.clients if client.networks}
        self.proxies = policy.network.trusted_proxies
        self.on_denied = on_denied

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if scope["type"] == "http" and isinstance(user, AuthenticatedUser):
            client_id = user.access_token.client_id
            allowed = self.networks.get(client_id)
            address = peer_address(scope, self.proxies)
            if allowed and (address is None or not in_networks(address, allowed)):
                shown = str(address) if address is not None else "unknown"
                if self.on_denied is not None:
                    self.on_denied(client_id, shown, "address not in the client's networks")
                await _forbid(send, f"client {client_id!r} may not connect from {shown}")
                return
        await self.app(scope, receive, send)


def guard_clients(app: Starlette, policy: AccessPolicy, on_denied: OnDenied | None = None) -> Starlette:
    """Add :class:`ClientNetworkGuard` as the innermost middleware of an SDK-built Starlette app
    (after its authentication middleware, so the client is known). Call before the app starts."""
    app.user_middleware.append(Middleware(ClientNetworkGuard, policy=policy, on_denied=on_denied))
    return app


def is_loopback_host(host: str) -> bool:
    """True when ``host`` (an address or ``localhost``) only listens on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
