"""The faults real servers show (issue #15, point 7), reproduced against the embedded server.

Each test injects one fault on a real HTTP server on 127.0.0.1 and checks what the exporter
does: finish when the export can finish, or stop with a one-line error that names the job
and shows what the server said.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fhirlake.bulk import (
    BearerTokenAuth,
    BulkTimeoutError,
    DownloadError,
    Exporter,
    ExportOptions,
    ExportRequest,
    ExportResult,
    ExportStalledError,
    KickoffError,
    RetryPolicy,
    read_export,
)
from fhirlake.bulkserver import BackgroundServer, ClientRegistration, Faults, ServerAuth
from tests.bulk.helpers import FAST_RETRY, source_counts

pytestmark = pytest.mark.live
Start = Callable[..., BackgroundServer]


class SteppedTime:
    """A monotonic clock that only moves when the exporter sleeps (sleeps are recorded, not slept),
    plus ``tick`` seconds per reading so that a tight poll loop still sees time pass."""

    def __init__(self, tick: float = 0.0) -> None:
        self.now = 1000.0
        self.tick = tick
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        self.now += self.tick
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def export(
    server: BackgroundServer,
    lake: Path,
    *,
    retry: RetryPolicy = FAST_RETRY,
    time: SteppedTime | None = None,
    auth: Any = None,
    **options: Any,
) -> ExportResult:
    kwargs: dict[str, Any] = {}
    if time is not None:
        kwargs = {"monotonic": time.monotonic, "sleep": time.sleep}
    exporter = Exporter(
        source="t",
        request=ExportRequest(base_url=server.base_url, **options.pop("request", {})),
        lake=lake,
        auth=auth,
        options=ExportOptions(retry=retry, **options),
        **kwargs,
    )
    return asyncio.run(exporter.run())


def test_error_and_deleted_files_are_not_held_to_output_counts(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    """The manifest's count of an error[] or deleted[] file is not its lines (reference servers
    count the resources concerned): the export still finishes, and the diagnostics are shown."""
    server = live_server(small_dir, faults=Faults(error_entries=2, aux_count_offset=5))
    lake = tmp_path / "lake"
    first = export(server, lake)
    assert first.manifest.error[0].count == 7
    assert [issue.text for issue in first.issues] == [
        "injected fault 1: a resource could not be exported",
        "injected fault 2: a resource could not be exported",
    ]
    since = first.transaction_time
    (small_dir / "deleted.ndjson").write_text(
        '{"type": "Patient", "id": "p1", "deleted": "2999-01-01T00:00:00Z"}\n', encoding="utf-8"
    )
    second = export(server, lake, request={"since": since})
    deleted = [r for r in second.files if r.kind == "deleted"]
    assert deleted and deleted[0].lines == 1 and second.manifest.deleted[0].count == 6
    assert read_export(second.directory).status == "completed"


def test_a_resumed_export_keeps_its_error_files_whatever_their_count(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    """The check of files already on disk (a resume) applies the same rule: no endless re-run."""
    server = live_server(small_dir, faults=Faults(error_entries=1, aux_count_offset=3))
    lake = tmp_path / "lake"
    result = export(server, lake, delete_after=False)
    journal = result.directory / "state.jsonl"
    lines = journal.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if '"completed"' not in line and '"error"' not in line]
    journal.write_text("\n".join(kept) + "\n", encoding="utf-8")  # as if killed before journaling
    again = export(server, lake)
    assert again.export_id == result.export_id and again.reused == len(result.files)
    assert len(again.issues) == 1


def test_a_stalled_job_is_a_clear_error_naming_it_and_can_be_restarted(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    server = live_server(small_dir, faults=Faults(stall_jobs=1))
    lake = tmp_path / "lake"
    retry = RetryPolicy(backoff_base=0.01, backoff_cap=0.05, deadline=None, stall_timeout=60)
    with pytest.raises(ExportStalledError) as caught:
        export(server, lake, retry=retry, time=SteppedTime(tick=1.0))
    message = str(caught.value)
    stalled = next((lake / "bronze" / "t").iterdir()).name
    job_id = next(iter(server.state.jobs))
    assert f"export {stalled} of source 't'" in message
    assert f"/_bulk/jobs/{job_id}" in message
    assert "no progress for" in message and "'42% complete'" in message
    assert "--restart-stalled" in message

    result = export(server, lake, retry=retry, time=SteppedTime(tick=1.0), restart_stalled=True)
    assert dict(result.resources) == {
        t: n for t, n in source_counts(small_dir).items() if t != "Group"
    }
    assert result.export_id != stalled
    assert read_export(lake / "bronze" / "t" / stalled).status == "abandoned"
    assert server.state.jobs[job_id].removed  # the stalled job was DELETEd on the server


def test_retry_after_in_epoch_milliseconds_is_read_as_such(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    server = live_server(small_dir, job_seconds=0.3, retry_after=1, retry_after_style="epoch-ms")
    time = SteppedTime()
    retry = RetryPolicy(deadline=600, max_retry_after=3600)
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:  # really wait, so the job gets done
        time.sleeps.append(seconds)
        await real_sleep(min(seconds, 0.2))

    time.sleep = sleep  # type: ignore[method-assign]
    result = export(server, tmp_path / "lake", retry=retry, time=time)
    assert result.resources
    assert time.sleeps and max(time.sleeps) <= 1.5  # not ~1.7e12 s capped to an hour


def test_every_wait_ends_by_the_deadline(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    server = live_server(small_dir, retry_after=3600, faults=Faults(stall_jobs=1))
    time = SteppedTime()
    retry = RetryPolicy(deadline=90, max_retry_after=3600, stall_timeout=None)
    with pytest.raises(BulkTimeoutError, match="deadline of 90 s has passed"):
        export(server, tmp_path / "lake", retry=retry, time=time)
    assert time.sleeps == [pytest.approx(90)]  # one wait, cut from an hour to what was left


def test_a_proxy_refusing_the_kickoff_shows_its_page(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    server = live_server(small_dir, faults=Faults(kickoff_status=413))
    with pytest.raises(KickoffError) as caught:
        export(server, tmp_path / "lake")
    message = str(caught.value)
    assert "kick-off refused with 413" in message
    assert "server said: 413 Request Entity Too Large" in message
    assert "exceeds the proxy's limit of 8 KB" in message
    assert "<" not in message and "\n" not in message


def test_a_refused_token_shows_the_servers_outcome(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    registration = ClientRegistration(client_id="c", jwks={"keys": []})
    server = live_server(small_dir, auth=ServerAuth(clients=(registration,)))
    with pytest.raises(KickoffError) as caught:
        export(server, tmp_path / "lake", auth=BearerTokenAuth("not-a-token"))
    assert "refused with 401" in str(caught.value)
    assert "error/login: a valid bearer token is required" in str(caught.value)


def test_a_refused_download_shows_the_servers_text(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    server = live_server(small_dir, faults=Faults(file_status=403))
    with pytest.raises(DownloadError) as caught:
        export(server, tmp_path / "lake")
    assert "download refused with 403" in str(caught.value)
    assert "not allowed for this client" in str(caught.value)
