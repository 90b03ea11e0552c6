"""Running the embedded server with uvicorn: in the foreground (CLI) or in a thread (tests, demo)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

import uvicorn
from starlette.applications import Starlette

from fhirlake.bulkserver._app import ServerState, create_app
from fhirlake.bulkserver._config import BulkServerConfig
from fhirlake.errors import ConfigurationError

__all__ = ["BackgroundServer", "serve"]

LOOPBACK = "127.0.0.1"


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port} ({exc.strerror})") from exc
    return sock


def _uvicorn_config(app: Starlette, *, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )


class BackgroundServer:
    """The server on ``127.0.0.1:<free port>`` in a daemon thread, as a context manager.

    Example::

        with BackgroundServer(BulkServerConfig(data_dir=folder)) as server:
            export(source="t", request=ExportRequest(base_url=server.base_url), lake=lake)
            server.state.requests("GET", path_contains="/_bulk/files/")
    """

    def __init__(self, config: BulkServerConfig, *, host: str = LOOPBACK, port: int = 0) -> None:
        self.config = config
        self.host = host
        self._requested_port = port
        self._app = create_app(config)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        """The FHIR base URL clients should use."""
        prefix = "" if self.config.base_path == "/" else self.config.base_path
        return f"http://{self.host}:{self.port}{prefix}"

    @property
    def state(self) -> ServerState:
        """The running app's state (jobs, tokens, request log)."""
        state: ServerState = self._app.state.bulk
        return state

    def start(self, *, timeout: float = 10.0) -> None:
        """Start serving; returns once the socket accepts connections."""
        sock = _bind(self.host, self._requested_port)
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(_uvicorn_config(self._app, log_level="warning"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigurationError(
                    f"the Bulk Data server on {self.host}:{self.port} did not start"
                )
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving and wait for the thread (a few seconds at most)."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve(
    config: BulkServerConfig,
    *,
    host: str = LOOPBACK,
    port: int = 8410,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve in the foreground until Ctrl-C; ``on_ready`` gets the base URL once listening."""
    sock = _bind(host, port)
    actual_port = sock.getsockname()[1]
    prefix = "" if config.base_path == "/" else config.base_path
    shown_host = f"[{host}]" if ":" in host else host
    server = uvicorn.Server(_uvicorn_config(create_app(config), log_level="warning"))
    if on_ready is not None:
        on_ready(f"http://{shown_host}:{actual_port}{prefix}")
    server.run(sockets=[sock])
