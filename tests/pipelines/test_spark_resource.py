"""The gold assets on Spark: with a Spark resource on the lake resource, a view's table is rebuilt
by Spark (dagster-pyspark's session); without one, by DuckDB; the table holds the same rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from deltalake import DeltaTable

from fhirlake.sof.library import view_files
from fhirlake_pipelines.defs.assets import gold_assets
from fhirlake_pipelines.defs.resources import LakeResource, SparkResource
from fhirlake_pipelines.settings import PipelineSettings


def _changed_views(target: Path) -> Path:
    """The view library with the patient view's description changed: its table is stale."""
    target.mkdir()
    for path in view_files():
        shutil.copy(path, target / path.name)
    patient = json.loads((target / "patient.json").read_text())
    patient["description"] = f"{patient.get('description', '')} (rebuilt)"
    (target / "patient.json").write_text(json.dumps(patient))
    return target


def _materialize(lake: LakeResource, views: Path) -> dg.MaterializeResult[Any]:
    partitions = dg.StaticPartitionsDefinition(["site-a", "site-b"])
    patient = next(a for a in gold_assets(partitions, views) if a.key == dg.AssetKey(["gold", "patient"]))
    result = dg.materialize([patient], resources={"lake": lake}, partition_key="site-a", raise_on_error=True)
    events = result.asset_materializations_for_node(patient.op.name)
    return events[0].metadata


def test_gold_assets_build_on_spark_when_configured(demo_lake: Path, tmp_path: Path, spark: Any) -> None:
    views = _changed_views(tmp_path / "views")
    rows = {}
    for engine in ("duckdb", "spark"):
        root = tmp_path / engine
        shutil.copytree(demo_lake, root)
        master = spark.sparkContext.master
        lake = LakeResource(root=str(root), views=str(views),
                            spark=SparkResource(master=master) if engine == "spark" else None)
        metadata = _materialize(lake, views)
        assert metadata["rebuilt_from_silver"].value is True
        table = DeltaTable(str(root / "gold" / "patient"))
        assert table.history(1)[0]["fhirlake.engine"] == engine
        rows[engine] = table.to_pyarrow_table().sort_by("patient_id")
    assert rows["spark"].equals(rows["duckdb"])


def test_settings_name_the_spark_cluster() -> None:
    settings = PipelineSettings.from_env({"FHIRLAKE_SPARK_MASTER": "spark://head:7077",
                                          "FHIRLAKE_SPARK_CONF": "spark.executor.memory=8g, spark.executor.cores=4"})
    assert settings.spark_master == "spark://head:7077"
    assert settings.spark_config == {"spark.executor.memory": "8g", "spark.executor.cores": "4"}
    assert PipelineSettings.from_env({}).spark_master is None


def test_a_spark_conf_entry_without_a_value_is_an_error() -> None:
    from fhirlake.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="key=value"):
        PipelineSettings.from_env({"FHIRLAKE_SPARK_CONF": "spark.executor.memory"})
