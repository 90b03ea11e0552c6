"""OAuth 2 access tokens as JWTs: signature against the issuer's JWKS, issuer, audience, expiry.

The key set comes from a local file or from the ``jwks_url`` (fetched with httpx, cached for
``cache_seconds``; an unknown ``kid`` refetches at most once per ``_REFETCH_SECONDS`` so a key
rotation is picked up without letting forged ``kid`` values hammer the identity provider).
Only asymmetric algorithms are accepted (never ``none``, never HMAC with a public key).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from fhirlake.access.errors import AccessDenied
from fhirlake.access.policy import JwtSettings

__all__ = ["JwtValidator"]

_REFETCH_SECONDS = 30.0


class JwtValidator:
    """Validates JWTs under one policy's ``jwt`` settings; safe to share between requests."""

    def __init__(
        self,
        settings: JwtSettings,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._client = client
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def claims(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token``; :class:`AccessDenied` (level ``identity``) otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AccessDenied("identity", "the bearer token is not a JWT") from exc
        key = await self._key(str(header.get("kid", "")))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=list(self.settings.algorithms),
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise AccessDenied("identity", f"JWT rejected: {exc}") from exc
        return claims

    async def _key(self, kid: str) -> jwt.PyJWK:
        async with self._lock:
            age = self._clock() - self._fetched_at
            stale = age > self.settings.cache_seconds
            if stale or (kid not in self._keys and age > _REFETCH_SECONDS):
                self._keys = await self._load()
                self._fetched_at = self._clock()
        if kid in self._keys:
            return self._keys[kid]
        if not kid and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        raise AccessDenied("identity", "the JWT is signed with a key the issuer does not publish")

    async def _load(self) -> dict[str, jwt.PyJWK]:
        try:
            if self.settings.jwks_file is not None:
                document = json.loads(self.settings.jwks_file.read_text(encoding="utf-8"))
            else:
                document = await self._fetch(str(self.settings.jwks_url))
            keys = jwt.PyJWKSet.from_dict(document).keys
        except (OSError, ValueError, httpx.HTTPError, jwt.PyJWTError) as exc:
            raise AccessDenied("identity", f"the JWKS cannot be loaded ({type(exc).__name__})") from exc
        return {str(key.key_id or ""): key for key in keys}

    async def _fetch(self, url: str) -> Any:
        if self._client is not None:
            response = await self._client.get(url)
        else:
            async with httpx.AsyncClient(timeout=10.0) as client:
                response = await client.get(url)
        response.raise_for_status()
        return response.json()
