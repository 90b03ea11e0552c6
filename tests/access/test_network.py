"""The network levels: address matching, X-Forwarded-For only from trusted proxies, the ASGI gates."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from typing import Any

import pytest
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken

from fhirlake.access import ClientNetworkGuard, NetworkAllowList, parse_policy, peer_address
from fhirlake.access.network import in_networks

POLICY = parse_policy(
    {
        "network": {"allow": ["127.0.0.0/8", "::1/128", "10.20.0.0/16", "2001:db8::/32"], "trusted_proxies": ["10.20.0.1/32"]},
        "clients": [{"id": "ward", "identity": {"token_sha256": "c" * 64}, "networks": ["10.20.30.0/24", "2001:db8:30::/48"]}],
    }
)


def nets(*cidrs: str) -> list[Any]:
    return [ipaddress.ip_network(c) for c in cidrs]


def test_addresses_match_their_own_family_and_mapped_ipv4() -> None:
    allow = nets("10.0.0.0/8", "2001:db8::/32")
    assert in_networks(ipaddress.ip_address("10.1.2.3"), allow)
    assert in_networks(ipaddress.ip_address("::ffff:10.1.2.3"), allow)
    assert in_networks(ipaddress.ip_address("2001:db8::1"), allow)
    assert not in_networks(ipaddress.ip_address("11.0.0.1"), allow)
    assert not in_networks(ipaddress.ip_address("2001:db9::1"), allow)


def scope(peer: str, forwarded: str | None = None, user: Any = None) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    result: dict[str, Any] = {"type": "http", "client": (peer, 50000), "headers": headers, "path": "/mcp"}
    if user is not None:
        result["user"] = user
    return result


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    proxies = nets("10.20.0.1/32")
    assert str(peer_address(scope("203.0.113.9", "10.20.30.4"), proxies)) == "203.0.113.9"
    assert str(peer_address(scope("10.20.0.1", "198.51.100.7, 10.20.30.4"), proxies)) == "10.20.30.4"
    assert str(peer_address(scope("10.20.0.1", "10.20.30.4, 10.20.0.1"), proxies)) == "10.20.30.4"
    assert peer_address(scope("10.20.0.1", "garbage"), proxies) is None
    assert str(peer_address(scope("10.20.30.4", "127.0.0.1"), ())) == "10.20.30.4"


def call(app: Any, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(request, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


async def inner(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b'{"ok": true}'})


@pytest.mark.parametrize(
    ("peer", "forwarded", "status"),
    [("127.0.0.1", None, 200), ("::1", None, 200), ("10.20.5.5", None, 200), ("2001:db8::5", None, 200),
     ("192.168.1.1", None, 403), ("fe80::1", None, 403), ("192.168.1.1", "127.0.0.1", 403),
     ("10.20.0.1", "192.168.1.1", 403), ("10.20.0.1", "10.20.30.9", 200)],
)
def test_the_allow_list_admits_only_listed_networks(peer: str, forwarded: str | None, status: int) -> None:
    denied: list[tuple[Any, ...]] = []
    code, body = call(NetworkAllowList(inner, policy=POLICY, on_denied=lambda *a: denied.append(a)), scope(peer, forwarded))
    assert code == status
    if status == 403:
        assert body["error"] == "forbidden" and "not in the network allow-list" in body["error_description"]
        assert len(denied) == 1 and denied[0][0] is None
    else:
        assert denied == []


def user(client_id: str) -> AuthenticatedUser:
    return AuthenticatedUser(AccessToken(token="", client_id=client_id, scopes=[]))


@pytest.mark.parametrize(
    ("peer", "status"), [("10.20.30.7", 200), ("2001:db8:30::7", 200), ("10.20.31.7", 403), ("2001:db8:31::7", 403)]
)
def test_a_client_is_held_to_its_own_networks(peer: str, status: int) -> None:
    denied: list[tuple[Any, ...]] = []
    guard = ClientNetworkGuard(inner, policy=POLICY, on_denied=lambda *a: denied.append(a))
    code, body = call(guard, scope(peer, user=user("ward")))
    assert code == status
    assert [d[0] for d in denied] == (["ward"] if status == 403 else [])
    if status == 403:
        assert "may not connect from" in body["error_description"]


def test_clients_without_networks_and_anonymous_requests_pass_the_guard() -> None:
    guard = ClientNetworkGuard(inner, policy=POLICY)
    assert call(guard, scope("10.99.0.1", user=user("other")))[0] == 200
    assert call(guard, scope("10.99.0.1"))[0] == 200
