"""Run an ASGI app on a loopback port in a background thread (tests, benchmarks, demos).

The port is bound before the app is built, so the app can know its own URL (the MCP SDK's
auth settings name the protected resource by URL).

>>> with serve_on_loopback(lambda url: app) as url:   # doctest: +SKIP
...     httpx.get(url + "/mcp")
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from fhirlake.errors import FhirlakeError

__all__ = ["serve_on_loopback"]


@contextmanager
def serve_on_loopback(build: Callable[[str], ASGIApp], *, host: str = "127.0.0.1", start_timeout: float = 20.0) -> Iterator[str]:
    """Bind a free port on ``host``, serve ``build(base_url)`` with uvicorn, yield the base URL."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    base_url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    server = uvicorn.Server(uvicorn.Config(build(base_url), log_level="warning", lifespan="on", backlog=1024,
                                           proxy_headers=False, forwarded_allow_ips=""))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="fhirlake-loopback", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise FhirlakeError(f"the server on {base_url} did not start")
        time.sleep(0.02)
    try:
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
