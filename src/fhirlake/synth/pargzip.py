"""One gzip stream written from blocks compressed in parallel (the way pigz does it).

Each worker deflates its block on its own and ends it with a sync flush, which leaves the
stream byte-aligned; blocks can then be concatenated in order behind one gzip header, closed
by an empty final block and a trailer whose CRC-32 is combined from the blocks' CRCs. The
result is a single-member gzip file: readers that stop after the first member (several HTTP
clients do) still see all of it.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

__all__ = ["GzipJoiner", "crc32_combine", "deflate_block"]

_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, mtime 0, unknown OS
_FINAL_EMPTY_BLOCK = b"\x03\x00"  # BFINAL=1, fixed Huffman, end-of-block code


def deflate_block(data: bytes, level: int = 6) -> tuple[bytes, int, int]:
    """Raw-deflate ``data`` ending on a byte boundary; returns (bytes, crc32, length)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH), zlib.crc32(data), len(data)


def _gf2_times(matrix: list[int], vector: int) -> int:
    total = 0
    i = 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, row) for row in matrix]


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """CRC-32 of ``a + b`` from ``crc32(a)``, ``crc32(b)`` and ``len(b)`` (zlib's algorithm)."""
    if length2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]  # operator for one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)
        if length2 & 1:
            crc1 = _gf2_times(even, crc1)
        length2 >>= 1
        if not length2:
            break
        odd = _gf2_square(even)
        if length2 & 1:
            crc1 = _gf2_times(odd, crc1)
        length2 >>= 1
        if not length2:
            break
    return crc1 ^ crc2


class GzipJoiner:
    """Writes blocks from :func:`deflate_block`, in order, as one gzip stream to ``sink``."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self._crc = 0
        self._size = 0
        sink.write(_HEADER)

    def write(self, block: tuple[bytes, int, int]) -> None:
        """Append one compressed block."""
        deflated, crc, length = block
        self._sink.write(deflated)
        self._crc = crc32_combine(self._crc, crc, length)
        self._size += length

    def close(self) -> None:
        """Finish the stream (final block and trailer) and close the sink."""
        self._sink.write(_FINAL_EMPTY_BLOCK)
        self._sink.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))
        self._sink.close()
