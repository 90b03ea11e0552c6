"""A lake is a folder you can move: a copy opens and serves the same tables, reading nothing
from the place it was copied from (issue #15, point 8)."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

import fhirlake
from fhirlake.cli import main
from fhirlake.lake import reader_settings
from fhirlake.lake._catalog import CATALOG_FILE
from tests.lake.conftest import Exports

QUERIES = {
    "patients": "SELECT * FROM gold.patient ORDER BY ALL",
    "observations": "SELECT * FROM gold.observation ORDER BY ALL",
    "silver": "SELECT count(*) AS n FROM silver.Patient",
}


def answers(lake: fhirlake.lake.Lake) -> dict[str, pl.DataFrame]:
    return {name: lake.sql(query) for name, query in QUERIES.items()}


@pytest.fixture
def moved(tmp_path: Path, exports: Exports, views: Path) -> tuple[Path, dict[str, pl.DataFrame]]:
    """A lake built in ``original/``, copied to ``copy/``; the original is deleted."""
    original = tmp_path / "original"
    with fhirlake.connect(original, read_only=False, views=views) as lake:
        lake.ingest(exports.full, source="a", allow_raw=True)
        lake.ingest(exports.incremental, source="a", allow_raw=True)
        expected = answers(lake)
    shutil.copytree(original, tmp_path / "copy")
    shutil.rmtree(original)
    return tmp_path / "copy", expected


def test_a_copied_lake_answers_the_same_through_connect(moved: tuple[Path, dict[str, pl.DataFrame]]) -> None:
    copy, expected = moved
    with fhirlake.connect(copy) as lake:
        for name, frame in answers(lake).items():
            assert frame.equals(expected[name]), name
        assert lake.table("patient").collect().height == expected["patients"].height
        files = lake.sql("SELECT file FROM fhirlake.files")["file"].to_list()
        assert files and all(not Path(f).is_absolute() and "://" not in f for f in files)
    with fhirlake.connect(copy, as_of=1) as first:  # earlier snapshots too
        assert first.sql("SELECT count(*) FROM gold.patient").item() > 0


def test_a_copied_lake_answers_the_same_through_fhirlake_sql(
    moved: tuple[Path, dict[str, pl.DataFrame]], capsys: pytest.CaptureFixture[str]
) -> None:
    copy, expected = moved
    assert main(["sql", "SELECT count(*) AS n FROM gold.observation", "--lake", str(copy)]) == 0
    assert str(expected["observations"].height) in capsys.readouterr().out


def test_a_copied_lake_takes_new_exports(
    moved: tuple[Path, dict[str, pl.DataFrame]], exports: Exports, views: Path
) -> None:
    copy, _ = moved
    with fhirlake.connect(copy, read_only=False, views=views) as lake:
        lake.ingest(exports.final, source="b", allow_raw=True)
        assert lake.sql("SELECT count(DISTINCT _source) FROM gold.patient").item() == 2


def test_a_locked_down_reader_serves_the_copy_with_the_lakes_settings(
    moved: tuple[Path, dict[str, pl.DataFrame]],
) -> None:
    """What the MCP server's reader does: catalog attached read-only, file access narrowed to
    gold, external access off, configuration locked; ``reader_settings`` is all it adds."""
    copy, expected = moved
    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH '{copy / CATALOG_FILE}' AS lake (READ_ONLY)")
    con.execute("USE lake")
    for statement in reader_settings(copy, folders=("gold",)):
        con.execute(statement)
    con.execute(f"SET allowed_paths = ['{copy / CATALOG_FILE}']")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    count = con.execute("SELECT count(*) FROM gold.observation").fetchone()
    assert count is not None and count[0] == expected["observations"].height
    with pytest.raises(duckdb.PermissionException):  # still only gold: silver is out of reach
        con.execute("SELECT count(*) FROM silver.Patient").fetchall()


def test_reader_settings_refuse_a_root_duckdb_cannot_search() -> None:
    with pytest.raises(fhirlake.lake.LakeError, match="comma"):
        reader_settings("/data/a,b")
