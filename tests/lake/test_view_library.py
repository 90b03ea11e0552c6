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
    lake.ingest(synthetic, source="synth", allow_raw=True)
    for path in view_files():
        expected = _in_utc(pl.from_arrow(run_view(path, synthetic).table))
        actual = _in_utc(lake.sql(f"SELECT * EXCLUDE (_source) FROM gold.{path.stem}").select(expected.columns))
        assert actual.height == expected.height, path.stem
        assert actual.sort(actual.columns, nulls_last=True).equals(expected.sort(expected.columns, nulls_last=True)), path.stem


def _in_utc(frame: object) -> pl.DataFrame:
    """The same instants, whatever time zone name the producing connection gave them."""
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC"))


def test_optimize_compacts_gold_in_code_order_and_keeps_every_row(synthetic: Path, tmp_path: Path) -> None:
    """Two ingests leave two files per partition; optimize leaves one, rows in code order, same rows."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from fhirlake.lake._gold import load_gold_views

    lake = connect(tmp_path / "lake", read_only=False)
    lake.ingest(synthetic, source="site-a", allow_raw=True)
    lake.ingest(synthetic, source="site-b", export_id="b", allow_raw=True)
    before = {name: lake.sql(f"SELECT * FROM {name} ORDER BY ALL") for name in lake.tables()["name"] if name.startswith("gold.")}
    snapshot_before = lake.snapshot.id if lake.snapshot else None

    report = lake.optimize()
    assert report.snapshot_id is not None and report.snapshot_id > (snapshot_before or 0)
    observation = report.compacted["observation"]
    assert observation.sorted_by == "code" and observation.files_after < observation.files_before
    for name, rows in before.items():  # the same rows, table by table
        assert lake.sql(f"SELECT * FROM {name} ORDER BY ALL").equals(rows), name
    sort_columns = {v.name: v.sort_column for v in load_gold_views()}
    for (name, uri) in lake.sql("SELECT name, file FROM fhirlake.files WHERE name LIKE 'gold.%'").iter_rows():
        column = sort_columns[name.removeprefix("gold.")]
        if column is None:
            continue
        values = pq.read_table(str(tmp_path / "lake" / uri), columns=[column]).column(column)
        present = values.filter(pc.is_valid(values)).to_pylist()
        assert present == sorted(present), f"{name}: {uri} is not in {column} order"

    assert lake.optimize().compacted == {}  # nothing left to do
    assert "nothing to compact" in lake.optimize().lines()[0]
    old = connect(tmp_path / "lake", as_of=snapshot_before)  # earlier snapshots read their own files
    assert old.sql("SELECT count(*) FROM gold.observation").item() == before["gold.observation"].height
    old.close()
    lake.close()


def test_optimize_only_named_views_and_unknown_views_refused(synthetic: Path, tmp_path: Path) -> None:
    from fhirlake.lake import LakeError

    lake = connect(tmp_path / "lake", read_only=False)
    lake.ingest(synthetic, source="site-a", allow_raw=True)
    with pytest.raises(LakeError, match="no view nope"):
        lake.optimize(["nope"])
    assert set(lake.optimize(["condition"]).compacted) == {"condition"}
    lake.close()
