"""Identity: static tokens by hash, JWTs against a JWKS served on loopback, the SDK verifier."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from fhirlake.access import (
    AccessDenied,
    JwtSettings,
    PolicyTokenVerifier,
    match_token,
    mint_token,
    parse_policy,
    token_sha256,
)
from fhirlake.access.jwks import JwtValidator

ISSUER = "https://idp.test/realms/research"
AUDIENCE = "fhirlake-mcp"


def test_a_minted_token_matches_only_its_own_hash() -> None:
    first, second = mint_token(), mint_token()
    assert first != second and first.startswith("flk_") and len(first) > 40
    table = {token_sha256(first): "a", token_sha256(second): "b"}
    assert match_token(first, table) == "a" and match_token(second, table) == "b"
    assert match_token(first + "x", table) is None
    assert first not in json.dumps(table)


class Keys:
    """An RSA signing key and its JWKS, as an identity provider would publish them."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        self.jwk = {**public, "kid": kid, "use": "sig", "alg": "RS256"}

    def sign(self, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, "sub": "svc-registry", **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.private, algorithm="RS256", headers={"kid": self.kid})


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys("k1")


@pytest.fixture
def jwks_server(keys: Keys) -> Iterator[tuple[str, list[int], dict[str, Any]]]:
    """A JWKS endpoint on loopback; yields its URL, a request counter and the served document."""
    hits: list[int] = []
    document: dict[str, Any] = {"keys": [keys.jwk]}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(1)
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/certs", hits, document
    finally:
        server.shutdown()
        server.server_close()


def settings(url: str | None = None, file: Path | None = None) -> JwtSettings:
    return JwtSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url=url, jwks_file=file, cache_seconds=300)


@pytest.mark.live
def test_a_valid_jwt_is_accepted_and_the_jwks_is_cached(keys: Keys, jwks_server: Any) -> None:
    url, hits, _ = jwks_server
    validator = JwtValidator(settings(url))

    async def run() -> list[dict[str, Any]]:
        return [await validator.claims(keys.sign()) for _ in range(5)]

    claims = asyncio.run(run())
    assert claims[0]["sub"] == "svc-registry" and claims[0]["aud"] == AUDIENCE
    assert len(hits) == 1


@pytest.mark.live
def test_a_rotated_key_is_fetched_once_then_forged_kids_do_not_refetch(keys: Keys, jwks_server: Any) -> None:
    url, hits, document = jwks_server
    now = [0.0]
    validator = JwtValidator(settings(url), clock=lambda: now[0])
    rotated = Keys("k2")

    async def run() -> None:
        await validator.claims(keys.sign())
        document["keys"] = [keys.jwk, rotated.jwk]
        now[0] = 60.0
        assert (await validator.claims(rotated.sign()))["sub"] == "svc-registry"
        forged = Keys("k3")
        for _ in range(3):
            with pytest.raises(AccessDenied, match="key the issuer does not publish"):
                await validator.claims(forged.sign())

    asyncio.run(run())
    assert len(hits) == 2


BAD_TOKENS = [
    ("wrong audience", {"aud": "someone-else"}, "Audience"),
    ("wrong issuer", {"iss": "https://evil.test"}, "issuer"),
    ("expired", {"exp": int(time.time()) - 3600}, "expired"),
    ("no expiry", {"exp": None}, "exp"),
]


@pytest.mark.parametrize(("case", "claims", "reason"), BAD_TOKENS, ids=[b[0] for b in BAD_TOKENS])
def test_a_jwt_with_bad_claims_is_refused(keys: Keys, tmp_path: Path, case: str, claims: dict[str, Any], reason: str) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [keys.jwk]}))
    validator = JwtValidator(settings(file=path))
    with pytest.raises(AccessDenied, match=reason):
        asyncio.run(validator.claims(keys.sign(**claims)))


def test_forged_signatures_and_algorithms_are_refused(keys: Keys, tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [keys.jwk]}))
    validator = JwtValidator(settings(file=path))
    impostor = Keys("k1")  # same kid, another private key
    unsigned = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60}, None, algorithm="none", headers={"kid": "k1"})
    hmac_signed = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60}, "a-shared-secret-of-32-bytes-min!", algorithm="HS256", headers={"kid": "k1"})
    for token in (impostor.sign(), unsigned, hmac_signed, "not.a.jwt"):
        with pytest.raises(AccessDenied):
            asyncio.run(validator.claims(token))


def test_the_verifier_maps_tokens_and_jwts_to_policy_clients(keys: Keys, tmp_path: Path) -> None:
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [keys.jwk]}))
    token = mint_token()
    refused: list[str] = []
    policy = parse_policy(
        {
            "jwt": {"issuer": ISSUER, "audience": AUDIENCE, "jwks_file": "jwks.json"},
            "clients": [
                {"id": "static", "identity": {"token_sha256": token_sha256(token)}, "tools": ["count_patients"]},
                {"id": "registry", "identity": {"jwt": {"subject": "svc-registry", "claims": {"groups": "registry"}}}, "tools": "all"},
            ],
        },
        base=tmp_path,
    )
    verifier = PolicyTokenVerifier(policy, on_refused=refused.append)

    async def run() -> None:
        static = await verifier.verify_token(token)
        assert static is not None and static.client_id == "static" and static.scopes == ["count_patients"]
        assert static.token == ""  # the secret does not travel further
        oauth = await verifier.verify_token(keys.sign(groups=["staff", "registry"]))
        assert oauth is not None and oauth.client_id == "registry" and oauth.scopes == ["*"] and oauth.subject == "svc-registry"
        assert await verifier.verify_token(keys.sign(groups=["staff"])) is None
        assert await verifier.verify_token(keys.sign(aud="other")) is None
        assert await verifier.verify_token(mint_token()) is None

    asyncio.run(run())
    assert len(refused) == 3 and "no client of the policy matches" in refused[0]
    assert all(token not in reason for reason in refused)
