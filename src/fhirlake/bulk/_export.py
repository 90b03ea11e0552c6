"""A whole export into the bronze layer: kick-off, wait, save the manifest, download, finish.

:class:`Exporter` journals every milestone in the export's ``state.jsonl`` before moving on,
so a run that dies at any point (Ctrl-C, a crash, ``kill -9``) is continued by the next run
with the same request: it polls the same job, or, once the manifest is saved, downloads only
the files that are not yet saved under their final names. Ctrl-C cancels instead: the job is
DELETEd on the server and the export marked cancelled.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from fhirlake.bulk._budget import deadline_at
from fhirlake.bulk._client import AsyncBulkClient
from fhirlake.bulk._events import (
    EventHandler,
    ExportAbandoned,
    FileDone,
    JobDeleted,
    KickedOff,
    ManifestSaved,
    ignore_event,
)
from fhirlake.bulk._exceptions import (
    BulkError,
    BulkNetworkError,
    DownloadError,
    ExportExpiredError,
    ExportStalledError,
    ResumeConflictError,
)
from fhirlake.bulk._files import inspect_file
from fhirlake.bulk._layout import BronzeLayout, ExportDir, FileKind, FileRecord, WatermarkStore
from fhirlake.bulk._models import (
    ExportJob,
    ExportRequest,
    Manifest,
    ManifestFile,
    OutcomeIssue,
    RetryPolicy,
)
from fhirlake.bulk._protocol import outcome_issues
from fhirlake.errors import ConfigurationError

__all__ = ["ExportOptions", "ExportResult", "Exporter", "export"]


@dataclass(frozen=True, kw_only=True)
class ExportOptions:
    """How to run an export.

    ``parallel`` bounds concurrent downloads; ``delete_after`` DELETEs the job once everything
    is saved; ``delete_on_cancel`` DELETEs it on Ctrl-C; ``restart_expired`` starts a new export
    when the server no longer has the one being resumed; ``restart_stalled`` DELETEs a job whose
    progress stopped (``retry.stall_timeout``) and starts a new export; ``new`` never resumes
    (an unfinished export of the source is marked abandoned).
    """

    parallel: int = 4
    delete_after: bool = True
    delete_on_cancel: bool = True
    restart_expired: bool = False
    restart_stalled: bool = False
    new: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not 1 <= self.parallel <= 64:
            raise ConfigurationError(f"parallel must be between 1 and 64, not {self.parallel}")


@dataclass(frozen=True)
class ExportResult:
    """What a finished export saved, and what the server reported in ``error[]``."""

    source: str
    export_id: str
    directory: Path
    manifest: Manifest
    files: tuple[FileRecord, ...]
    issues: tuple[OutcomeIssue, ...]
    downloaded: int
    reused: int
    resumed: bool
    job_deleted: bool
    elapsed: float

    @property
    def transaction_time(self) -> str:
        """The manifest's transactionTime: the ``_since`` of the next incremental export."""
        return self.manifest.transaction_time

    @property
    def resources(self) -> Mapping[str, int]:
        """Resources saved per type (``output[]`` files only)."""
        counts: dict[str, int] = {}
        for record in self.files:
            if record.kind == "output":
                counts[record.type] = counts.get(record.type, 0) + record.lines
        return counts

    @property
    def bytes(self) -> int:
        """Bytes saved (decoded NDJSON), all kinds together."""
        return sum(record.bytes for record in self.files)


@dataclass(frozen=True)
class _Planned:
    name: str
    kind: FileKind
    file: ManifestFile


