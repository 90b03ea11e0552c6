"""The hash chain: canonical JSON, entry digests, and checking a sequence of entries.

Each entry is a JSON object with ``seq`` (0 for the genesis entry, then +1), ``prev`` (the
previous entry's ``hash``; 64 zeros for the genesis) and ``hash``: the SHA-256 of the entry's
canonical JSON without ``hash`` (sorted keys, no spaces, UTF-8). With a key (the environment's
``FHIRLAKE_AUDIT_KEY``) the digest is an HMAC-SHA256 instead, so someone who can write the file
but does not hold the key cannot recompute a consistent chain after editing it.

>>> first = seal({"seq": 0, "event": "genesis"}, GENESIS_PREV)
>>> check_entry(first, GENESIS_PREV, 0) is None
True
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any

import orjson

from fhirlake.audit.errors import AuditKeyError

__all__ = ["GENESIS_PREV", "KEY_ENV", "audit_key", "canonical", "check_entry", "digest", "seal"]

GENESIS_PREV = "0" * 64
KEY_ENV = "FHIRLAKE_AUDIT_KEY"
_MIN_KEY_BYTES = 16


def audit_key() -> bytes | None:
    """The chain key from ``$FHIRLAKE_AUDIT_KEY`` (at least 16 bytes), or None for a plain chain."""
    value = os.environ.get(KEY_ENV)
    if not value:
        return None
    key = value.encode("utf-8")
    if len(key) < _MIN_KEY_BYTES:
        raise AuditKeyError(f"{KEY_ENV} must hold at least {_MIN_KEY_BYTES} bytes")
    return key


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The canonical JSON bytes the digest is computed over (``hash`` left out)."""
    body = {name: value for name, value in entry.items() if name != "hash"}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def digest(entry: Mapping[str, Any], key: bytes | None = None) -> str:
    """The hex digest of an entry: SHA-256, or HMAC-SHA256 under ``key``."""
    data = canonical(entry)
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def seal(entry: Mapping[str, Any], prev: str, key: bytes | None = None) -> dict[str, Any]:
    """The entry with ``prev`` set and its ``hash`` computed."""
    sealed = {**entry, "prev": prev}
    sealed["hash"] = digest(sealed, key)
    return sealed


def check_entry(entry: Any, prev: str, seq: int, key: bytes | None = None) -> str | None:
    """Why ``entry`` cannot follow an entry hashed ``prev`` at position ``seq``; None if it can."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    if entry.get("seq") != seq:
        return f"expected seq {seq}, found {entry.get('seq')!r} (an entry was removed, inserted or moved)"
    if entry.get("prev") != prev:
        return "prev does not match the previous entry's hash (an entry was removed or reordered)"
    stored = entry.get("hash")
    if not isinstance(stored, str) or not hmac.compare_digest(stored, digest(entry, key)):
        return "hash does not match the entry's content (the entry was edited)"
    return None
