"""``fhirlake run``: the chain by hand against a real loopback Bulk server, with the blocking checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fhirlake
from fhirlake.chain import stages
from fhirlake.cli import main


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("FHIRLAKE_PSEUDONYM_KEY", key)


def _run(url: str, lake: Path, *extra: str) -> int:
    return main(["run", "--url", url, "--name", "site-a", "--lake", str(lake), "--no-text", "--workers", "1",
                 *extra])


def test_run_chains_export_pseudonymise_scan_ingest_and_resumes(
        tmp_path: Path, servers: dict[str, str], hospitals: dict[str, Path], env: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    lake = tmp_path / "lake"
    assert _run(servers["site-a"], lake, "--full") == 0
    out = capsys.readouterr().out
    for stage in ("export", "pseudonymise", "checks", "ingest", "total"):
        assert any(line.startswith(stage) and " s  " in line for line in out.splitlines()), (stage, out)
    patients = sum(1 for line in (hospitals["site-a"] / "Patient.ndjson").read_text().splitlines() if line.strip())
    with fhirlake.connect(lake) as opened:
        assert opened.sql("SELECT count(*) AS n FROM gold.patient")["n"][0] == patients
        status = "\n".join(opened.status().lines())
    assert "RAW DATA" not in status  # pseudonymised all the way
    raw_ids = {json.loads(line)["id"] for line in (hospitals["site-a"] / "Patient.ndjson").read_text().splitlines()
               if line.strip()}
    with fhirlake.connect(lake) as opened:
        ids = set(opened.sql("SELECT patient_id FROM gold.patient")["patient_id"].to_list())
    assert ids and not ids & raw_ids  # keyed pseudonyms, not the server's ids
    # a second run (incremental) finds no change: the earlier batch is not redone or re-ingested
    assert _run(servers["site-a"], lake) == 0
    assert "nothing new" in capsys.readouterr().out
    assert len(stages.pseudonymised_batches(lake, "site-a")) == 1
    with fhirlake.connect(lake) as opened:
        assert opened.sql("SELECT count(*) AS n FROM gold.patient")["n"][0] == patients


def _with_intruders(hospital: Path, folder: Path) -> Path:
    """A copy of a hospital whose Observation file holds one Patient in ten lines (quarantined)."""
    folder.mkdir()
    for name in ("Patient.ndjson", "Observation.ndjson"):
        (folder / name).write_bytes((hospital / name).read_bytes())
    lines = (hospital / "Observation.ndjson").read_text().splitlines()
    with (folder / "Observation.ndjson").open("a") as handle:
        for number in range(max(1, len(lines) // 10)):
            handle.write(json.dumps({"resourceType": "Patient", "id": f"intruder-{number}"}) + "\n")
    return folder


def test_run_keeps_a_batch_that_fails_a_check_out_of_the_lake(
        tmp_path: Path, hospitals: dict[str, Path], env: None, capsys: pytest.CaptureFixture[str]) -> None:
    from fhirlake.bulkserver import BackgroundServer, BulkServerConfig

    data = _with_intruders(hospitals["site-a"], tmp_path / "data")
    lake = tmp_path / "lake"
    with BackgroundServer(BulkServerConfig(data_dir=data)) as server:
        assert _run(server.base_url, lake, "--full") == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "kept out of the lake: quarantine_rate:" in error
    folder = stages.pseudonymised_batches(lake, "site-a")[0]
    assert stages.blocked_reason(folder) is not None
    assert not (lake / "catalog.duckdb").exists()  # nothing reached silver or gold
    with pytest.raises(stages.BlockedBatchError):
        stages.ingest_pending(lake, "site-a")


def test_pseudonymize_exits_non_zero_when_records_are_lost(tmp_path: Path, hospitals: dict[str, Path], env: None,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    raw = _with_intruders(hospitals["site-a"], tmp_path / "raw")
    code = main(["pseudonymize", str(raw), str(tmp_path / "out"), "--no-text", "--workers", "1"])
    captured = capsys.readouterr()
    assert code == 1
    assert "quarantine_rate:" in captured.err and "threshold 1.0%" in captured.err
    assert len([line for line in captured.err.splitlines() if line.startswith("fhirlake:")]) == 1
    # a looser threshold lets it through, with the same counts
    assert main(["pseudonymize", str(raw), str(tmp_path / "out2"), "--no-text", "--workers", "1",
                 "--max-quarantine-rate", "0.5"]) == 0


def test_a_misnamed_file_stops_pseudonymize_and_ingest(tmp_path: Path, hospitals: dict[str, Path], env: None,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "Patient.ndjson").write_bytes((hospitals["site-a"] / "Patient.ndjson").read_bytes())
    (raw / "Observations.ndjson").write_bytes((hospitals["site-a"] / "Observation.ndjson").read_bytes())
    assert main(["pseudonymize", str(raw), str(tmp_path / "out"), "--no-text", "--workers", "1"]) == 2
    assert "did you mean Observation?" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main(["lake", "ingest", str(raw), "--source", "x", "--lake", str(tmp_path / "lake"), "--allow-raw"]) == 2
    assert "Observations.ndjson" in capsys.readouterr().err
