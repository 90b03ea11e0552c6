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
