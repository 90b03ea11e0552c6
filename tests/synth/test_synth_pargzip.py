"""Parallel gzip: CRC combination and block joining give a valid single-member stream."""

from __future__ import annotations

import io
import random
import zlib

from fhirlake.synth.pargzip import GzipJoiner, crc32_combine, deflate_block


class _Sink(io.BytesIO):
    def close(self) -> None:  # keep the bytes readable after the joiner closes its sink
        pass


def test_crc32_combine_equals_crc_of_the_concatenation() -> None:
    rng = random.Random(3)
    for _ in range(20):
        a = rng.randbytes(rng.randint(0, 5000))
        b = rng.randbytes(rng.randint(0, 70000))
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def test_joined_blocks_decompress_to_the_concatenation() -> None:
    rng = random.Random(4)
    blocks = [rng.randbytes(300) + b"line\n" * rng.randint(0, 3000) for _ in range(7)] + [b""]
    sink = _Sink()
    joiner = GzipJoiner(sink)
    for block in blocks:
        joiner.write(deflate_block(block, 1))
    joiner.close()
    decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
    assert decoder.decompress(sink.getvalue()) == b"".join(blocks)
    assert decoder.eof and decoder.unused_data == b""
