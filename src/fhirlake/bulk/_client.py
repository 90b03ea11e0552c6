"""The two thin I/O shells of the Bulk Data client: :class:`BulkClient` and :class:`AsyncBulkClient`.

Both send what :mod:`fhirlake.bulk._protocol` builds, hand every answer back to it for a
decision, and sleep or retry as it says; they differ only in ``await``. Transports, clocks and
sleepers are injected, so tests run on ``httpx.MockTransport`` with no real waiting.

One call does one protocol step (kick-off, wait, download one file, delete); the resumable,
parallel export of a whole manifest is :class:`fhirlake.bulk.Exporter`, built on the async shell.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from fhirlake import __version__
from fhirlake.bulk._budget import RetryBudget, StallWatch
from fhirlake.bulk._events import BytesReceived, EventHandler, Polling, Retrying, ignore_event
from fhirlake.bulk._exceptions import BulkError, CountMismatchError
from fhirlake.bulk._files import DownloadSink
from fhirlake.bulk._models import (
    CompletedExport,
    DownloadResult,
    ExportJob,
    ExportRequest,
    ManifestFile,
    RetryPolicy,
)
from fhirlake.bulk._protocol import (
    Accepted,
    Done,
    Proceed,
    Retry,
    Wait,
    delete_request,
    download_request,
    interpret_download,
    interpret_kickoff,
    interpret_status,
    kickoff_request,
    status_request,
)

__all__ = ["AsyncBulkClient", "BulkClient"]

DEFAULT_TIMEOUT = httpx.Timeout(connect=15.0, read=120.0, write=60.0, pool=None)
_RETRYABLE_ERRORS = (httpx.TransportError, httpx.DecodingError)
_WRITE_BATCH = 1 << 20


_USER_AGENT = f"fhirlake/{__version__}"


def _ua(request: httpx.Request) -> httpx.Request:
    """Requests built by the protocol core do not get the client's default headers: add ours."""
    request.headers.setdefault("User-Agent", _USER_AGENT)
    return request


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


class _Shared:
    """State and bookkeeping both shells share (no I/O here)."""

    def __init__(
        self,
        *,
        auth: httpx.Auth | None,
        retry: RetryPolicy,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
        on_event: EventHandler | None,
    ) -> None:
        self.auth = auth
        self.retry = retry
        self.clock = clock
        self.monotonic = monotonic
        self.on_event: EventHandler = on_event or ignore_event

    def budget(self, what: str, deadline_at: float | None) -> RetryBudget:
        return RetryBudget(self.retry, what=what, deadline_at=deadline_at)

    def after_failure(
        self,
        budget: RetryBudget,
        hint: float | None,
        reason: str,
        *,
        cause: Exception | None = None,
    ) -> float:
        try:
            delay = budget.on_failure(hint, reason, now=self.monotonic())
        except BulkError as exc:
            if cause is not None:
                raise exc from cause
            raise
        self.on_event(Retrying(budget.what, reason, delay, budget.failures))
        return delay

    def watch(self, job: ExportJob) -> StallWatch:
        return StallWatch(self.retry, status_url=job.status_url, now=self.monotonic())

    def observe(self, watch: StallWatch, decision: Wait | Retry) -> None:
        """Feed a 202's progress to the stall watch (429s and failures say nothing about it)."""
        if isinstance(decision, Wait) and decision.reason == "in progress":
            watch.observe(decision.progress, now=self.monotonic())

    def after_wait(self, budget: RetryBudget, decision: Wait, *, polling: bool) -> float:
        delay = budget.on_wait(decision, now=self.monotonic())
        if polling and decision.reason == "in progress":
            self.on_event(Polling(decision.progress, delay))
        else:
            self.on_event(Retrying(budget.what, decision.reason, delay, budget.waits))
        return delay


