"""The Starlette application of the embedded Bulk Data server.

Routes, under the FHIR base path (``/fhir`` by default)::

    GET|POST  /$export, /Patient/$export, /Group/{id}/$export    kick-off (202 + Content-Location)
    GET       /_bulk/jobs/{job}                                  status (202 + X-Progress | 200 manifest)
    DELETE    /_bulk/jobs/{job}                                  cancel / done (202; later polls 404)
    GET       /_bulk/files/{job}/{name}                          a file (gzip when asked)
    GET       /metadata, /.well-known/smart-configuration        discovery
    POST      /auth/token                                        SMART Backend Services tokens
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhirlake.bulkserver._auth import TokenError, TokenService
from fhirlake.bulkserver._config import BulkServerConfig, Faults
from fhirlake.bulkserver._jobs import (
    Job,
    KickoffRejected,
    OutputEntry,
    build_job,
    group_members,
    parameters_from_body,
    parse_kickoff,
)
from fhirlake.bulkserver._store import DataFolder
from fhirlake.bulkserver._stream import ClosingStream, DroppedConnection, stream_slice

__all__ = ["DroppedConnection", "RequestRecord", "ServerState", "create_app"]

_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
_log = logging.getLogger("fhirlake.bulkserver")


@dataclass(frozen=True)
class RequestRecord:
    """One answered request, for tests to count (method, path, status)."""

    method: str
    path: str
    status: int


@dataclass
class ServerState:
    """Everything the running server knows; tests read ``log``, ``jobs`` and ``tokens``.

    ``faults`` starts as the configured ones; a test may replace it while the server runs
    (e.g. lift a throttle before resuming an export).
    """

    config: BulkServerConfig
    folder: DataFolder
    work_dir: Path
    tokens: TokenService | None
    faults: Faults
    jobs: dict[str, Job] = field(default_factory=dict)
    kickoffs: int = 0
    log: list[RequestRecord] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def requests(
        self, method: str | None = None, *, path_contains: str = "", status: int | None = None
    ) -> list[RequestRecord]:
        """The logged requests matching all the given filters."""
        return [
            r
            for r in list(self.log)
            if (method is None or r.method == method)
            and path_contains in r.path
            and (status is None or r.status == status)
        ]


class _RequestLog:
    """ASGI middleware recording each request's method, path and status."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.state.log.append(
                    RequestRecord(scope["method"], scope["path"], message["status"])
                )
            await send(message)

        await self.app(scope, receive, record)


