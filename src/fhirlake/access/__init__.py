"""Access control for the serving layer: who may connect, who they are, what they may see.

* :mod:`~fhirlake.access.policy`: the YAML policy (network, identity, scopes, cohort,
  attributes, tenants), parsed into frozen dataclasses and validated at start;
* :mod:`~fhirlake.access.tokens`: static bearer tokens, stored only as SHA-256;
* :mod:`~fhirlake.access.jwks`: OAuth 2 JWT validation (JWKS, issuer, audience, expiry);
* :mod:`~fhirlake.access.verifier`: the MCP SDK ``TokenVerifier`` over both;
* :mod:`~fhirlake.access.network`: the CIDR allow-list and per-client networks (ASGI).

See ``docs/access-control.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhirlake._lazy import lazy_attribute

if TYPE_CHECKING:
    from fhirlake.access.errors import AccessDenied, AccessPolicyError
    from fhirlake.access.network import (
        ClientNetworkGuard,
        NetworkAllowList,
        guard_clients,
        peer_address,
    )
    from fhirlake.access.policy import (
        K_FLOOR,
        AccessPolicy,
        Client,
        CohortRestriction,
        Grant,
        JwtIdentity,
        JwtSettings,
        NetworkSettings,
        TokenIdentity,
        load_policy,
        parse_policy,
    )
    from fhirlake.access.tokens import match_token, mint_token, token_sha256
    from fhirlake.access.verifier import PolicyTokenVerifier

__all__ = [
    "K_FLOOR",
    "AccessDenied",
    "AccessPolicy",
    "AccessPolicyError",
    "Client",
    "ClientNetworkGuard",
    "CohortRestriction",
    "Grant",
    "JwtIdentity",
    "JwtSettings",
    "NetworkAllowList",
    "NetworkSettings",
    "PolicyTokenVerifier",
    "TokenIdentity",
    "guard_clients",
    "load_policy",
    "match_token",
    "mint_token",
    "parse_policy",
    "peer_address",
    "token_sha256",
]

# imported on first use: ``fhirlake access --help`` loads neither starlette nor the MCP SDK
_EXPORTS = {
    "AccessDenied": "fhirlake.access.errors",
    "AccessPolicyError": "fhirlake.access.errors",
    "ClientNetworkGuard": "fhirlake.access.network",
    "NetworkAllowList": "fhirlake.access.network",
    "guard_clients": "fhirlake.access.network",
    "peer_address": "fhirlake.access.network",
    "K_FLOOR": "fhirlake.access.policy",
    "AccessPolicy": "fhirlake.access.policy",
    "Client": "fhirlake.access.policy",
    "CohortRestriction": "fhirlake.access.policy",
    "Grant": "fhirlake.access.policy",
    "JwtIdentity": "fhirlake.access.policy",
    "JwtSettings": "fhirlake.access.policy",
    "NetworkSettings": "fhirlake.access.policy",
    "TokenIdentity": "fhirlake.access.policy",
    "load_policy": "fhirlake.access.policy",
    "parse_policy": "fhirlake.access.policy",
    "match_token": "fhirlake.access.tokens",
    "mint_token": "fhirlake.access.tokens",
    "token_sha256": "fhirlake.access.tokens",
    "PolicyTokenVerifier": "fhirlake.access.verifier",
}


def __getattr__(name: str) -> object:
    return lazy_attribute(__name__, _EXPORTS, name)