class BulkClient:
    """The synchronous Bulk Data client: one protocol step per call.

    Example::

        with BulkClient(auth=BearerTokenAuth(token)) as client:
            job = client.kick_off(ExportRequest(base_url=url, types=("Patient",)))
            done = client.wait(job)
            for i, file in enumerate(done.manifest.output):
                client.download(file, Path(f"out/{i}.ndjson"),
                                requires_token=done.manifest.requires_access_token)
            client.delete(job)
    """

    def __init__(
        self,
        *,
        auth: httpx.Auth | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_event: EventHandler | None = None,
    ) -> None:
        self._s = _Shared(
            auth=auth,
            retry=retry or RetryPolicy(),
            clock=clock,
            monotonic=monotonic,
            on_event=on_event,
        )
        self._sleep = sleep
        self._http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def kick_off(self, request: ExportRequest, *, deadline_at: float | None = None) -> ExportJob:
        """Start an export; retries 429 and transient 5xx; raises KickoffError on refusal."""
        budget = self._s.budget(f"kick-off {request.endpoint}", deadline_at)
        while True:
            try:
                response = self._http.send(_ua(kickoff_request(request)), auth=self._s.auth)
            except _RETRYABLE_ERRORS as exc:
                self._sleep(self._s.after_failure(budget, None, _describe(exc), cause=exc))
                continue
            decision = interpret_kickoff(response, now=self._s.clock())
            if isinstance(decision, Accepted):
                return decision.job
            self._pause(budget, decision, polling=False)

    def wait(self, job: ExportJob, *, deadline_at: float | None = None) -> CompletedExport:
        """Poll until the export completes; honours Retry-After, backs off, retries transient
        errors; raises ExportStalledError when the job's progress stops changing."""
        budget = self._s.budget(f"status {job.status_url}", deadline_at)
        watch = self._s.watch(job)
        while True:
            try:
                response = self._http.send(_ua(status_request(job)), auth=self._s.auth)
            except _RETRYABLE_ERRORS as exc:
                self._sleep(self._s.after_failure(budget, None, _describe(exc), cause=exc))
                continue
            decision = interpret_status(response, now=self._s.clock())
            if isinstance(decision, Done):
                return decision.completed
            self._s.observe(watch, decision)
            self._pause(budget, decision, polling=True)

    def download(
        self,
        file: ManifestFile,
        dest: Path,
        *,
        requires_token: bool,
        deadline_at: float | None = None,
        name: str | None = None,
        check_count: bool = True,
    ) -> DownloadResult:
        """Stream one file to ``dest`` (via ``dest.part``), checking ``file.count`` unless
        ``check_count`` is false (``error[]`` and ``deleted[]`` files: their counts are not
        lines); retries failures."""
        label = name or str(dest)
        budget = self._s.budget(file.url, deadline_at)
        mismatches = 0
        auth = self._s.auth if requires_token else None
        while True:
            sink = DownloadSink(dest, url=file.url)
            decision: Proceed | Wait | Retry
            try:
                response = self._http.send(_ua(download_request(file.url)), auth=auth, stream=True)
                try:
                    if response.status_code != 200:
                        response.read()  # an error's body says why
                    decision = interpret_download(response, now=self._s.clock())
                    if isinstance(decision, Proceed):
                        for chunk in response.iter_bytes():
                            sink.write(chunk)
                            self._s.on_event(BytesReceived(label, len(chunk)))
                finally:
                    response.close()
            except _RETRYABLE_ERRORS as exc:
                self._undo(sink, label)
                self._sleep(self._s.after_failure(budget, None, _describe(exc), cause=exc))
                continue
            except BaseException:
                self._undo(sink, label)
                raise
            if not isinstance(decision, Proceed):
                self._undo(sink, label)
                self._pause(budget, decision, polling=False)
                continue
            try:
                return sink.commit(expected_count=file.count if check_count else None)
            except CountMismatchError as exc:
                self._s.on_event(BytesReceived(label, -sink.bytes))
                mismatches += 1
                if mismatches > self._s.retry.count_mismatch_retries:
                    raise
                self._sleep(self._s.after_failure(budget, None, str(exc), cause=exc))

    def delete(self, job: ExportJob) -> tuple[bool, str]:
        """DELETE the job; returns (accepted, reason) and never raises, as it runs during cleanup."""
        try:
            response = self._http.send(_ua(delete_request(job)), auth=self._s.auth)
        except (httpx.HTTPError, BulkError) as exc:
            return False, _describe(exc)
        return response.is_success, f"{response.status_code} {response.reason_phrase}".strip()

    def _pause(self, budget: RetryBudget, decision: Wait | Retry, *, polling: bool) -> None:
        if isinstance(decision, Wait):
            self._sleep(self._s.after_wait(budget, decision, polling=polling))
        else:
            self._sleep(self._s.after_failure(budget, decision.delay, decision.reason))

    def _undo(self, sink: DownloadSink, label: str) -> None:
        if sink.bytes:
            self._s.on_event(BytesReceived(label, -sink.bytes))
        sink.discard()


