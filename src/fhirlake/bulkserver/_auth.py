"""SMART Backend Services on the server side: the token endpoint and bearer-token checks.

The server checks a client assertion as the SMART App Launch 2.x spec says: a registered
``iss`` (= ``sub``), ``aud`` = the token URL, RS384 or ES384 with a ``kid`` from the client's
JWKS, a ``jku`` (if any) equal to the registered JWKS URL, ``exp`` at most 5 minutes ahead,
and a ``jti`` never seen before.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from fhirlake.bulkserver._config import ClientRegistration, ServerAuth

__all__ = ["TokenError", "TokenService"]

_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_ALGORITHMS = {"RS384": "RSA", "ES384": "EC"}
_LEEWAY = 5


class TokenError(Exception):
    """A refused token request: the OAuth ``error`` code, a description and the HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        self.error, self.description, self.status = error, description, status
        super().__init__(f"{error}: {description}")


@dataclass(frozen=True)
class _Token:
    client_id: str
    expires_at: float


class TokenService:
    """Issues access tokens for valid assertions and checks them on every protected request."""

    def __init__(self, config: ServerAuth, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clients = {c.client_id: c for c in config.clients}
        self._clock = clock
        self._tokens: dict[str, _Token] = {}
        self._seen_jti: dict[str, float] = {}
        self._lock = threading.Lock()
        self.issued = 0
        self.rejected_requests = 0

    def issue(self, form: Mapping[str, str], *, token_url: str) -> dict[str, Any]:
        """Answer a token request (the decoded form); raises TokenError when it is refused."""
        if form.get("grant_type") != "client_credentials":
            raise TokenError("unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != _ASSERTION_TYPE:
            raise TokenError("invalid_request", f"client_assertion_type must be {_ASSERTION_TYPE}")
        assertion = form.get("client_assertion")
        if not assertion:
            raise TokenError("invalid_request", "client_assertion is missing")
        scope = form.get("scope", "")
        if not scope or any(not s.startswith("system/") for s in scope.split()):
            raise TokenError("invalid_scope", "Backend Services needs system/ scopes")
        client_id = self._verify(assertion, token_url=token_url)
        token = secrets.token_urlsafe(32)
        ttl = self.config.token_ttl
        with self._lock:
            self._tokens[token] = _Token(client_id, self._clock() + ttl)
            self.issued += 1
        return {"access_token": token, "token_type": "bearer", "expires_in": ttl, "scope": scope}

    def check(self, authorization: str | None) -> str | None:
        """The client id of a valid ``Bearer`` header, or None."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        with self._lock:
            token = self._tokens.get(authorization[len("Bearer ") :])
        if token is None or token.expires_at <= self._clock():
            with self._lock:
                self.rejected_requests += 1
            return None
        return token.client_id

    def _verify(self, assertion: str, *, token_url: str) -> str:
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenError("invalid_client", "the client assertion is not a JWT", 401) from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in _ALGORITHMS:
            raise TokenError("invalid_client", f"alg {alg!r} is not RS384 or ES384", 401)
        if not kid:
            raise TokenError("invalid_client", "the assertion header has no kid", 401)
        client = self._clients.get(str(unverified.get("iss")))
        if client is None:
            raise TokenError("invalid_client", "unknown client (iss)", 401)
        jku = header.get("jku")
        if jku is not None and jku != client.jwks_url:
            raise TokenError("invalid_client", "jku does not match the registered JWKS URL", 401)
        public_key = _find_key(client, kid, alg)
        try:
            claims = jwt.decode(
                assertion,
                public_key,
                algorithms=[alg],
                audience=token_url,
                issuer=client.client_id,
                leeway=_LEEWAY,
                options={"require": ["exp", "iss", "sub", "aud", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenError("invalid_client", f"the assertion is not valid ({exc})", 401) from None
        if claims["sub"] != client.client_id:
            raise TokenError("invalid_client", "sub must equal iss (the client id)", 401)
        now = self._clock()
        if claims["exp"] > now + 300 + _LEEWAY:
            raise TokenError("invalid_client", "exp is more than 5 minutes ahead", 401)
        with self._lock:
            self._seen_jti = {j: exp for j, exp in self._seen_jti.items() if exp > now - _LEEWAY}
            if claims["jti"] in self._seen_jti:
                raise TokenError("invalid_client", "jti was already used", 401)
            self._seen_jti[claims["jti"]] = float(claims["exp"])
        return client.client_id


def _find_key(client: ClientRegistration, kid: str, alg: str) -> Any:
    for key in client.jwks.get("keys") or []:
        if (
            isinstance(key, Mapping)
            and key.get("kid") == kid
            and key.get("kty") == _ALGORITHMS[alg]
        ):
            try:
                return jwt.PyJWK(dict(key), algorithm=alg).key
            except jwt.PyJWTError:
                break
    raise TokenError("invalid_client", f"no usable {alg} key with kid {kid!r} is registered", 401)
