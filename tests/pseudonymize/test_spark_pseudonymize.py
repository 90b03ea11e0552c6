"""Pseudonymisation on Spark writes the single-machine run's bytes for the same key.

The input is the Synthea export with the cases that need care when files are cut into byte
ranges: lines that are not JSON (quarantined with their absolute line number), a blank line,
a gzip file (one task) and a Bundle whose fullUrls the first pass must share with every task.
Ranges are small (64 kB), so most lines of the big files sit near a range boundary.
"""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from pathlib import Path
from typing import Any

from fhirlake.pseudonymize import Policy, PseudonymKey
from fhirlake.pseudonymize.pipeline import pseudonymize
from fhirlake.pseudonymize.spark import pseudonymize_on_spark
from tests.conftest import shared_path

TODAY = dt.date(2025, 7, 1)


def _input(synthea_dir: Path, target: Path) -> Path:
    target.mkdir()
    for path in sorted(synthea_dir.glob("*.ndjson")):
        shutil.copy(path, target / path.name)
    observations = (target / "Observation.ndjson").read_bytes().split(b"\n")
    middle = len(observations) // 2
    observations[middle:middle] = [b'{"resourceType": "Observation", "id": "broken"', b"", b"not json at all"]
    (target / "Observation.ndjson").write_bytes(b"\n".join(observations))
    conditions = target / "Condition.ndjson"
    (target / "Condition.ndjson.gz").write_bytes(gzip.compress(conditions.read_bytes()))
    conditions.unlink()
    shutil.copy(shared_path("data", "pii-canary", "synthea-Carolee951.json"), target / "bundle.json")
    return target


def test_spark_writes_the_same_bytes_as_one_machine(
    synthea_dir: Path, tmp_path: Path, structured_policy: Policy, key: PseudonymKey, spark: Any
) -> None:
    source = _input(synthea_dir, tmp_path / "in")
    local, distributed = tmp_path / "local", tmp_path / "spark"
    expected = pseudonymize(source, local, structured_policy, key, workers=1, text=False, today=TODAY)
    got = pseudonymize_on_spark(spark, source, distributed, structured_policy, key, text=False, today=TODAY,
                                split_bytes=64 << 10)
    names = sorted(p.name for p in local.iterdir() if p.name != "privacy-report.json")
    assert names == sorted(p.name for p in distributed.iterdir() if p.name != "privacy-report.json")
    assert "quarantine.jsonl" in names and (local / "quarantine.jsonl").read_bytes().count(b"\n") == 2
    for name in names:
        assert (distributed / name).read_bytes() == (local / name).read_bytes(), name
    assert got.records_in == expected.records_in and got.records_out == expected.records_out
    assert got.patients == expected.patients > 0
    assert dict(got.out_by_type) == dict(expected.out_by_type)
    assert dict(got.in_by_type) == dict(expected.in_by_type)
    assert got.rule_stats == expected.rule_stats


def test_the_cli_runs_on_spark(synthea_dir: Path, tmp_path: Path, spark: Any) -> None:
    from click.testing import CliRunner

    from fhirlake.cli import cli

    source = tmp_path / "in"
    source.mkdir()
    for name in ("Patient.ndjson", "Encounter.ndjson"):
        shutil.copy(synthea_dir / name, source / name)
    key_file = tmp_path / "key"
    key_file.write_text("k" * 64)
    common = ["pseudonymize", str(source), "--key-file", str(key_file), "--no-text"]
    runner = CliRunner()
    local = runner.invoke(cli, [*common[:2], str(tmp_path / "local"), *common[2:]])
    distributed = runner.invoke(cli, [*common[:2], str(tmp_path / "spark"), *common[2:], "--engine", "spark"])
    assert local.exit_code == 0 and distributed.exit_code == 0, distributed.output
    for name in ("Patient.ndjson", "Encounter.ndjson"):
        assert (tmp_path / "spark" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    wrong = runner.invoke(cli, [*common[:2], str(tmp_path / "x"), *common[2:], "--master", "local[2]"])
    assert wrong.exit_code == 2 and "--master needs --engine spark" in wrong.output
