"""``fhirlake export`` and ``fhirlake serve-bulk`` as a person runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from fhirlake.bulk import WatermarkStore, list_exports
from fhirlake.bulkserver import BackgroundServer
from fhirlake.cli import main

pytestmark = pytest.mark.live
Start = Callable[..., BackgroundServer]


def test_export_by_url_prints_a_summary_and_fills_the_lake(
    small_dir: Path, live_server: Start, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = live_server(small_dir)
    lake = tmp_path / "lake"
    code = main(
        ["export", "--url", server.base_url, "--name", "local", "--lake", str(lake), "--quiet"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Observation" in out and "30" in out and "total" in out
    assert "job deleted on the server" in out
    [state] = list_exports(lake, "local")
    assert state.status == "completed"
    assert WatermarkStore(lake).get("local") == state.transaction_time


def test_since_auto_from_a_sources_file_uses_the_watermark(
    small_dir: Path, live_server: Start, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = live_server(small_dir)
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        f"sources:\n  clinic:\n    url: {server.base_url}\n    types: [Patient]\n    since: auto\n"
    )
    lake = tmp_path / "lake"
    args = ["export", "--source", "clinic", "--sources", str(sources), "--lake", str(lake)]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "exporting everything" in first
    assert main(args) == 0
    second = capsys.readouterr().out
    watermark = list_exports(lake, "clinic")[0].transaction_time
    assert f"exporting changes since {watermark}" in second
    kickoffs = server.state.requests("GET", path_contains="/$export")
    assert len(kickoffs) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--url", "http://127.0.0.1:9/fhir", "--since", "last tuesday"],
            "_since 'last tuesday' is not a FHIR instant",
        ),
        (["--source", "nope"], "no source named 'nope' (known: a)"),
        (["--url", "ftp://x"], "must start with http:// or https://"),
        (["--source", "a", "--url", "http://x"], "give exactly one of --source NAME or --url URL"),
    ],
)
def test_bad_input_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n  a:\n    url: http://127.0.0.1:9/fhir\n")
    code = main(["export", "--sources", str(sources), "--lake", str(tmp_path / "lake"), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert not (tmp_path / "lake").exists()  # nothing started, nothing written


def test_an_unreachable_server_is_reported_after_retries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "export",
            "--url",
            "http://127.0.0.1:9/fhir",
            "--lake",
            str(tmp_path),
            "--quiet",
            "--timeout",
            "0.5",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("fhirlake: error: kick-off http://127.0.0.1:9/fhir/$export:")
    assert err.count("\n") == 1


def test_serve_bulk_serves_a_folder_until_stopped(small_dir: Path, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "fhirlake",
        "serve-bulk",
        str(small_dir),
        "--port",
        "0",
        "--fault",
        "file_500=1",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        base_url = first_line.split(" at ", 1)[1].split()[0]
        assert base_url.startswith("http://127.0.0.1:")
        deadline = time.monotonic() + 10
        while True:
            try:
                metadata = httpx.get(f"{base_url}/metadata", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert metadata.json()["resourceType"] == "CapabilityStatement"
        lake = tmp_path / "lake"
        code = main(["export", "--url", base_url, "--name", "cli", "--lake", str(lake), "--quiet"])
        assert code == 0
        [state] = list_exports(lake, "cli")
        counts = {r.type: r.lines for r in state.files.values()}
        assert counts == {"Observation": 30, "Organization": 1, "Patient": 6}
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_serve_bulk_rejects_unknown_faults(
    small_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["serve-bulk", str(small_dir), "--fault", "file_501=1"])
    assert code == 2
    assert "use NAME=NUMBER with NAME one of" in capsys.readouterr().err


def test_manifest_is_saved_byte_for_byte(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    server = live_server(small_dir)
    lake = tmp_path / "lake"
    assert (
        main(
            [
                "export",
                "--url",
                server.base_url,
                "--name",
                "m",
                "--lake",
                str(lake),
                "--quiet",
                "--keep-job",
            ]
        )
        == 0
    )
    [state] = list_exports(lake, "m")
    manifest = json.loads((state.path / "manifest.json").read_bytes())
    assert manifest["extension"]  # unknown fields are kept on disk, ignored by the client
    assert not state.job_deleted and not server.state.requests("DELETE")
