"""The MCP SDK's token hook: a bearer token (static or JWT) → the policy client it identifies.

:class:`PolicyTokenVerifier` implements ``mcp.server.auth.provider.TokenVerifier``; passed to
the server with ``AuthSettings`` it makes the SDK answer 401 with ``WWW-Authenticate`` for a
missing or unknown token. The returned ``AccessToken`` carries the policy client id as
``client_id`` and the client's tools as ``scopes``; the serving layer's resolver maps it to the
client's grant. A refused token is logged by reason only, never by value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from mcp.server.auth.provider import AccessToken

from fhirlake.access.errors import AccessDenied
from fhirlake.access.jwks import JwtValidator
from fhirlake.access.policy import AccessPolicy, Client, JwtIdentity
from fhirlake.access.tokens import match_token

__all__ = ["PolicyTokenVerifier", "scopes_of"]

_log = logging.getLogger(__name__)

#: Called with the reason of every refused token (never the token), e.g. to audit it.
OnRefused = Callable[[str], None]


class PolicyTokenVerifier:
    """Checks bearer tokens against an access policy (static token hashes first, then JWTs)."""

    def __init__(
        self, policy: AccessPolicy, *, jwt: JwtValidator | None = None, on_refused: OnRefused | None = None
    ) -> None:
        self.policy = policy
        self._by_hash = policy.token_clients()
        self._jwt_clients = policy.jwt_clients()
        self._jwt = jwt if jwt is not None else (JwtValidator(policy.jwt) if policy.jwt is not None else None)
        self._on_refused = on_refused

    async def verify_token(self, token: str) -> AccessToken | None:
        """The access token of the policy client ``token`` identifies, or None (the SDK then 401s)."""
        client = match_token(token, self._by_hash)
        if client is not None:
            return AccessToken(token="", client_id=client.id, scopes=scopes_of(client))
        if self._jwt is None or token.count(".") != 2:
            self._refuse("unknown bearer token")
            return None
        try:
            claims = await self._jwt.claims(token)
        except AccessDenied as exc:
            self._refuse(exc.reason)
            return None
        client = next((c for c in self._jwt_clients if _matches(c, claims)), None)
        if client is None:
            self._refuse("valid JWT, but no client of the policy matches its subject and claims")
            return None
        return AccessToken(
            token="",
            client_id=client.id,
            scopes=scopes_of(client),
            expires_at=int(claims["exp"]),
            subject=str(claims.get("sub", "")) or None,
            claims={"iss": claims.get("iss")},
        )

    def _refuse(self, reason: str) -> None:
        _log.info("bearer token refused: %s", reason)
        if self._on_refused is not None:
            self._on_refused(reason)


def scopes_of(client: Client) -> list[str]:
    """The OAuth scopes reported for a client: its tools (``*`` when it may use all)."""
    tools = client.grant.tools
    return ["*"] if tools is None else sorted(tools)


def _matches(client: Client, claims: Mapping[str, Any]) -> bool:
    identity = client.identity
    assert isinstance(identity, JwtIdentity)
    if identity.subject is not None and claims.get("sub") != identity.subject:
        return False
    for name, expected in identity.claims.items():
        value = claims.get(name)
        if isinstance(value, list):
            if expected not in value:
                return False
        elif isinstance(value, str) and name == "scope":
            if expected not in value.split():
                return False
        elif value != expected:
            return False
    return True
