"""Private signing keys for SMART Backend Services, loaded from JWK or PEM files or variables.

A :class:`SigningKey` never shows its key material: ``repr`` names only the key id and
algorithm, and errors name the file or variable, never its content.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from fhirlake.bulk._exceptions import AuthError

__all__ = ["Algorithm", "SigningKey"]

Algorithm = Literal["RS384", "ES384"]
_PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class SigningKey:
    """A private RSA or EC P-384 key that signs client assertions with RS384 or ES384.

    The algorithm follows from the key (RSA → RS384, EC P-384 → ES384). ``kid`` defaults to
    the RFC 7638 thumbprint of the public key, so a PEM key needs no separate id.

    Example::

        key = SigningKey.from_file(Path("~/keys/hospital-a.jwk").expanduser())
        key.public_jwk()   # what to register with the server (public part only)
    """

    def __init__(self, key: _PrivateKey, *, kid: str | None = None, source: str = "key") -> None:
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < 2048:
                raise AuthError(f"{source}: an RSA key must have at least 2048 bits")
            self.algorithm: Algorithm = "RS384"
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            if not isinstance(key.curve, ec.SECP384R1):
                raise AuthError(
                    f"{source}: ES384 needs an EC key on curve P-384, not {key.curve.name}"
                )
            self.algorithm = "ES384"
        else:  # pragma: no cover - guarded by the type, kept for callers without mypy
            raise AuthError(f"{source}: only RSA and EC P-384 private keys can sign (RS384/ES384)")
        self._key = key
        self.kid = kid or _thumbprint(self.public_jwk(with_kid=False))

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r}, algorithm={self.algorithm!r})"

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pem(
        cls,
        data: bytes,
        *,
        kid: str | None = None,
        password: bytes | None = None,
        source: str = "PEM key",
    ) -> SigningKey:
        """Load a PEM private key (PKCS#8 or traditional), optionally encrypted."""
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except (ValueError, TypeError) as exc:
            raise AuthError(
                f"{source}: not a readable PEM private key (wrong format or password)"
            ) from exc
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise AuthError(f"{source}: only RSA and EC P-384 private keys can sign (RS384/ES384)")
        return cls(key, kid=kid, source=source)

    @classmethod
    def from_jwk(
        cls, data: str | bytes | Mapping[str, Any], *, kid: str | None = None, source: str = "JWK"
    ) -> SigningKey:
        """Load a private JWK, or pick one from a JWKS (by ``kid``, or its only private key)."""
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise AuthError(f"{source}: not valid JSON") from exc
        if not isinstance(data, Mapping):
            raise AuthError(f"{source}: a JWK must be a JSON object")
        jwk_data = _pick_jwk(data, kid=kid, source=source)
        alg = jwk_data.get("alg")
        if alg is not None and alg not in ("RS384", "ES384"):
            raise AuthError(
                f"{source}: the key is for {alg}; SMART Backend Services needs RS384 or ES384"
            )
        if "d" not in jwk_data:
            raise AuthError(f"{source}: the JWK holds only a public key; a private key is needed")
        try:
            loaded = jwt.PyJWK(dict(jwk_data)).key
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, KeyError) as exc:
            raise AuthError(f"{source}: not a usable private JWK") from exc
        if not isinstance(loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise AuthError(f"{source}: only RSA and EC P-384 private keys can sign (RS384/ES384)")
        return cls(loaded, kid=kid or jwk_data.get("kid"), source=source)

    @classmethod
    def from_text(
        cls, text: str | bytes, *, kid: str | None = None, source: str = "key"
    ) -> SigningKey:
        """Load a key given as JWK/JWKS JSON or PEM text (told apart by the first character)."""
        raw = text.encode() if isinstance(text, str) else text
        if raw.lstrip().startswith(b"{"):
            return cls.from_jwk(raw, kid=kid, source=source)
        return cls.from_pem(raw, kid=kid, source=source)

    @classmethod
    def from_file(cls, path: Path, *, kid: str | None = None) -> SigningKey:
        """Load a key from a JWK, JWKS or PEM file."""
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise AuthError(f"key file {path}: cannot be read ({exc.strerror})") from exc
        return cls.from_text(raw, kid=kid, source=f"key file {path}")

    @classmethod
    def from_env(
        cls, name: str, *, kid: str | None = None, environ: Mapping[str, str] | None = None
    ) -> SigningKey:
        """Load a key (JWK JSON or PEM text) from the environment variable ``name``."""
        env = os.environ if environ is None else environ
        value = env.get(name)
        if not value:
            raise AuthError(
                f"environment variable {name} is not set (it should hold the private key)"
            )
        return cls.from_text(value, kid=kid, source=f"environment variable {name}")

    # ------------------------------------------------------------------ use

    def sign(self, claims: Mapping[str, Any], *, jku: str | None = None) -> str:
        """A compact JWS of ``claims`` with the header ``alg``, ``kid``, ``typ: JWT`` (and ``jku``)."""
        headers: dict[str, Any] = {"kid": self.kid, "typ": "JWT"}
        if jku:
            headers["jku"] = jku
        return jwt.encode(dict(claims), self._key, algorithm=self.algorithm, headers=headers)

    def public_jwk(self, *, with_kid: bool = True) -> dict[str, Any]:
        """The public half as a JWK (with ``kid``, ``alg`` and ``use``), to register with a server."""
        public = self._key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk_data = dict(RSAAlgorithm.to_jwk(public, as_dict=True))
        else:
            jwk_data = dict(ECAlgorithm.to_jwk(public, as_dict=True))
        if with_kid:
            jwk_data.update(kid=self.kid, alg=self.algorithm, use="sig")
        return jwk_data

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (for writing a throwaway key in tests)."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def generate(cls, algorithm: Algorithm, *, kid: str | None = None) -> SigningKey:
        """A new random key for ``algorithm`` (RSA 2048 for RS384, P-384 for ES384)."""
        key: _PrivateKey
        if algorithm == "RS384":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm == "ES384":
            key = ec.generate_private_key(ec.SECP384R1())
        else:
            raise AuthError(f"cannot generate a key for {algorithm!r}: use RS384 or ES384")
        return cls(key, kid=kid)


def _pick_jwk(data: Mapping[str, Any], *, kid: str | None, source: str) -> Mapping[str, Any]:
    keys = data.get("keys")
    if keys is None:
        return data
    if not isinstance(keys, list):
        raise AuthError(f"{source}: 'keys' must be an array")
    candidates = [k for k in keys if isinstance(k, Mapping) and "d" in k]
    if kid is not None:
        candidates = [k for k in candidates if k.get("kid") == kid]
    if len(candidates) != 1:
        which = f"with kid {kid!r}" if kid else "(name one with kid)"
        raise AuthError(
            f"{source}: found {len(candidates)} private keys {which}; expected exactly one"
        )
    return candidates[0]


def _thumbprint(public_jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url)."""
    members = ("e", "kty", "n") if public_jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps(
        {m: public_jwk[m] for m in members}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
