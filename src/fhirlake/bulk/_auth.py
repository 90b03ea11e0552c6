"""Authentication as ``httpx.Auth`` flows: a static bearer token, or SMART Backend Services.

:class:`SmartBackendAuth` implements the client-confidential-asymmetric profile: it finds the
token endpoint (``[base]/.well-known/smart-configuration``, else the CapabilityStatement
``oauth-uris`` extension), signs a short-lived JWT assertion (RS384/ES384, ``kid``, optional
``jku``, ``exp`` at most 5 minutes ahead, a fresh ``jti``), trades it for an access token,
reuses the token and renews it shortly before it expires, and on a 401 gets a new token and
retries the request once.

The flow does its HTTP through the client that uses it (it yields the discovery and token
requests), so it shares the client's transport, timeouts and test seams. The token and the
key never appear in a repr, a log or an error message.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import httpx

from fhirlake.bulk._exceptions import AuthError
from fhirlake.bulk._keys import SigningKey

__all__ = ["BearerTokenAuth", "SmartBackendAuth"]

_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_MAX_ASSERTION_LIFETIME = 300.0

_Flow = Generator[httpx.Request, httpx.Response, str]


class BearerTokenAuth(httpx.Auth):
    """A static bearer token (e.g. issued out of band); it cannot be renewed."""

    def __init__(self, token: str) -> None:
        if not token:
            raise AuthError("the bearer token is empty")
        self._token = token

    def __repr__(self) -> str:
        return "BearerTokenAuth(token=<hidden>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


class SmartBackendAuth(httpx.Auth):
    """SMART Backend Services (client-confidential-asymmetric) as an ``httpx.Auth``.

    Example::

        auth = SmartBackendAuth(client_id="fhirlake", key=SigningKey.from_env("HOSP_KEY"),
                                fhir_base_url="https://fhir.example.org/r4",
                                scope="system/*.read")
        httpx.get("https://fhir.example.org/r4/Patient/$export", auth=auth, ...)

    ``clock`` is the wall clock in epoch seconds (injected in tests). A token is renewed once
    less than ``renew_margin`` seconds (at most a fifth of its lifetime) remain.
    """

    def __init__(
        self,
        *,
        client_id: str,
        key: SigningKey,
        scope: str = "system/*.read",
        fhir_base_url: str | None = None,
        token_url: str | None = None,
        jku: str | None = None,
        assertion_lifetime: float = 240.0,
        renew_margin: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not client_id:
            raise AuthError("SMART Backend Services needs a client_id")
        if fhir_base_url is None and token_url is None:
            raise AuthError("SMART Backend Services needs the FHIR base URL or the token URL")
        if not 0 < assertion_lifetime <= _MAX_ASSERTION_LIFETIME:
            raise AuthError("the assertion lifetime must be between 0 and 300 seconds")
        self.client_id = client_id
        self.scope = scope
        self.token_url = token_url
        self._key = key
        self._fhir_base_url = fhir_base_url
        self._jku = jku
        self._assertion_lifetime = assertion_lifetime
        self._renew_margin = renew_margin
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lifetime = 0.0
        self.tokens_issued = 0
        self._thread_lock = threading.Lock()
        self._async_lock: asyncio.Lock | None = None
        self._async_lock_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"SmartBackendAuth(client_id={self.client_id!r}, key={self._key!r}, token=<hidden>)"

    # ------------------------------------------------------------------ pure parts

    def _valid_token(self, *, stale: str | None) -> str | None:
        if self._token is None or self._token == stale:
            return None
        margin = min(self._renew_margin, self._lifetime / 5)
        return self._token if self._clock() < self._expires_at - margin else None

    def client_assertion(self, token_url: str) -> str:
        """A freshly signed assertion for ``token_url`` (``exp`` ≤ 5 minutes, a unique ``jti``)."""
        now = int(self._clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": token_url,
            "iat": now,
            "exp": now + int(self._assertion_lifetime),
            "jti": uuid.uuid4().hex,
        }
        return self._key.sign(claims, jku=self._jku)

    def _token_request(self, token_url: str) -> httpx.Request:
        form = {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_assertion_type": _ASSERTION_TYPE,
            "client_assertion": self.client_assertion(token_url),
        }
        return httpx.Request("POST", token_url, data=form, headers={"Accept": "application/json"})

    def _accept_token(self, response: httpx.Response, token_url: str) -> str:
        data = _json_object(response)
        if response.status_code != 200:
            error = data.get("error", "no OAuth error code") if data else "no OAuth error code"
            detail = data.get("error_description") if data else None
            reason = f"{error}: {detail}" if detail else str(error)
            raise AuthError(
                f"{token_url}: the token request was refused ({response.status_code}): {reason}",
                url=token_url,
                status_code=response.status_code,
            )
        token = data.get("access_token") if data else None
        if not isinstance(token, str) or not token:
            raise AuthError(f"{token_url}: the token response holds no access_token", url=token_url)
        token_type = str(data.get("token_type", "bearer")) if data else "bearer"
        if token_type.lower() != "bearer":
            raise AuthError(f"{token_url}: token_type is {token_type!r}, not bearer", url=token_url)
        expires_in = data.get("expires_in", 300) if data else 300
        lifetime = (
            float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else 300.0
        )
        self._token, self._lifetime = token, lifetime
        self._expires_at = self._clock() + lifetime
        self.tokens_issued += 1
        return token

    def _token_flow(self, *, stale: str | None) -> _Flow:
        """Yield the discovery and token requests needed for a valid token; return the token."""
        token = self._valid_token(stale=stale)
        if token is not None:
            return token
        if self.token_url is None:
            self.token_url = yield from self._discover()
        response = yield self._token_request(self.token_url)
        return self._accept_token(response, self.token_url)

    def _discover(self) -> _Flow:
        assert self._fhir_base_url is not None  # checked in __init__
        base = self._fhir_base_url.rstrip("/")
        well_known = f"{base}/.well-known/smart-configuration"
        response = yield httpx.Request("GET", well_known, headers={"Accept": "application/json"})
        config = _json_object(response) if response.status_code == 200 else None
        if config and isinstance(config.get("token_endpoint"), str):
            algs = config.get("token_endpoint_auth_signing_alg_values_supported")
            if isinstance(algs, list) and algs and self._key.algorithm not in algs:
                raise AuthError(
                    f"{well_known}: the server accepts assertions signed with "
                    f"{', '.join(map(str, algs))}, not {self._key.algorithm}",
                    url=well_known,
                )
            return str(config["token_endpoint"])
        metadata = f"{base}/metadata"
        response = yield httpx.Request("GET", metadata, headers={"Accept": "application/fhir+json"})
        token_url = _token_url_from_capabilities(_json_object(response))
        if token_url is None:
            raise AuthError(
                f"{base}: no token endpoint in .well-known/smart-configuration "
                "nor in the CapabilityStatement oauth-uris extension",
                url=base,
            )
        return token_url

    # ------------------------------------------------------------------ httpx flows

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        with self._thread_lock:
            token = yield from _drive_sync(self._token_flow(stale=None))
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        with self._thread_lock:
            token = yield from _drive_sync(self._token_flow(stale=token))
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token: str | None = None
        for attempt in range(2):  # a 401 gets a new token and one retry
            async with self._lock():
                flow = self._token_flow(stale=token if attempt else None)
                try:
                    auth_request = next(flow)
                    while True:
                        auth_response = yield auth_request
                        await auth_response.aread()
                        auth_request = flow.send(auth_response)
                except StopIteration as stop:
                    token = stop.value
            request.headers["Authorization"] = f"Bearer {token}"
            response = yield request
            if response.status_code != 401:
                return

    def _lock(self) -> asyncio.Lock:
        """One asyncio lock per event loop, so the auth can outlive an ``asyncio.run``."""
        loop = asyncio.get_running_loop()
        if self._async_lock is None or self._async_lock_loop is not loop:
            self._async_lock, self._async_lock_loop = asyncio.Lock(), loop
        return self._async_lock


def _drive_sync(flow: _Flow) -> _Flow:
    """Run a token flow inside a sync auth flow, reading each auth response before using it."""
    try:
        request = next(flow)
        while True:
            response = yield request
            response.read()
            request = flow.send(response)
    except StopIteration as stop:
        token: str = stop.value
        return token


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = json.loads(response.content)
    except (ValueError, UnicodeDecodeError, httpx.ResponseNotRead):
        return None
    return data if isinstance(data, dict) else None


def _token_url_from_capabilities(statement: dict[str, Any] | None) -> str | None:
    """The ``token`` URI of the oauth-uris extension in ``rest[].security``, if any."""
    if not statement:
        return None
    for rest in statement.get("rest") or ():
        security = rest.get("security") if isinstance(rest, dict) else None
        for extension in (security or {}).get("extension") or ():
            if not isinstance(extension, dict) or extension.get("url") != _OAUTH_URIS:
                continue
            for inner in extension.get("extension") or ():
                if isinstance(inner, dict) and inner.get("url") == "token":
                    uri = inner.get("valueUri") or inner.get("valueUrl")
                    if isinstance(uri, str):
                        return uri
    return None
