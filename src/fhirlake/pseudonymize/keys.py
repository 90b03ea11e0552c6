"""The secret key and the keyed pseudonyms derived from it (HMAC-SHA256).

Every pseudonym is ``HMAC-SHA256(key, domain || 0x00 || value)``: the same key and value give
the same pseudonym in every run (so joins and re-runs are stable), and without the key nobody
can compute it, not even for a guessed value (so a pseudonymised SSN cannot be confirmed by
hashing candidate SSNs). The domain separates uses: a resource id and an MRN with the same
characters get unrelated pseudonyms.

The key comes from ``FHIRLAKE_PSEUDONYM_KEY`` or a key file, never from the repository, and a
missing key is an error: a random key would make every run unjoinable with the previous ones
without anyone noticing. :class:`PseudonymKey` never shows the secret in ``repr`` or errors.

>>> key = PseudonymKey(b"0123456789abcdef0123456789abcdef")
>>> key.resource_id("123") == key.resource_id("123")
True
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from pathlib import Path

from fhirlake.pseudonymize.errors import PseudonymKeyError

__all__ = ["KEY_ENV_VAR", "MIN_KEY_BYTES", "PseudonymKey", "load_key"]

KEY_ENV_VAR = "FHIRLAKE_PSEUDONYM_KEY"
MIN_KEY_BYTES = 32

_GENERATE_HINT = "generate one with: python -c 'import secrets; print(secrets.token_hex(32))'"


class PseudonymKey:
    """A secret of at least 32 bytes, and the pseudonyms it derives.

    Pseudonyms of resource ids are cached: a patient's id is seen in thousands of references.
    """

    __slots__ = ("_id_cache", "_secret")

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_KEY_BYTES:
            raise PseudonymKeyError(
                f"the pseudonymisation key is {len(secret)} bytes long; at least "
                f"{MIN_KEY_BYTES} are needed ({_GENERATE_HINT})"
            )
        self._secret = secret
        self._id_cache: dict[str, str] = {}

    def __repr__(self) -> str:
        return "PseudonymKey(<secret>)"

    def digest(self, domain: str, value: str) -> bytes:
        """HMAC-SHA256 of ``value`` in ``domain`` (32 bytes)."""
        return hmac.digest(self._secret, domain.encode() + b"\x00" + value.encode(), "sha256")

    def hexdigest(self, domain: str, value: str, length: int = 32) -> str:
        """The first ``length`` hex characters of :meth:`digest`."""
        return self.digest(domain, value).hex()[:length]

    def key_id(self) -> str:
        """A short public fingerprint, to check that two runs used the same key."""
        return self.hexdigest("key-id", "fhirlake", 12)

    def resource_id(self, original: str) -> str:
        """The pseudonym of a resource id: a UUID (version 8) derived from the key and the id.

        A UUID is a valid FHIR id and a valid ``urn:uuid:`` reference, so ``Patient/x``,
        ``urn:uuid:x`` and ``#x`` all map to the same new id and every reference still resolves.
        The resource type is not part of the input because ``urn:uuid:`` references carry none.
        """
        cached = self._id_cache.get(original)
        if cached is not None:
            return cached
        raw = bytearray(self.digest("id", original)[:16])
        raw[6] = (raw[6] & 0x0F) | 0x80  # version 8: "custom"
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 9562 variant
        h = raw.hex()
        result = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        if len(self._id_cache) > 200_000:
            self._id_cache.clear()
        self._id_cache[original] = result
        return result

    def identifier(self, system: str, value: str) -> str:
        """The pseudonym of a business identifier, per system (an MRN and an SSN never collide)."""
        return self.hexdigest("identifier", f"{system}|{value}")

    def day_offset(self, patient_id: str, max_days: int) -> int:
        """The patient's date offset in days: in [-max_days, -1] or [1, max_days], never 0."""
        n = int.from_bytes(self.digest("date-shift", patient_id)[:8], "big") % (2 * max_days)
        return n - max_days if n < max_days else n - max_days + 1


def load_key(
    key_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> PseudonymKey:
    """Read the key from ``key_file`` if given, else from ``FHIRLAKE_PSEUDONYM_KEY``.

    A key file holds the secret as text (surrounding whitespace is ignored). Errors name the
    file or the variable, never the secret.
    """
    env = os.environ if environ is None else environ
    if key_file is not None:
        try:
            secret = key_file.read_bytes().strip()
        except OSError as exc:
            raise PseudonymKeyError(
                f"{key_file}: cannot read the key file ({exc.strerror or type(exc).__name__})"
            ) from None
        if not secret:
            raise PseudonymKeyError(f"{key_file}: the key file is empty ({_GENERATE_HINT})")
        try:
            return PseudonymKey(secret)
        except PseudonymKeyError as exc:
            raise PseudonymKeyError(f"{key_file}: {exc}") from None
    value = env.get(KEY_ENV_VAR, "").strip()
    if not value:
        raise PseudonymKeyError(
            f"no pseudonymisation key: set {KEY_ENV_VAR} or pass --key-file "
            f"(a secret of at least {MIN_KEY_BYTES} bytes; {_GENERATE_HINT})"
        )
    return PseudonymKey(value.encode())