class Exporter:
    """Runs one source's export into ``<lake>/bronze/<source>/<export id>/``, resumably.

    Example::

        exporter = Exporter(source="hospital-a", request=ExportRequest(base_url=url),
                            lake=Path(".fhirlake"), auth=BearerTokenAuth(token))
        result = asyncio.run(exporter.run())
        print(result.resources, result.transaction_time)
    """

    def __init__(
        self,
        *,
        source: str,
        request: ExportRequest,
        lake: Path,
        auth: httpx.Auth | None = None,
        options: ExportOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_event: EventHandler | None = None,
    ) -> None:
        self.source = source
        self.request = request
        self.options = options or ExportOptions()
        self.layout = BronzeLayout(lake, source)
        self.watermarks = WatermarkStore(lake)
        self._auth = auth
        self._transport = transport
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._on_event: EventHandler = on_event or ignore_event

    async def run(self) -> ExportResult:
        """Run (or continue) the export; returns once every file is saved and checked."""
        started = self._monotonic()
        deadline = deadline_at(self.options.retry, now=started)
        client = AsyncBulkClient(
            auth=self._auth,
            retry=self.options.retry,
            transport=self._transport,
            max_connections=self.options.parallel + 1,
            clock=self._clock,
            monotonic=self._monotonic,
            sleep=self._sleep,
            on_event=self._on_event,
        )
        async with client:
            export_dir = self._resumable()
            restarted = False
            while True:
                resumed = export_dir is not None
                if export_dir is None:
                    export_dir = self._create()
                try:
                    return await self._run_one(
                        client, export_dir, deadline, started=started, resumed=resumed
                    )
                except ExportExpiredError as exc:
                    if not self.options.restart_expired or restarted:
                        raise
                    export_dir.journal.append("abandoned", reason=str(exc), at=self._clock())
                    self._on_event(ExportAbandoned(export_dir.export_id, str(exc)))
                    export_dir, restarted = None, True
                except ExportStalledError as exc:
                    if not self.options.restart_stalled or restarted:
                        raise ExportStalledError(
                            f"export {export_dir.export_id} of source {self.source!r}: {exc}",
                            url=exc.url,
                        ) from exc
                    await self._abandon_stalled(client, export_dir, exc)
                    export_dir, restarted = None, True

    # ------------------------------------------------------------------ steps

    async def _abandon_stalled(
        self, client: AsyncBulkClient, export_dir: ExportDir, exc: ExportStalledError
    ) -> None:
        """DELETE the stalled job on the server (it may still hold resources) and give it up."""
        ok, reason = False, "no job"
        if exc.url:
            job = ExportJob(exc.url)
            ok, reason = await client.delete(job)
            self._on_event(JobDeleted(job.status_url, ok, reason))
        export_dir.journal.append("abandoned", reason=str(exc), job_deleted=ok, at=self._clock())
        self._on_event(ExportAbandoned(export_dir.export_id, str(exc)))

    def _resumable(self) -> ExportDir | None:
        unfinished = self.layout.latest_unfinished()
        if unfinished is None:
            return None
        state = unfinished.state()
        if self.options.new:
            unfinished.journal.append(
                "abandoned", reason="a new export was asked for", at=self._clock()
            )
            self._on_event(ExportAbandoned(unfinished.export_id, "a new export was asked for"))
            return None
        if state.fingerprint != self.request.fingerprint():
            raise ResumeConflictError(
                f"{unfinished.path}: an unfinished export of source {self.source!r} was started "
                "with a different request; run with --new to abandon it and start afresh"
            )
        return unfinished

    def _create(self) -> ExportDir:
        export_dir = self.layout.create(now=self._clock())
        export_dir.journal.append(
            "created",
            request=self.request.to_json(),
            fingerprint=self.request.fingerprint(),
            source=self.source,
            at=self._clock(),
        )
        return export_dir

    async def _run_one(
        self,
        client: AsyncBulkClient,
        export_dir: ExportDir,
        deadline: float | None,
        *,
        started: float,
        resumed: bool,
    ) -> ExportResult:
        state = export_dir.state()
        job = ExportJob(state.status_url) if state.status_url else None
        try:
            if export_dir.manifest_path.exists():
                manifest = export_dir.load_manifest()
                if state.status != "manifest":  # saved just before a crash, not yet journaled
                    export_dir.journal.append(
                        "manifest",
                        transaction_time=manifest.transaction_time,
                        expires=None,
                        at=self._clock(),
                    )
            else:
                if job is None:
                    job = await client.kick_off(self.request, deadline_at=deadline)
                    export_dir.journal.append(
                        "kicked_off", status_url=job.status_url, at=self._clock()
                    )
                self._on_event(KickedOff(job.status_url, export_dir.export_id, resumed=resumed))
                completed = await client.wait(job, deadline_at=deadline)
                export_dir.save_manifest(completed.raw)
                manifest = completed.manifest
                export_dir.journal.append(
                    "manifest",
                    transaction_time=manifest.transaction_time,
                    expires=completed.expires,
                    at=self._clock(),
                )
            records, downloaded, reused = await self._download_all(
                client, export_dir, manifest, deadline
            )
        except asyncio.CancelledError:
            await self._cancel(client, export_dir, job)
            raise
        issues = _read_issues(export_dir, records)
        export_dir.journal.append(
            "completed", transaction_time=manifest.transaction_time, at=self._clock()
        )
        self.watermarks.set(
            self.source, transaction_time=manifest.transaction_time, export_id=export_dir.export_id
        )
        job_deleted = False
        if job is not None and self.options.delete_after:
            job_deleted, reason = await client.delete(job)
            export_dir.journal.append(
                "job_deleted", ok=job_deleted, reason=reason, at=self._clock()
            )
            self._on_event(JobDeleted(job.status_url, job_deleted, reason))
        return ExportResult(
            source=self.source,
            export_id=export_dir.export_id,
            directory=export_dir.path,
            manifest=manifest,
            files=tuple(records),
            issues=issues,
            downloaded=downloaded,
            reused=reused,
            resumed=resumed,
            job_deleted=job_deleted,
            elapsed=self._monotonic() - started,
        )

    async def _cancel(
        self, client: AsyncBulkClient, export_dir: ExportDir, job: ExportJob | None
    ) -> None:
        """On Ctrl-C: DELETE the job (when asked) and mark the export cancelled."""
        ok, reason = False, "not deleted"
        if job is not None and self.options.delete_on_cancel:
            ok, reason = await asyncio.shield(client.delete(job))
            self._on_event(JobDeleted(job.status_url, ok, reason))
        export_dir.remove_partials()
        export_dir.journal.append("cancelled", job_deleted=ok, reason=reason, at=self._clock())

    async def _download_all(
        self,
        client: AsyncBulkClient,
        export_dir: ExportDir,
        manifest: Manifest,
        deadline: float | None,
    ) -> tuple[list[FileRecord], int, int]:
        export_dir.remove_partials()
        saved = dict(export_dir.state().files)
        planned = [
            _Planned(name, kind, file) for name, kind, file in export_dir.planned_files(manifest)
        ]
        records: dict[str, FileRecord] = {}
        todo: list[_Planned] = []
        for item in planned:
            record = self._already_saved(export_dir, item, saved.get(item.name))
            if record is None:
                todo.append(item)
            else:
                records[item.name] = record
        counts = [file.count for file in manifest.output]
        expected = (
            sum(c for c in counts if c is not None) if all(c is not None for c in counts) else None
        )
        self._on_event(ManifestSaved(manifest, len(todo), len(records), expected))
        for record in records.values():
            self._on_event(
                FileDone(
                    record.name, record.kind, record.type, record.lines, record.bytes, reused=True
                )
            )

        semaphore = asyncio.Semaphore(self.options.parallel)
        failures: list[tuple[_Planned, BulkError]] = []

        async def fetch(item: _Planned) -> None:
            async with semaphore:
                try:
                    result = await client.download(
                        item.file,
                        export_dir.path / item.name,
                        requires_token=manifest.requires_access_token,
                        deadline_at=deadline,
                        name=item.name,
                        check_count=item.kind == "output",
                    )
                except (DownloadError, BulkNetworkError) as exc:
                    failures.append((item, exc))
                    return
            record = FileRecord(
                item.name,
                item.kind,
                item.file.type,
                item.file.url,
                result.lines,
                result.bytes,
                result.sha256,
            )
            export_dir.journal.append("file", **_record_json(record), at=self._clock())
            records[item.name] = record
            self._on_event(
                FileDone(record.name, record.kind, record.type, record.lines, record.bytes)
            )

        try:
            async with asyncio.TaskGroup() as group:
                for item in todo:
                    group.create_task(fetch(item))
        except BaseExceptionGroup as errors:
            raise _first_error(errors) from None
        if failures:
            item, first = failures[0]
            raise DownloadError(
                f"{len(failures)} of {len(planned)} files could not be downloaded "
                f"(first: {item.name}: {first}); the {len(records)} saved files are kept, "
                "run the same command again to fetch only the missing ones"
            ) from first
        ordered = [records[item.name] for item in planned]
        return ordered, len(todo), len(planned) - len(todo)

    def _already_saved(
        self, export_dir: ExportDir, item: _Planned, record: FileRecord | None
    ) -> FileRecord | None:
        """The record of a file saved by an earlier run, or None when it must be downloaded.

        A file under its final name is complete (it is renamed only after checks); one renamed
        just before a crash has no journal entry yet, so it is measured and journaled now.
        Only ``output[]`` files are held to the manifest's count: the lines of ``error[]`` and
        ``deleted[]`` files are OperationOutcomes and Bundles, not the resources counted.
        """
        path = export_dir.path / item.name
        if not path.is_file():
            return None
        if record is not None and path.stat().st_size == record.bytes:
            return record
        result = inspect_file(path)
        if (
            item.kind == "output"
            and item.file.count is not None
            and result.lines != item.file.count
        ):
            raise BulkError(
                f"{path}: holds {result.lines} lines, the manifest says {item.file.count}"
            )
        record = FileRecord(
            item.name,
            item.kind,
            item.file.type,
            item.file.url,
            result.lines,
            result.bytes,
            result.sha256,
        )
        export_dir.journal.append("file", **_record_json(record), at=self._clock())
        return record


