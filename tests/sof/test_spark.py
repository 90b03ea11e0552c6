"""Views on Spark: the same rows as on DuckDB, over NDJSON files, a silver Delta table and a
DataFrame (``spark_view_dataframe``, with carried columns), and errors that name the line.

Every test shares the one local Spark of ``tests/conftest.py`` (``spark`` fixture); DuckDB
stays the default and never imports pyspark (the last test).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from click.testing import CliRunner

from fhirlake.errors import InputDataError
from fhirlake.sof import compile_view, resources_table, run_view, spark_view_dataframe
from fhirlake.sof.library import resolve_view, view_files
from tests.conftest import PROJECT_ROOT

PATIENTS = [
    {"resourceType": "Patient", "id": f"p{i}", "gender": "female" if i % 2 else "male", "birthDate": f"19{50 + i}-0{1 + i % 9}-1{i % 9}",
     "name": [{"use": "official", "family": f"F{i}", "given": [f"G{i}", "H"]}]}
    for i in range(6)
]


def _rows(table: pa.Table) -> list[str]:
    """Rows as comparable text (an instant compared as the same point in time)."""
    def cell(value: Any) -> Any:
        return value.timestamp() if hasattr(value, "timestamp") else value
    return sorted(repr(sorted((k, cell(v)) for k, v in row.items())) for row in table.to_pylist())


def _write_ndjson(path: Path, resources: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in resources))
    return path


@pytest.mark.parametrize("view", ["patient", "observation_component", "diagnostic_report"])
def test_library_views_give_duckdbs_rows_over_an_export(spark: Any, synthea_dir: Path, view: str) -> None:
    _, definition = resolve_view(view)
    on_duckdb = run_view(definition, synthea_dir)
    on_spark = run_view(definition, synthea_dir, engine="spark")
    assert on_duckdb.table is not None and on_spark.table is not None
    assert on_spark.table.column_names == on_duckdb.table.column_names
    assert _rows(on_spark.table) == _rows(on_duckdb.table)
    assert on_spark.table.num_rows > 0


def test_a_silver_delta_table_is_read_without_delta_spark(spark: Any, tmp_path: Path) -> None:
    from deltalake import write_deltalake

    silver = tmp_path / "silver" / "Patient"
    table = pa.table({
        "resource_key": [p["id"] for p in PATIENTS],
        "resource": [orjson.dumps(p).decode() for p in PATIENTS],
        "_year": [2020 + i % 2 for i in range(len(PATIENTS))],
    })
    write_deltalake(str(silver), table, partition_by=["_year"])
    _, definition = resolve_view("patient")
    on_spark = run_view(definition, silver, engine="spark")
    on_duckdb = run_view(definition, resources_table(PATIENTS))
    assert on_spark.table is not None and on_duckdb.table is not None
    assert _rows(on_spark.table) == _rows(on_duckdb.table)


def test_spark_view_dataframe_carries_columns_after_the_views(spark: Any) -> None:
    view = {"resource": "Patient", "select": [{"column": [{"name": "id", "path": "getResourceKey()"}]},
                                              {"forEach": "name.given", "column": [{"name": "given", "path": "$this"}]}]}
    other = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {}}
    frame = spark.createDataFrame(
        [(orjson.dumps(p).decode(), f"key-{p['id']}") for p in [*PATIENTS[:2], other]], "resource string, resource_key string"
    )
    rows = spark_view_dataframe(view, frame, carry={"_key": "resource_key"})
    assert rows.columns == ["id", "given", "_key"]
    assert sorted(tuple(r) for r in rows.collect()) == [
        ("p0", "G0", "key-p0"), ("p0", "H", "key-p0"), ("p1", "G1", "key-p1"), ("p1", "H", "key-p1")]


def test_a_bad_line_is_named_by_file_and_line(spark: Any, tmp_path: Path) -> None:
    path = _write_ndjson(tmp_path / "export" / "Patient.ndjson", PATIENTS[:2])
    with path.open("a") as handle:
        handle.write("{broken\n")
    with pytest.raises(InputDataError) as caught:
        run_view(resolve_view("patient")[1], path.parent, engine="spark")
    assert str(caught.value).startswith(f"{path}:3: not valid JSON")


def test_view_run_engine_spark_writes_parquet(spark: Any, tmp_path: Path) -> None:
    from fhirlake.sof.cli import view_group

    export = _write_ndjson(tmp_path / "export" / "Patient.ndjson", PATIENTS).parent
    out = tmp_path / "patient.parquet"
    done = CliRunner().invoke(view_group, ["run", "patient", str(export), "--engine", "spark", "--master", "local[2]",
                                           "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert f"wrote {len(PATIENTS)} rows" in done.output
    assert ds.dataset(out, format="parquet").count_rows() == len(PATIENTS)


def test_every_library_view_has_spark_sql_without_duckdb_names() -> None:
    for path in view_files():
        text = compile_view(resolve_view(str(path))[1]).sql(engine="spark", pretty=False)
        assert "LIST_" not in text and "UNNEST" not in text and "LAMBDA" not in text, path.name


def test_duckdb_runs_never_import_pyspark(tmp_path: Path) -> None:
    export = _write_ndjson(tmp_path / "export" / "Patient.ndjson", PATIENTS).parent
    script = (
        "import sys\n"
        "import fhirlake, fhirlake.sof\n"
        "from fhirlake.cli import main\n"
        f"main(['view', 'run', 'patient', {str(export)!r}])\n"
        "from fhirlake.sof.library import resolve_view\n"
        "fhirlake.sof.run_view(resolve_view('patient')[1], fhirlake.sof.resources_table([]))\n"
        "assert 'pyspark' not in sys.modules and 'py4j' not in sys.modules, 'pyspark imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr


def test_view_sql_engine_spark_prints_spark_sql() -> None:
    from fhirlake.sof.cli import view_group

    done = CliRunner().invoke(view_group, ["sql", "patient", "--engine", "spark"])
    assert done.exit_code == 0, done.output
    assert "TRY_ELEMENT_AT(" in done.output and "`resourceType` = 'Patient'" in done.output


def test_an_empty_delta_table_gives_no_rows(spark: Any, tmp_path: Path) -> None:
    from deltalake import write_deltalake

    silver = tmp_path / "silver" / "Patient"
    write_deltalake(str(silver), pa.table({"resource_key": pa.array([], pa.string()), "resource": pa.array([], pa.string())}))
    result = run_view(resolve_view("patient")[1], silver, engine="spark")
    assert result.table is not None and result.rows == 0
