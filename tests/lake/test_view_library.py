"""Every view of the library builds its gold table, with the rows the SQL-on-FHIR runner gives."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from fhirlake.lake import connect
from fhirlake.sof import run_view
from fhirlake.sof.library import view_files
from fhirlake.synth import generate


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synth") / "export"
    generate(folder, patients=4, seed=11, workers=1)
    return folder


def test_gold_tables_hold_what_the_runner_gives(synthetic: Path, tmp_path: Path) -> None:
    lake = connect(tmp_path / "lake", read_only=False)
    lake.ingest(synthetic, source="synth")
    for path in view_files():
        expected = _in_utc(pl.from_arrow(run_view(path, synthetic).table))
        actual = _in_utc(lake.sql(f"SELECT * EXCLUDE (_source) FROM gold.{path.stem}").select(expected.columns))
        assert actual.height == expected.height, path.stem
        assert actual.sort(actual.columns, nulls_last=True).equals(expected.sort(expected.columns, nulls_last=True)), path.stem


def _in_utc(frame: object) -> pl.DataFrame:
    """The same instants, whatever time zone name the producing connection gave them."""
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC"))