class AsyncBulkClient:
    """The asynchronous Bulk Data client: the same steps as :class:`BulkClient`, awaited.

    ``max_connections`` bounds the connection pool; the exporter bounds parallel downloads
    with a semaphore of the same size.
    """

    def __init__(
        self,
        *,
        auth: httpx.Auth | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_connections: int = 8,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_event: EventHandler | None = None,
    ) -> None:
        self._s = _Shared(
            auth=auth,
            retry=retry or RetryPolicy(),
            clock=clock,
            monotonic=monotonic,
            on_event=on_event,
        )
        self._sleep = sleep
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._http = httpx.AsyncClient(
            transport=transport, timeout=timeout, follow_redirects=True, limits=limits
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def kick_off(
        self, request: ExportRequest, *, deadline_at: float | None = None
    ) -> ExportJob:
        """Start an export; retries 429 and transient 5xx; raises KickoffError on refusal."""
        budget = self._s.budget(f"kick-off {request.endpoint}", deadline_at)
        while True:
            try:
                response = await self._http.send(_ua(kickoff_request(request)), auth=self._s.auth)
            except _RETRYABLE_ERRORS as exc:
                await self._sleep(self._s.after_failure(budget, None, _describe(exc), cause=exc))
                continue
            decision = interpret_kickoff(response, now=self._s.clock())
            if isinstance(decision, Accepted):
                return decision.job
            await self._pause(budget, decision, polling=False)

    async def wait(self, job: ExportJob, *, deadline_at: float | None = None) -> CompletedExport:
        """Poll until the export completes; honours Retry-After, backs off, retries transient
        errors; raises ExportStalledError when the job's progress stops changing."""
        budget = self._s.budget(f"status {job.status_url}", deadline_at)
        watch = self._s.watch(job)
        while True:
            try:
                response = await self._http.send(_ua(status_request(job)), auth=self._s.auth)
            except _RETRYABLE_ERRORS as exc:
                await self._sleep(self._s.after_failure(budget, None, _describe(exc), cause=exc))
                continue
            decision = interpret_status(response, now=self._s.clock())
            if isinstance(decision, Done):
                return decision.completed
            self._s.observe(watch, decision)
            await self._pause(budget, decision, polling=True)

    async def download(
        self,
        file: ManifestFile,
        dest: Path,
        *,
        requires_token: bool,
        deadline_at: float | None = None,
        name: str | None = None,
        check_count: bool = True,
    ) -> DownloadResult:
        """Stream one file to ``dest`` (via ``dest.part``), checking ``file.count`` unless
        ``check_count`` is false (``error[]`` and ``deleted[]`` files: their counts are not
        lines); retries failures."""
        label = name or str(dest)
        budget = self._s.budget(file.url, deadline_at)
        mismatches = 0
        auth = self._s.auth if requires_token else None
        while True:
            sink = DownloadSink(dest, url=file.url)
            decision: Proceed | Wait | Retry
            try:
                response = await self._http.send(
                    _ua(download_request(file.url)), auth=auth, stream=True
                )
                try:
                    if response.status_code != 200:
                        await response.aread()  # an error's body says why
                    decision = interpret_download(response, now=self._s.clock())
                    if isinstance(decision, Proceed):
                        await self._receive(response, sink, label)
                finally:
                    await response.aclose()
            except _RETRYABLE_ERRORS as exc:
                self._undo(sink, label)
                await self._sleep(self._s.after_failure(budget, None, _describe(exc), cause=exc))
                continue
            except BaseException:
                self._undo(sink, label)
                raise
            if not isinstance(decision, Proceed):
                self._undo(sink, label)
                await self._pause(budget, decision, polling=False)
                continue
            try:
                return await asyncio.to_thread(
                    sink.commit, expected_count=file.count if check_count else None
                )
            except CountMismatchError as exc:
                self._s.on_event(BytesReceived(label, -sink.bytes))
                mismatches += 1
                if mismatches > self._s.retry.count_mismatch_retries:
                    raise
                await self._sleep(self._s.after_failure(budget, None, str(exc), cause=exc))

    async def _receive(self, response: httpx.Response, sink: DownloadSink, label: str) -> None:
        """Stream the body to the sink. Disk writes, hashing and the final fsync run in worker
        threads (they release the GIL), so parallel downloads keep flowing meanwhile; at most
        ``_WRITE_BATCH`` bytes per download wait in memory."""
        batch: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            batch.append(chunk)
            size += len(chunk)
            if size >= _WRITE_BATCH:
                await asyncio.to_thread(sink.write_many, batch)
                self._s.on_event(BytesReceived(label, size))
                batch, size = [], 0
        if batch:
            await asyncio.to_thread(sink.write_many, batch)
            self._s.on_event(BytesReceived(label, size))

    async def delete(self, job: ExportJob) -> tuple[bool, str]:
        """DELETE the job; returns (accepted, reason) and never raises, as it runs during cleanup."""
        try:
            response = await self._http.send(_ua(delete_request(job)), auth=self._s.auth)
        except (httpx.HTTPError, BulkError) as exc:
            return False, _describe(exc)
        return response.is_success, f"{response.status_code} {response.reason_phrase}".strip()

    async def _pause(self, budget: RetryBudget, decision: Wait | Retry, *, polling: bool) -> None:
        if isinstance(decision, Wait):
            await self._sleep(self._s.after_wait(budget, decision, polling=polling))
        else:
            await self._sleep(self._s.after_failure(budget, decision.delay, decision.reason))

    def _undo(self, sink: DownloadSink, label: str) -> None:
        if sink.bytes:
            self._s.on_event(BytesReceived(label, -sink.bytes))
        sink.discard()
