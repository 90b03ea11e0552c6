"""fhirlake run --url: export → pseudonymise → scan → ingest, end to end (issue 15, point 1)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhirlake.bulkserver import BackgroundServer, BulkServerConfig
from tests.chain_attacks.support import (
    assert_refused,
    cli,
    lake_fingerprint,
    lines_by_type,
    read_lines,
    silver_counts,
    status_line,
)

BAD_LINES = 20


def run(url: str, lake: Path, *extra: str):
    return cli("run", "--url", url, "--name", "hospital", "--lake", lake, "--no-text",
               "--workers", "1", *extra)


@pytest.fixture(scope="module")
def served(raw_batch: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("run-served") / "data"
    shutil.copytree(raw_batch, data)
    (data / "truth.json").unlink()
    with BackgroundServer(BulkServerConfig(data_dir=data)) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def served_dirty(raw_batch: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same batch with BAD_LINES unreadable Observation lines (over 1% of the records)."""
    data = tmp_path_factory.mktemp("run-dirty") / "data"
    shutil.copytree(raw_batch, data)
    (data / "truth.json").unlink()
    (data / "manifest.json").unlink()
    with (data / "Observation.ndjson").open("a") as handle:
        handle.write("{not json\n" * BAD_LINES)
    with BackgroundServer(BulkServerConfig(data_dir=data)) as server:
        yield server.base_url


def patient_strings(raw: Path) -> list[str]:
    """Each raw patient's id, names, identifier values, phone/e-mail and address lines."""
    found: set[str] = set()
    for line in read_lines(raw / "Patient.ndjson"):
        patient = json.loads(line)
        found.add(patient["id"])
        for name in patient.get("name", []):
            found.update([name.get("family", ""), *name.get("given", [])])
        found.update(i.get("value", "") for i in patient.get("identifier", []))
        found.update(t.get("value", "") for t in patient.get("telecom", []))
        for address in patient.get("address", []):
            found.update(address.get("line", []))
    return sorted(s for s in found if len(s) >= 4)


def hits(lake: Path, schema: str, table: str, needles: list[str]) -> int:
    """Rows of schema.table holding any needle, through fhirlake sql."""
    condition = " OR ".join(
        "contains(lower(CAST(t AS VARCHAR)), '{}')".format(n.lower().replace("'", "''"))
        for n in needles)
    query = f"SELECT 'HITS=' || count(*) AS h FROM {schema}.\"{table}\" t WHERE {condition}"
    result = cli("sql", query, "--lake", lake)
    assert result.code == 0, str(result)
    (count,) = [word.split("=")[1].strip("│ ") for word in result.out.split() if "HITS=" in word]
    return int(count)


def tables(lake: Path, schema: str) -> list[str]:
    import fhirlake
    frame = fhirlake.connect(lake).sql(
        f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}'")
    return frame["table_name"].to_list()


def test_run_url_end_to_end_loses_nothing_and_leaks_nothing(
        served: str, raw_batch: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    result = run(served, lake)
    assert result.code == 0, str(result)
    assert silver_counts(lake) == lines_by_type(raw_batch)
    assert "RAW" not in status_line(lake, "hospital")
    needles = patient_strings(raw_batch)
    assert len(needles) >= 9, needles
    gold = tables(lake, "gold")
    assert "patient" in gold and "observation" in gold, gold
    assert hits(lake, "gold", "patient", ["male"]) > 0, "the search finds nothing at all"
    leaks = {f"gold.{t}": n for t in gold if (n := hits(lake, "gold", t, needles))}
    leaks |= {f"silver.{t}": n for t in tables(lake, "silver")
              if (n := hits(lake, "silver", t, needles))}
    assert not leaks, f"raw patient strings in the lake: {leaks}"


def test_run_keeps_a_batch_over_the_quarantine_rate_out_of_the_lake(
        served_dirty: str, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    result = run(served_dirty, lake)
    assert lake_fingerprint(lake) in ((), ((), None)), f"a blocked batch reached the lake:\n{result}"
    assert_refused(result, "quarantine")


def test_run_with_a_higher_threshold_ingests_the_readable_records(
        served_dirty: str, raw_batch: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    result = run(served_dirty, lake, "--max-quarantine-rate", "0.2")
    assert result.code == 0, str(result)
    assert silver_counts(lake) == lines_by_type(raw_batch)