def _record_json(record: FileRecord) -> dict[str, object]:
    return {
        "name": record.name,
        "kind": record.kind,
        "type": record.type,
        "url": record.url,
        "lines": record.lines,
        "bytes": record.bytes,
        "sha256": record.sha256,
    }


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first non-cancellation error of a task group (the one that stopped the others)."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]


def _read_issues(export_dir: ExportDir, records: list[FileRecord]) -> tuple[OutcomeIssue, ...]:
    """The OperationOutcome issues of the saved ``error[]`` files, line by line."""
    issues: list[OutcomeIssue] = []
    for record in records:
        if record.kind != "error":
            continue
        with open(export_dir.path / record.name, "rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    found = outcome_issues(json.loads(line))
                except ValueError:
                    found = (
                        OutcomeIssue("error", "invalid", f"{record.name}: a line is not JSON"),
                    )
                issues.extend(found)
    return tuple(issues)


def export(
    *,
    source: str,
    request: ExportRequest,
    lake: Path,
    auth: httpx.Auth | None = None,
    options: ExportOptions | None = None,
    on_event: EventHandler | None = None,
) -> ExportResult:
    """Run :class:`Exporter` to completion from synchronous code (a script, a Dagster asset)."""
    exporter = Exporter(
        source=source, request=request, lake=lake, auth=auth, options=options, on_event=on_event
    )
    return asyncio.run(exporter.run())