def create_app(config: BulkServerConfig) -> Starlette:
    """Build the ASGI app; its :class:`ServerState` is ``app.state.bulk``."""
    owns_work_dir = config.work_dir is None
    work_dir = config.work_dir or Path(tempfile.mkdtemp(prefix="fhirlake-bulkserver-"))
    tokens = TokenService(config.auth) if config.auth is not None else None
    state = ServerState(
        config, DataFolder(config.data_dir, work_dir), work_dir, tokens, config.faults
    )
    handlers = _Handlers(state)
    prefix = "" if config.base_path == "/" else config.base_path

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        for task in list(state.tasks):
            task.cancel()
        if owns_work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)

    routes = [
        Route(f"{prefix}/$export", handlers.kickoff_system, methods=["GET", "POST"]),
        Route(f"{prefix}/Patient/$export", handlers.kickoff_patient, methods=["GET", "POST"]),
        Route(
            f"{prefix}/Group/{{group_id}}/$export", handlers.kickoff_group, methods=["GET", "POST"]
        ),
        Route(f"{prefix}/_bulk/jobs/{{job_id}}", handlers.status, methods=["GET"]),
        Route(f"{prefix}/_bulk/jobs/{{job_id}}", handlers.delete, methods=["DELETE"]),
        Route(f"{prefix}/_bulk/files/{{job_id}}/{{name}}", handlers.file, methods=["GET"]),
        Route(f"{prefix}/metadata", handlers.metadata, methods=["GET"]),
        Route(
            f"{prefix}/.well-known/smart-configuration",
            handlers.smart_configuration,
            methods=["GET"],
        ),
        Route(f"{prefix}/auth/token", handlers.token, methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.bulk = state
    app.add_middleware(_RequestLog, state=state)
    return app


def _outcome(
    status: int, text: str, code: str = "invalid", headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }
    return JSONResponse(
        body, status_code=status, headers=headers, media_type="application/fhir+json"
    )


def _proxy_page(status: int) -> HTMLResponse:
    """The HTML error page a reverse proxy sends, with no OperationOutcome in sight."""
    title = f"{status} Request Entity Too Large" if status == 413 else f"{status} Refused"
    page = (
        f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center>"
        "<p>the kick-off request exceeds the proxy's limit of 8 KB</p>"
        "<hr><center>nginx</center></body></html>"
    )
    return HTMLResponse(page, status_code=status)


def _instant(when: float) -> str:
    return (
        datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


class _Handlers:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.config = state.config

    # ------------------------------------------------------------------ helpers

    def _base(self, request: Request) -> str:
        prefix = "" if self.config.base_path == "/" else self.config.base_path
        return f"{request.url.scheme}://{request.url.netloc}{prefix}"

    def _retry_after(self, seconds: int | None = None) -> str:
        delay = self.config.retry_after if seconds is None else seconds
        style = self.config.retry_after_style
        if style == "http-date":
            return email.utils.formatdate(time.time() + delay, usegmt=True)
        if style == "epoch":
            return str(int(time.time() + delay))
        if style == "epoch-ms":
            return str(int((time.time() + delay) * 1000))
        return str(delay)

    async def _slow(self) -> None:
        if self.state.faults.slow_seconds:
            await asyncio.sleep(self.state.faults.slow_seconds)

    def _unauthorized(self, request: Request) -> Response | None:
        if self.state.tokens is None:
            return None
        if self.state.tokens.check(request.headers.get("authorization")) is not None:
            return None
        return _outcome(
            401,
            "a valid bearer token is required",
            "login",
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )

    # ------------------------------------------------------------------ kick-off

    async def kickoff_system(self, request: Request) -> Response:
        return await self._kickoff(request, "system", None)

    async def kickoff_patient(self, request: Request) -> Response:
        return await self._kickoff(request, "patient", None)

    async def kickoff_group(self, request: Request) -> Response:
        return await self._kickoff(request, "group", request.path_params["group_id"])

    async def _kickoff(self, request: Request, level: str, group_id: str | None) -> Response:
        await self._slow()
        if (refused := self._unauthorized(request)) is not None:
            return refused
        self.state.kickoffs += 1
        if self.state.faults.kickoff_status:
            return _proxy_page(self.state.faults.kickoff_status)
        if self.state.kickoffs <= self.state.faults.kickoff_429:
            return _outcome(
                429,
                "too many exports running; retry later",
                "throttled",
                {"Retry-After": self._retry_after()},
            )
        if "application/fhir+json" not in request.headers.get("accept", ""):
            return _outcome(400, "Accept must be application/fhir+json")
        prefer = [p.strip() for p in request.headers.get("prefer", "").split(",")]
        if "respond-async" not in prefer:
            return _outcome(400, "Prefer: respond-async is required")
        values: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            values.setdefault(key, []).append(value)
        try:
            if request.method == "POST":
                for key, items in parameters_from_body(await request.body()).items():
                    values.setdefault(key, []).extend(items)
            params = parse_kickoff(
                level=level,
                group_id=group_id,
                values=values,
                method=request.method,
                lenient="handling=lenient" in prefer,
            )
        except KickoffRejected as exc:
            return _outcome(exc.status, exc.message, exc.code)
        members = None
        if group_id is not None:
            members = await anyio.to_thread.run_sync(group_members, self.state.folder, group_id)
            if members is None:
                return _outcome(404, f"Group/{group_id} is not known", "not-found")
        job = Job(
            id=secrets.token_hex(8),
            index=len(self.state.jobs),
            params=params,
            request_url=str(request.url),
            transaction_time=_instant(time.time()),
            created=time.monotonic(),
            directory=self.state.work_dir / "jobs" / f"job-{len(self.state.jobs)}",
            owner=self.state.tokens.check(request.headers.get("authorization"))
            if self.state.tokens
            else None,
        )
        self.state.jobs[job.id] = job
        task = asyncio.create_task(self._build(job, members))
        self.state.tasks.add(task)
        task.add_done_callback(self.state.tasks.discard)
        location = f"{self._base(request)}/_bulk/jobs/{job.id}"
        return Response(status_code=202, headers={"Content-Location": location})

    async def _build(self, job: Job, members: frozenset[str] | None) -> None:
        try:
            await anyio.to_thread.run_sync(
                lambda: build_job(
                    job,
                    self.state.folder,
                    members=members,
                    lines_per_file=self.config.lines_per_file,
                    error_entries=self.state.faults.error_entries,
                )
            )
        except Exception as exc:  # reported to the client as a failed export
            _log.exception("export job %s failed", job.id)
            job.build_error = f"{type(exc).__name__}: {exc}"
        finally:
            job.built = True

    # ------------------------------------------------------------------ status and delete

    def _job(self, request: Request) -> Job | None:
        job = self.state.jobs.get(request.path_params["job_id"])
        return None if job is None or job.removed else job

    async def status(self, request: Request) -> Response:
        await self._slow()
        if (refused := self._unauthorized(request)) is not None:
            return refused
        job = self._job(request)
        if job is None:
            return _outcome(404, "no such export (it may have been deleted)", "not-found")
        with job.lock:
            job.polls += 1
            polls = job.polls
        if polls <= self.state.faults.status_429:
            return _outcome(
                429, "polling too often", "throttled", {"Retry-After": self._retry_after()}
            )
        if polls <= self.state.faults.status_429 + self.state.faults.status_500:
            return _outcome(500, "status is unavailable for a moment", "transient")
        if job.build_error is not None:
            return _outcome(500, f"the export failed: {job.build_error}", "exception")
        if job.index < self.state.faults.stall_jobs:
            return Response(
                status_code=202,
                headers={"X-Progress": "42% complete", "Retry-After": self._retry_after()},
            )
        elapsed = time.monotonic() - job.created
        if not job.built or elapsed < self.config.job_seconds:
            share = (
                1.0 if self.config.job_seconds == 0 else min(elapsed / self.config.job_seconds, 1.0)
            )
            percent = min(int(share * 100), 99)
            return Response(
                status_code=202,
                headers={"X-Progress": f"{percent}% complete", "Retry-After": self._retry_after()},
            )
        return JSONResponse(
            self._manifest(request, job),
            headers={
                "Expires": email.utils.formatdate(
                    time.time() + self.config.expires_seconds, usegmt=True
                )
            },
        )

    def _manifest(self, request: Request, job: Job) -> dict[str, Any]:
        base = f"{self._base(request)}/_bulk/files/{job.id}"

        def items(entries: list[OutputEntry], offset: int = 0) -> list[dict[str, Any]]:
            return [
                {"type": e.type, "url": f"{base}/{e.name}", "count": e.slice.count + offset}
                for e in entries
            ]

        offset = self.state.faults.aux_count_offset
        manifest: dict[str, Any] = {
            "transactionTime": job.transaction_time,
            "request": job.request_url,
            "requiresAccessToken": self.state.tokens is not None,
            "output": items(job.outputs),
            "error": items(job.errors, offset),
            "extension": {"https://fhirlake.dev/bulkserver": {"job": job.id}},
        }
        if job.params.since is not None:
            manifest["deleted"] = items(job.deleted, offset)
        return manifest

    async def delete(self, request: Request) -> Response:
        if (refused := self._unauthorized(request)) is not None:
            return refused
        job = self._job(request)
        if job is None:
            return _outcome(404, "no such export", "not-found")
        job.removed = True
        await anyio.to_thread.run_sync(job.remove_files)
        return Response(status_code=202)

    # ------------------------------------------------------------------ files

    async def file(self, request: Request) -> Response:
        await self._slow()
        if (refused := self._unauthorized(request)) is not None:
            return refused
        job = self._job(request)
        name = request.path_params["name"]
        entry = job.entry(name) if job is not None else None
        if job is None or entry is None:
            return _outcome(404, "no such file", "not-found")
        if job.index < self.state.faults.gone_jobs:
            return _outcome(410, "the export has expired", "expired")
        if self.state.faults.file_status:
            status = self.state.faults.file_status
            return PlainTextResponse(
                f"{status}: file downloads are not allowed for this client ({name})",
                status_code=status,
            )
        with job.lock:
            attempt = job.file_attempts.get(name, 0) + 1
            job.file_attempts[name] = attempt
        faults = self.state.faults
        if attempt <= faults.file_500:
            return _outcome(500, "the file is unavailable for a moment", "transient")
        if attempt <= faults.file_500 + faults.file_429:
            return _outcome(
                429, "too many downloads", "throttled", {"Retry-After": self._retry_after()}
            )
        drop = attempt <= faults.file_500 + faults.file_429 + faults.file_drop
        use_gzip = self.config.gzip and "gzip" in request.headers.get("accept-encoding", "")
        headers = {"Vary": "Accept-Encoding"}
        if use_gzip:
            headers["Content-Encoding"] = "gzip"
        else:
            headers["Content-Length"] = str(entry.slice.end - entry.slice.start)
        body = stream_slice(
            entry, use_gzip=use_gzip, drop=drop, bytes_per_second=faults.bytes_per_second
        )
        return ClosingStream(body, headers=headers, media_type="application/fhir+ndjson")

    # ------------------------------------------------------------------ discovery and auth

    async def metadata(self, request: Request) -> Response:
        security: dict[str, Any] = {}
        if self.state.tokens is not None:
            security = {
                "extension": [
                    {
                        "url": _OAUTH_URIS,
                        "extension": [
                            {"url": "token", "valueUri": f"{self._base(request)}/auth/token"}
                        ],
                    }
                ],
                "service": [
                    {
                        "coding": [
                            {
                                "system": "http://hl7.org/fhir/restful-security-service",
                                "code": "SMART-on-FHIR",
                            }
                        ]
                    }
                ],
            }
        statement = {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "kind": "instance",
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "rest": [
                {
                    "mode": "server",
                    "security": security,
                    "operation": [
                        {
                            "name": "export",
                            "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                        }
                    ],
                }
            ],
        }
        return JSONResponse(statement, media_type="application/fhir+json")

    async def smart_configuration(self, request: Request) -> Response:
        if self.state.tokens is None or not self.state.tokens.config.well_known:
            return _outcome(404, "this server does not publish a SMART configuration", "not-found")
        return JSONResponse(
            {
                "token_endpoint": f"{self._base(request)}/auth/token",
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
                "grant_types_supported": ["client_credentials"],
                "scopes_supported": ["system/*.read", "system/*.rs"],
                "capabilities": ["client-confidential-asymmetric"],
            }
        )

    async def token(self, request: Request) -> Response:
        if self.state.tokens is None:
            return JSONResponse(
                {"error": "invalid_request", "error_description": "auth is off"}, status_code=400
            )
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        try:
            body = self.state.tokens.issue(form, token_url=f"{self._base(request)}/auth/token")
        except TokenError as exc:
            return JSONResponse(
                {"error": exc.error, "error_description": exc.description}, status_code=exc.status
            )
        return JSONResponse(body, headers={"Cache-Control": "no-store"})
