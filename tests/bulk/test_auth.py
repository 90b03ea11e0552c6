"""SMART Backend Services: keys, assertions, discovery, token reuse and renewal (MockTransport)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from fhirlake.bulk import AuthError, BearerTokenAuth, SigningKey, SmartBackendAuth

BASE = "https://fhir.example.org/r4"
TOKEN_URL = "https://auth.example.org/token"


@pytest.fixture(scope="module", params=["RS384", "ES384"])
def key(request: pytest.FixtureRequest) -> SigningKey:
    return SigningKey.generate(request.param)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class FakeAuthServer:
    """A token endpoint plus a protected resource, as a MockTransport handler."""

    def __init__(self, key: SigningKey, *, well_known: bool = True, ttl: int = 300) -> None:
        self.public = jwt.PyJWK(key.public_jwk()).key
        self.algorithm = key.algorithm
        self.well_known = well_known
        self.ttl = ttl
        self.assertions: list[dict[str, Any]] = []
        self.headers: list[dict[str, Any]] = []
        self.valid_tokens: set[str] = set()
        self.resource_calls: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/.well-known/smart-configuration"):
            if not self.well_known:
                return httpx.Response(404)
            return httpx.Response(
                200,
                json={
                    "token_endpoint": TOKEN_URL,
                    "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
                },
            )
        if request.url.path.endswith("/metadata"):
            ext = {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": "token", "valueUri": TOKEN_URL}],
            }
            return httpx.Response(
                200,
                json={
                    "resourceType": "CapabilityStatement",
                    "rest": [{"security": {"extension": [ext]}}],
                },
            )
        if str(request.url) == TOKEN_URL:
            form = dict(httpx.QueryParams(request.content.decode()))
            assertion = form["client_assertion"]
            self.headers.append(jwt.get_unverified_header(assertion))
            claims = jwt.decode(  # signature and audience checked; times follow the test's clock
                assertion,
                self.public,
                algorithms=[self.algorithm],
                audience=TOKEN_URL,
                options={"verify_exp": False, "verify_iat": False},
            )
            self.assertions.append({**claims, "_form": form})
            token = f"token-{len(self.assertions)}"
            self.valid_tokens.add(token)
            return httpx.Response(
                200, json={"access_token": token, "token_type": "bearer", "expires_in": self.ttl}
            )
        authorization = request.headers.get("Authorization")
        self.resource_calls.append(authorization)
        if authorization is None or authorization.removeprefix("Bearer ") not in self.valid_tokens:
            return httpx.Response(401)
        return httpx.Response(200, json={"ok": True})


def make_auth(key: SigningKey, clock: Clock, **kwargs: Any) -> SmartBackendAuth:
    return SmartBackendAuth(
        client_id="fhirlake-test", key=key, fhir_base_url=BASE, clock=clock, **kwargs
    )


# --------------------------------------------------------------------------- keys


def test_keys_load_from_pem_jwk_and_environment_without_showing_material(
    key: SigningKey, tmp_path: Path
) -> None:
    pem = key.private_pem()
    private_key = serialization.load_pem_private_key(pem, password=None)
    algorithm = RSAAlgorithm if key.algorithm == "RS384" else ECAlgorithm
    private_jwk = dict(algorithm.to_jwk(private_key, as_dict=True))
    private_jwk["kid"] = "k1"
    (tmp_path / "key.pem").write_bytes(pem)
    (tmp_path / "key.jwks").write_text(json.dumps({"keys": [private_jwk]}))

    from_pem = SigningKey.from_file(tmp_path / "key.pem")
    from_jwks = SigningKey.from_file(tmp_path / "key.jwks")
    from_env = SigningKey.from_env(
        "HOSPITAL_KEY", environ={"HOSPITAL_KEY": pem.decode()}, kid="env-kid"
    )

    assert from_pem.kid == key.kid  # the RFC 7638 thumbprint
    assert from_jwks.kid == "k1"
    assert from_env.kid == "env-kid"
    assert {k.algorithm for k in (from_pem, from_jwks, from_env)} == {key.algorithm}
    for loaded in (from_pem, from_jwks, from_env):
        assert "PRIVATE" not in repr(loaded)
        assert private_jwk["d"] not in repr(loaded)


def test_a_p256_key_is_refused_for_es384(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(AuthError, match="curve P-384"):
        SigningKey.from_pem(pem)


def test_unreadable_keys_name_the_source_not_the_content(tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text(
        "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"
    )
    with pytest.raises(AuthError, match=r"key file .*bad.pem: not a readable PEM") as info:
        SigningKey.from_file(tmp_path / "bad.pem")
    assert "not a key" not in str(info.value)
    with pytest.raises(AuthError, match="environment variable NOPE is not set"):
        SigningKey.from_env("NOPE", environ={})
    public_only = SigningKey.generate("ES384").public_jwk()
    with pytest.raises(AuthError, match="only a public key"):
        SigningKey.from_jwk(public_only)


# --------------------------------------------------------------------------- assertions and tokens


def test_assertion_has_the_claims_and_header_the_spec_requires(key: SigningKey) -> None:
    clock, server = Clock(), FakeAuthServer(key)
    auth = make_auth(
        key, clock, jku="https://client.example.org/jwks.json", scope="system/Patient.rs"
    )
    with httpx.Client(transport=httpx.MockTransport(server), auth=auth) as client:
        assert client.get(f"{BASE}/Patient/1").status_code == 200
    claims, header = server.assertions[0], server.headers[0]
    assert header == {
        "alg": key.algorithm,
        "kid": key.kid,
        "typ": "JWT",
        "jku": "https://client.example.org/jwks.json",
    }
    assert claims["iss"] == claims["sub"] == "fhirlake-test"
    assert claims["aud"] == TOKEN_URL
    assert 0 < claims["exp"] - clock.now <= 300
    assert claims["_form"]["grant_type"] == "client_credentials"
    assert claims["_form"]["scope"] == "system/Patient.rs"
    assert (
        claims["_form"]["client_assertion_type"]
        == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    )


def test_every_assertion_has_a_fresh_jti(key: SigningKey) -> None:
    auth = make_auth(key, Clock(), token_url=TOKEN_URL)
    ids = {
        jwt.decode(auth.client_assertion(TOKEN_URL), options={"verify_signature": False})["jti"]
        for _ in range(20)
    }
    assert len(ids) == 20


def test_token_is_reused_then_renewed_shortly_before_expiry(key: SigningKey) -> None:
    clock, server = Clock(), FakeAuthServer(key, ttl=300)
    auth = make_auth(key, clock, renew_margin=30)
    with httpx.Client(transport=httpx.MockTransport(server), auth=auth) as client:
        client.get(f"{BASE}/a")
        clock.now += 200
        client.get(f"{BASE}/b")
        assert len(server.assertions) == 1  # reused
        clock.now += 75  # 25 s left: inside the renewal margin
        client.get(f"{BASE}/c")
    assert len(server.assertions) == 2
    assert server.resource_calls == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]


def test_a_401_gets_a_new_token_and_one_retry(key: SigningKey) -> None:
    clock, server = Clock(), FakeAuthServer(key)
    auth = make_auth(key, clock)
    with httpx.Client(transport=httpx.MockTransport(server), auth=auth) as client:
        client.get(f"{BASE}/a")
        server.valid_tokens.clear()  # the server forgets the token early
        response = client.get(f"{BASE}/b")
    assert response.status_code == 200
    assert server.resource_calls == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]


def test_a_second_401_is_returned_not_looped(key: SigningKey) -> None:
    server = FakeAuthServer(key)
    auth = make_auth(key, Clock())

    def always_401(request: httpx.Request) -> httpx.Response:
        response = server(request)
        is_resource = request.url.path.startswith("/r4/") and "well-known" not in request.url.path
        return httpx.Response(401) if is_resource else response

    with httpx.Client(transport=httpx.MockTransport(always_401), auth=auth) as client:
        assert client.get(f"{BASE}/a").status_code == 401
    assert len(server.assertions) == 2


def test_discovery_falls_back_to_the_capability_statement(key: SigningKey) -> None:
    server = FakeAuthServer(key, well_known=False)
    auth = make_auth(key, Clock())
    with httpx.Client(transport=httpx.MockTransport(server), auth=auth) as client:
        assert client.get(f"{BASE}/a").status_code == 200
    assert auth.token_url == TOKEN_URL


def test_no_token_endpoint_anywhere_is_a_clear_error(key: SigningKey) -> None:
    auth = make_auth(key, Clock())
    transport = httpx.MockTransport(lambda request: httpx.Response(404))
    with (
        httpx.Client(transport=transport, auth=auth) as client,
        pytest.raises(AuthError, match="no token endpoint"),
    ):
        client.get(f"{BASE}/a")


def test_a_refused_token_request_reports_the_oauth_error_without_the_assertion(
    key: SigningKey,
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"error": "invalid_client", "error_description": "unknown kid"}
        )

    auth = make_auth(key, Clock(), token_url=TOKEN_URL)
    with (
        httpx.Client(transport=httpx.MockTransport(refuse), auth=auth) as client,
        pytest.raises(AuthError, match=r"refused \(401\): invalid_client: unknown kid") as info,
    ):
        client.get(f"{BASE}/a")
    assert "eyJ" not in str(info.value)  # no JWT in the message


def test_auth_objects_never_show_secrets(key: SigningKey) -> None:
    assert "s3cret" not in repr(BearerTokenAuth("s3cret"))
    auth = make_auth(key, Clock())
    assert "token=<hidden>" in repr(auth)
    with pytest.raises(AuthError, match="between 0 and 300"):
        make_auth(key, Clock(), assertion_lifetime=600)
