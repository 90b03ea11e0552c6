"""Seeds and resource ids, all derived from the master seed.

Every patient and every provider gets its own random stream, seeded from
``(master seed, kind, index)``. Output therefore depends only on the seed and the position,
never on how patients are split between worker processes. Ids are version-4 UUIDs drawn from
those streams, so they look like a server's ids and are identical from run to run.
"""

from __future__ import annotations

import hashlib
import random

__all__ = ["derive_seed", "stream", "uuid_from_int", "uuid_from_rng"]

_VERSION_MASK = ~((0xF << 76) | (0x3 << 62))
_VERSION_BITS = (0x4 << 76) | (0x2 << 62)
_VARIANT = {f"{n:x}": "89ab"[n & 3] for n in range(16)}


def derive_seed(seed: int, kind: str, index: int) -> int:
    """A 64-bit seed for item ``index`` of ``kind`` (e.g. ``"patient"``) under ``seed``.

    >>> derive_seed(1, "patient", 0) == derive_seed(1, "patient", 0)
    True
    """
    digest = hashlib.blake2b(f"{seed}\x1f{kind}\x1f{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def stream(seed: int, kind: str, index: int) -> random.Random:
    """The random stream of item ``index`` of ``kind``."""
    return random.Random(derive_seed(seed, kind, index))


def uuid_from_int(value: int) -> str:
    """Format the low 128 bits of ``value`` as a version-4 UUID string."""
    n = (value & _VERSION_MASK) | _VERSION_BITS
    h = f"{n & ((1 << 128) - 1):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid_from_rng(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (on the hot path: formats hex directly)."""
    h = rng.randbytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"
