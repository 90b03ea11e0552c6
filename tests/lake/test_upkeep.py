"""Upkeep of a lake (issue #15, point 9): a removed view's gold table leaves the catalog, and
vacuum frees what no snapshot reads (an interrupted run's files) while every snapshot still opens."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fhirlake
from fhirlake.cli import main
from fhirlake.lake import UnknownTableError
from tests.lake.conftest import Exports


def counts(lake_root: Path) -> dict[int, int]:
    """Rows of gold.observation in every snapshot of the lake."""
    with fhirlake.connect(lake_root) as lake:
        ids = lake.sql("SELECT id FROM fhirlake.snapshots ORDER BY id")["id"].to_list()
    found = {}
    for snapshot in ids:
        with fhirlake.connect(lake_root, as_of=snapshot) as old:
            found[snapshot] = old.sql("SELECT count(*) FROM gold.observation").item()
    return found


def test_a_removed_views_table_leaves_the_catalog(tmp_path: Path, exports: Exports, views: Path) -> None:
    root = tmp_path / "lake"
    with fhirlake.connect(root, read_only=False, views=views) as lake:
        lake.ingest(exports.full, source="a", allow_raw=True)
    fewer = tmp_path / "fewer"
    shutil.copytree(views, fewer)
    (fewer / "encounter.json").unlink()
    with fhirlake.connect(root, read_only=False, views=fewer) as lake:
        report = lake.build()
        assert report.dropped == ("encounter",)
        assert any("dropped gold.encounter" in line for line in report.lines())
        with pytest.raises(fhirlake.lake.LakeError, match="encounter"):
            lake.sql("SELECT * FROM gold.encounter")
    with fhirlake.connect(root, as_of=1) as old:  # the earlier snapshot still has it
        assert old.sql("SELECT count(*) FROM gold.encounter").item() > 0
    with fhirlake.connect(root) as lake:
        with pytest.raises(UnknownTableError):
            lake.describe("gold.encounter")
        assert "gold.encounter" not in lake.tables()["name"].to_list()


def test_vacuum_frees_an_interrupted_runs_files_and_keeps_every_snapshot(
    tmp_path: Path, exports: Exports, views: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "lake"
    with fhirlake.connect(root, read_only=False, views=views) as lake:
        lake.ingest(exports.full, source="a", allow_raw=True)
        lake.ingest(exports.incremental, source="a", allow_raw=True)
        lake.optimize()  # replaced files stay: earlier snapshots read them
    before = counts(root)
    # what a killed run leaves: an uncommitted data file, its scratch folder, a temporary catalog
    orphan = root / "gold" / "observation" / "part-orphan.parquet"
    pq.write_table(pa.table({"x": [1]}), orphan)
    (root / "_fhirlake" / "work" / "run-1").mkdir(parents=True)
    (root / "_fhirlake" / "work" / "run-1" / "stage.parquet").write_bytes(b"x" * 10)
    (root / ".catalog-dead.duckdb").write_bytes(b"x")

    with fhirlake.connect(root, read_only=False) as lake:
        dry = lake.vacuum(dry_run=True)
        assert orphan.is_file()
        report = lake.vacuum()
    assert set(report.removed) == set(dry.removed) == {
        "gold/observation/part-orphan.parquet", "_fhirlake/work/run-1/stage.parquet", ".catalog-dead.duckdb"}
    assert not orphan.exists() and not (root / ".catalog-dead.duckdb").exists()
    assert counts(root) == before  # every snapshot still reads all its rows
    assert main(["lake", "vacuum", "--lake", str(root)]) == 0  # nothing left to do
    assert "removed 0 files" in capsys.readouterr().out
