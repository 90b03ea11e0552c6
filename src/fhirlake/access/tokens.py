"""Static bearer tokens: minted here, stored in the policy only as their SHA-256.

A token is 32 random bytes (URL-safe base64, with an ``flk_`` prefix so a leaked one is easy to
recognise in a secret scanner). The server hashes what a client presents and compares it with
every stored hash in constant time, so neither the policy file nor the timing gives a token away.

>>> token = mint_token()
>>> token.startswith("flk_") and len(token_sha256(token)) == 64
True
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import TypeVar

__all__ = ["TOKEN_PREFIX", "match_token", "mint_token", "token_sha256"]

TOKEN_PREFIX = "flk_"
_T = TypeVar("_T")


def mint_token() -> str:
    """A new random bearer token (shown once to whoever configures the client)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    """The hex SHA-256 of a token, as written in the policy's ``token_sha256``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def match_token(token: str, by_hash: Mapping[str, _T]) -> _T | None:
    """The entry whose hash is the token's, compared with every stored hash in constant time."""
    presented = token_sha256(token).encode("ascii")
    found: _T | None = None
    for digest, value in by_hash.items():
        if hmac.compare_digest(presented, digest.encode("ascii")):
            found = value
    return found
