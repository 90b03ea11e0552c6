"""Crash and cancel: ``kill -9`` mid-export then resume, and Ctrl-C, with the CLI in a subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fhirlake.bulk import Exporter, ExportOptions, ExportRequest, read_export
from fhirlake.bulk._layout import ExportDir
from fhirlake.bulkserver import BackgroundServer, Faults
from tests.bulk.helpers import FAST_RETRY, read_resources, source_counts

pytestmark = pytest.mark.live
Start = Callable[..., BackgroundServer]
TYPES = ("Patient", "Condition", "Encounter", "Organization")


def start_cli_export(server: BackgroundServer, lake: Path, *extra: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "fhirlake", "export", "--url", server.base_url, "--name", "s"]
    command += ["--lake", str(lake), "--quiet", *extra]
    with open(lake.parent / "cli-stderr.txt", "wb") as stderr:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)


def journal_of(lake: Path) -> Path | None:
    found = list((lake / "bronze" / "s").glob("*/state.jsonl"))
    return found[0] if found else None


def wait_for(condition: Callable[[], bool], *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the export to get there")
        time.sleep(0.05)


def journal_has(lake: Path, text: str, at_least: int = 1) -> bool:
    journal = journal_of(lake)
    return journal is not None and journal.read_text().count(text) >= at_least


def resume(server: BackgroundServer, lake: Path, types: tuple[str, ...] = TYPES) -> Exporter:
    request = ExportRequest(base_url=server.base_url, types=types)
    return Exporter(source="s", request=request, lake=lake, options=ExportOptions(retry=FAST_RETRY))


def test_kill_9_during_downloads_then_resume_fetches_only_what_is_missing(
    synthea_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    # Throttled so the kill lands mid-download: about 20 files of 80 kB at 250 kB/s each.
    server = live_server(synthea_dir, lines_per_file=100, faults=Faults(bytes_per_second=250_000))
    lake = tmp_path / "lake"
    process = start_cli_export(server, lake, "--type", ",".join(TYPES), "--parallel", "2")
    try:
        wait_for(lambda: journal_has(lake, '"event":"file"', at_least=4))
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL

    journal = journal_of(lake)
    assert journal is not None
    export_dir = ExportDir(journal.parent)
    manifest = export_dir.load_manifest()
    planned = export_dir.planned_files(manifest)
    saved_before = {file.url for name, _, file in planned if (export_dir.path / name).is_file()}
    assert 4 <= len(saved_before) < len(planned)
    requests_before = len(server.state.requests("GET", path_contains="/_bulk/files/"))
    server.state.faults = Faults()  # lift the throttle for the resumed run

    result = asyncio.run(resume(server, lake).run())

    assert result.resumed and result.export_id == export_dir.export_id
    assert result.reused == len(saved_before)
    assert result.downloaded == len(planned) - len(saved_before)
    fetched_after = [
        r.path
        for r in server.state.requests("GET", path_contains="/_bulk/files/")[requests_before:]
    ]
    expected_paths = sorted(
        file.url.split(server.base_url, 1)[1]
        for _, _, file in planned
        if file.url not in saved_before
    )
    assert (
        sorted(p.removeprefix("/fhir") for p in fetched_after) == expected_paths
    )  # each missing file once
    assert (
        len(server.state.requests("GET", path_contains="/$export")) == 1
    )  # the same job, not a new one
    saved = read_resources(result.directory)
    expected = {t: n for t, n in source_counts(synthea_dir).items() if t in TYPES}
    assert {t: len(rs) for t, rs in saved.items()} == expected
    for resources in saved.values():
        assert len({r["id"] for r in resources}) == len(resources)
    assert not list(result.directory.rglob("*.part"))
    assert read_export(result.directory).status == "completed"


def test_kill_9_while_polling_continues_the_same_job(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    server = live_server(small_dir, job_seconds=1.5, retry_after=0)
    lake = tmp_path / "lake"
    process = start_cli_export(server, lake, "--type", "Patient")
    try:
        wait_for(lambda: journal_has(lake, '"event":"kicked_off"'))
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    result = asyncio.run(resume(server, lake, types=("Patient",)).run())
    assert result.resumed
    assert len(server.state.requests("GET", path_contains="/$export")) == 1
    assert result.resources == {"Patient": 6}


def test_ctrl_c_cancels_the_export_and_deletes_the_job(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    server = live_server(small_dir, job_seconds=60, retry_after=1)
    lake = tmp_path / "lake"
    process = start_cli_export(server, lake)
    try:
        wait_for(lambda: journal_has(lake, '"event":"kicked_off"'))
        time.sleep(0.2)  # let it start polling
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    stderr = (tmp_path / "cli-stderr.txt").read_text()
    assert process.returncode == 130, stderr
    assert "aborted" in stderr
    assert server.state.requests("DELETE", path_contains="/_bulk/jobs/", status=202)
    journal = journal_of(lake)
    assert journal is not None
    state = read_export(journal.parent)
    assert state.status == "cancelled"
    assert '"job_deleted":true' in journal.read_text().splitlines()[-1]
