"""fhirlake export's bronze layout, fed straight to pseudonymize and lake ingest (issue 15, point 1)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.chain_attacks.support import (
    assert_refused,
    cli,
    lake_fingerprint,
    lines_by_type,
    report,
    silver_counts,
    status_line,
)


def test_bronze_export_to_lake_by_hand(bronze_export: Path, raw_batch: Path, views: Path,
                                       tmp_path: Path) -> None:
    out = tmp_path / "pseudo"
    result = cli("pseudonymize", bronze_export, out, "--no-text", "--workers", "1")
    assert result.code == 0, str(result)
    expected = lines_by_type(raw_batch)
    records = report(out)["records"]
    assert records["out_by_type"] == expected and records["quarantined"] == 0, records
    lake = tmp_path / "lake"
    result = cli("lake", "ingest", out, "--source", "hospital", "--lake", lake, "--views", views)
    assert result.code == 0, str(result)
    assert silver_counts(lake) == expected
    assert "RAW" not in status_line(lake, "hospital")


def test_bronze_file_emptied_after_download_is_refused(bronze_export: Path, tmp_path: Path) -> None:
    batch = tmp_path / "bronze"
    shutil.copytree(bronze_export, batch)
    (victim,) = (batch / "output" / "Observation").iterdir()
    victim.write_text("")
    result = cli("pseudonymize", batch, tmp_path / "out", "--no-text", "--workers", "1")
    assert_refused(result, victim.name, "manifest.json")
    assert not (tmp_path / "out" / "privacy-report.json").exists()


@pytest.mark.parametrize("command", ["pseudonymize", "lake ingest --allow-raw"])
def test_bronze_file_missing_is_refused(bronze_export: Path, views: Path, tmp_path: Path,
                                        command: str) -> None:
    """A file the export's manifest lists (and state.jsonl says was fetched) is gone."""
    batch = tmp_path / "bronze"
    shutil.copytree(bronze_export, batch)
    shutil.rmtree(batch / "output" / "Encounter")
    if command == "pseudonymize":
        result = cli("pseudonymize", batch, tmp_path / "out", "--no-text", "--workers", "1")
        assert not (tmp_path / "out" / "privacy-report.json").exists()
    else:
        result = cli("lake", "ingest", batch, "--source", "hospital", "--lake", tmp_path / "lake",
                     "--views", views, "--allow-raw")
        assert lake_fingerprint(tmp_path / "lake") in ((), ((), None)), str(result)
    assert_refused(result, "Encounter", "manifest.json")


def test_bronze_type_folder_misnamed_without_manifest(bronze_export: Path, raw_batch: Path,
                                                      tmp_path: Path) -> None:
    """output/Observations/0001.ndjson and no manifest: refused by name, or read whole."""
    batch = tmp_path / "bronze"
    shutil.copytree(bronze_export, batch)
    (batch / "manifest.json").unlink()
    (batch / "output" / "Observation").rename(batch / "output" / "Observations")
    out = tmp_path / "out"
    result = cli("pseudonymize", batch, out, "--no-text", "--workers", "1")
    if result.code != 0:
        # changed by: the journal's own file (output/Observation/0001.ndjson, now missing) is named too
        assert_refused(result, "Observations", "manifest.json", "Observation/0001.ndjson")
        return
    records = report(out)["records"]
    assert records["out_by_type"] == lines_by_type(raw_batch), f"records lost with exit 0: {records}"


def test_bronze_raw_ingest_into_the_same_lake_is_refused(bronze_export: Path, views: Path,
                                                         tmp_path: Path) -> None:
    """The export's own lake: lake ingest of its bronze batch, without --allow-raw."""
    lake = tmp_path / "lake"
    shutil.copytree(bronze_export.parents[2], lake)
    batch = lake / bronze_export.relative_to(bronze_export.parents[2])
    result = cli("lake", "ingest", batch, "--source", "hospital", "--lake", lake, "--views", views)
    assert_refused(result, "--allow-raw")
    assert lake_fingerprint(lake) in ((), ((), None))
