"""``fhirlake lake build --engine spark``: the same Delta tables as the DuckDB build, row for row.

One Synthea lake (30 patients) is ingested with DuckDB, copied, and rebuilt on the session's
local Spark (views as Spark SQL, and as DuckDB queries inside the tasks); every gold table of both lakes is then read back through deltalake and compared
as sorted Arrow rows (values and types), and the Spark lake keeps working as a lake: a new
snapshot in the catalog, the earlier snapshot still readable with ``as_of``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable

import fhirlake
from fhirlake.lake._spark_build import VIEWS_SETTING


def _sorted_rows(table: pa.Table) -> pa.Table:
    """Rows in one order: by every sortable column (lists and structs compare as their JSON)."""
    keys = [(name, "ascending") for name, kind in zip(table.column_names, table.schema.types, strict=True)
            if not pa.types.is_nested(kind)]
    return table.sort_by(keys)


@pytest.fixture(scope="module")
def duck_lake(tmp_path_factory: pytest.TempPathFactory, synthea_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("spark-build") / "duck"
    with fhirlake.connect(root, read_only=False) as lake:
        lake.ingest(synthea_dir, source="synthea", allow_raw=True)
    return root


@pytest.fixture(scope="module", params=["sql", "duckdb"])
def spark_lake(request: pytest.FixtureRequest, duck_lake: Path, spark: Any) -> Iterator[Path]:
    """The DuckDB lake rebuilt on Spark, views evaluated as Spark SQL or by DuckDB in each task."""
    root = duck_lake.parent / f"spark-{request.param}"
    shutil.copytree(duck_lake, root)
    spark.conf.set(VIEWS_SETTING, request.param)
    try:
        with fhirlake.connect(root, read_only=False) as lake:
            report = lake.build(force=True, engine="spark", spark=spark)
    finally:
        spark.conf.unset(VIEWS_SETTING)
    assert report.engine == "spark" and report.rebuilt
    yield root
    shutil.rmtree(root)


def test_spark_builds_the_same_gold_tables_as_duckdb(duck_lake: Path, spark_lake: Path) -> None:
    gold = sorted(p.name for p in (duck_lake / "gold").iterdir())
    assert gold and gold == sorted(p.name for p in (spark_lake / "gold").iterdir())
    for name in gold:
        duck = DeltaTable(str(duck_lake / "gold" / name))
        spark = DeltaTable(str(spark_lake / "gold" / name))
        assert spark.schema().to_arrow() == duck.schema().to_arrow(), name
        assert spark.metadata().partition_columns == duck.metadata().partition_columns
        expected, got = duck.to_pyarrow_table(), spark.to_pyarrow_table()
        assert got.num_rows == expected.num_rows, name
        assert _sorted_rows(got).equals(_sorted_rows(expected)), name


def test_the_spark_build_is_a_snapshot_of_the_lake(duck_lake: Path, spark_lake: Path) -> None:
    count = "SELECT count(*) AS n FROM gold.observation"
    with fhirlake.connect(spark_lake) as lake, fhirlake.connect(duck_lake) as before:
        assert lake.snapshot is not None and before.snapshot is not None
        assert lake.snapshot.id == before.snapshot.id + 1 and lake.snapshot.kind == "build"
        rows = lake.sql(count)["n"][0]
        assert rows == before.sql(count)["n"][0] > 0
        earlier_id = before.snapshot.id
    with fhirlake.connect(spark_lake, as_of=earlier_id) as earlier:
        assert earlier.snapshot is not None and earlier.snapshot.id == earlier_id
        assert earlier.sql(count)["n"][0] == rows
    history = DeltaTable(str(spark_lake / "gold" / "observation")).history(1)[0]
    assert history.get("fhirlake.operation") == "rebuild"


def test_master_needs_the_spark_engine(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fhirlake.cli import cli

    result = CliRunner().invoke(cli, ["lake", "build", "--lake", str(tmp_path), "--master", "local[1]"])
    assert result.exit_code == 2 and "--master needs --engine spark" in result.output
