"""A process killed mid-merge leaves a readable lake, and replaying the export converges."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable

import fhirlake
from fhirlake.lake import Lake, connect
from fhirlake.lake._ingest import KILL_ENV
from tests.lake import helpers
from tests.lake.conftest import Exports

_INGEST = "import sys, fhirlake; fhirlake.connect(sys.argv[1], read_only=False, views=sys.argv[3]).ingest(sys.argv[2], source='hospital-a', allow_raw=True)"


def _ingest_killed_at(step: str, root: Path, folder: Path, views: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _INGEST, str(root), str(folder), str(views)],
                          env={**os.environ, KILL_ENV: step}, capture_output=True, text=True, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr


def _assert_readable(root: Path, snapshot: int) -> None:
    """The catalog opens at ``snapshot``; every Delta table reads at its current version."""
    reader = fhirlake.connect(root)
    assert reader.snapshot is not None and reader.snapshot.id == snapshot
    for name in helpers.tables_of(reader):
        reader.sql(f"SELECT count(*) FROM {name}")
    for log in root.glob("*/*/_delta_log"):
        files = DeltaTable(str(log.parent)).file_uris()
        if files:
            duckdb.sql(f"SELECT count(*) FROM read_parquet({files!r})").fetchall()


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, exports: Exports, views: Path) -> Lake:
    lake = connect(tmp_path_factory.mktemp("clean"), read_only=False, views=views)
    lake.ingest(exports.full, source="hospital-a", allow_raw=True)
    lake.ingest(exports.incremental, source="hospital-a", allow_raw=True)
    return lake


def _same_tables(a: Lake, b: Lake) -> None:
    assert helpers.tables_of(a) == helpers.tables_of(b)
    for name in helpers.tables_of(a):
        drop = ["export_id"] if name.startswith("silver.") else []
        assert helpers.table_rows(a, name, drop=drop).equals(helpers.table_rows(b, name, drop=drop)), name


@pytest.mark.parametrize("step", ["gold:observation", "silver:Observation", "snapshot"])
def test_killed_mid_merge_then_replayed(step: str, clean: Lake, exports: Exports, views: Path, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    connect(root, read_only=False, views=views).ingest(exports.full, source="hospital-a", allow_raw=True)
    _ingest_killed_at(step, root, exports.incremental, views)
    _assert_readable(root, snapshot=1)
    lake = connect(root, read_only=False, views=views)
    report = lake.ingest(exports.incremental, source="hospital-a", allow_raw=True)
    assert report.snapshot_id == 2
    _same_tables(lake, clean)


def test_another_export_after_a_crash_repairs_gold_first(exports: Exports, views: Path, tmp_path: Path) -> None:
    other = helpers.write_export(tmp_path / "other", [helpers.patient("p7", "2025-07-03T00:00:00Z")],
                                 transaction_time="2025-07-03T00:00:00Z")
    root = tmp_path / "lake"
    connect(root, read_only=False, views=views).ingest(exports.full, source="hospital-a", allow_raw=True)
    _ingest_killed_at("gold:observation", root, exports.incremental, views)
    lake = connect(root, read_only=False, views=views)
    report = lake.ingest(other, source="hospital-a", allow_raw=True)
    assert report.gold["observation"].rebuilt  # committed by the run that was killed
    expected = connect(tmp_path / "expected", read_only=False, views=views)
    expected.ingest(exports.full, source="hospital-a", allow_raw=True)
    expected.ingest(other, source="hospital-a", allow_raw=True)
    _same_tables(lake, expected)
