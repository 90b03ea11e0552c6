"""File bodies of the embedded server: a slice of a file streamed chunk by chunk (gzip when
asked, throttled or dropped midway when a fault says so), always closing its file."""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncGenerator
from typing import Any, BinaryIO

import anyio.to_thread
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from fhirlake.bulkserver._jobs import OutputEntry

__all__ = ["ClosingStream", "DroppedConnection", "stream_slice"]

_CHUNK = 256 * 1024
_GZIP_LEVEL = 1  # fast: on loopback the CPU, not the wire, is the bottleneck


class DroppedConnection(Exception):
    """Raised mid-body to make the ASGI server drop the connection (the ``file_drop`` fault)."""


class _QuietDrops(logging.Filter):
    """Keeps injected connection drops out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


class ClosingStream(StreamingResponse):
    """A streaming response that always closes its body (and so its file), even when the client
    went away mid-body and the generator would otherwise be left to the garbage collector."""

    def __init__(self, body: AsyncGenerator[bytes, None], **kwargs: Any) -> None:
        super().__init__(body, **kwargs)
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._body.aclose()


async def stream_slice(
    entry: OutputEntry, *, use_gzip: bool, drop: bool, bytes_per_second: int | None
) -> AsyncGenerator[bytes, None]:
    """The bytes of a file slice, read and compressed in a worker thread chunk by chunk."""
    piece = entry.slice
    total = piece.end - piece.start
    chunk = _CHUNK
    if drop:
        chunk = max(1, total // 4)
    if bytes_per_second:
        chunk = min(chunk, max(1024, bytes_per_second // 10))
    compressor = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31) if use_gzip else None
    fh: BinaryIO = await anyio.to_thread.run_sync(open, piece.path, "rb")
    try:
        await anyio.to_thread.run_sync(fh.seek, piece.start)
        sent = 0
        while sent < total:
            size = min(chunk, total - sent)
            data, out = await anyio.to_thread.run_sync(_read_block, fh, size, compressor)
            if not data:
                break  # the file shrank under us: end the body early, the client will notice
            sent += len(data)
            if out:
                yield out
            if drop and sent < total and sent >= total // 2:
                raise DroppedConnection(f"{entry.name}: dropped after {sent} of {total} bytes")
            if bytes_per_second:
                await asyncio.sleep(len(data) / bytes_per_second)
        if compressor is not None:
            yield compressor.flush()
    finally:
        fh.close()


def _read_block(fh: BinaryIO, size: int, compressor: Any) -> tuple[bytes, bytes]:
    data = fh.read(size)
    return data, (compressor.compress(data) if compressor is not None else data)
