"""The catalog and the notebook API: names, comments, derived columns, polars, errors, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from sqlglot import exp

import fhirlake
from fhirlake.cli import main
from fhirlake.errors import InputDataError
from fhirlake.lake import Lake, connect
from fhirlake.lake.errors import (
    ExportFolderError,
    LakeBusyError,
    LakeNotFoundError,
    ReadOnlyLakeError,
    UnknownTableError,
)
from fhirlake.sof.runner import view_query
from tests.lake import helpers
from tests.lake.conftest import Exports


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, exports: Exports, views: Path) -> Lake:
    root = tmp_path_factory.mktemp("catalog")
    writer = connect(root, read_only=False, views=views)
    writer.ingest(exports.full, source="hospital-a", allow_raw=True)
    writer.close()
    return fhirlake.connect(root)


def test_layout_of_the_lake(lake: Lake) -> None:
    root = Path(lake.storage.root)
    assert (root / "catalog.duckdb").is_file() and (root / "_fhirlake" / "snapshots.json").is_file()
    assert DeltaTable(str(root / "silver" / "Observation")).metadata().partition_columns == ["_year"]
    gold = DeltaTable(str(root / "gold" / "observation"))
    names = pa.schema(gold.schema().to_arrow()).names
    assert names[-3:] == ["_resource_key", "_source", "_year"]
    assert gold.history(1)[0]["fhirlake.export"] == "full"


def test_tables_and_describe(lake: Lake) -> None:
    tables = lake.tables()
    assert {"gold.patient", "gold.encounter", "gold.observation", "silver.Patient", "silver.Observation"} <= set(tables["name"])
    described = lake.describe("patient")
    assert described.name == "gold.patient" and described.rows == 6
    columns = dict(zip(described.columns["column"], described.columns["description"], strict=True))
    assert columns["gender"].startswith("Administrative gender")
    assert "age" in columns and "_resource_key" not in columns and "_source" in columns
    assert "Patients" in str(lake.describe("gold.patient")) or described.description
    silver = lake.describe("silver.observation")
    assert list(silver.columns["column"]) == ["resource_key", "patient_key", "source", "last_updated", "export_id", "resource"]


def test_derived_columns(lake: Lake) -> None:
    stays = dict(lake.sql("SELECT encounter_id, length_of_stay_days FROM gold.encounter").iter_rows())
    assert stays["e00"] == pytest.approx(0.5)
    ages = dict(lake.sql("SELECT patient_id, age FROM patient").iter_rows())
    assert ages["p0"] == 75  # born 1950-01-15, reference time 2025-06-30
    assert ages["p5"] == 2024 - 1985 - 1  # died 2024-01-10, born 1985-06-15


def test_sql_arrow_and_table(lake: Lake) -> None:
    frame = lake.sql("SELECT gender, count(*) AS n FROM gold.patient GROUP BY ALL ORDER BY gender")
    assert isinstance(frame, pl.DataFrame) and frame["n"].sum() == 6
    assert lake.arrow("SELECT 1 AS one").column("one").to_pylist() == [1]
    lazy = lake.table("observation")
    assert isinstance(lazy, pl.LazyFrame)
    collected = lazy.filter(pl.col("patient_id") == "p0").collect()
    assert collected.height == 6 and "_resource_key" not in collected.columns
    patient_key = lake.sql("SELECT DISTINCT patient_key FROM silver.Observation WHERE resource_key = 'o000'")
    assert patient_key["patient_key"].to_list() == ["p0"]


def test_opening_the_catalog_is_fast(lake: Lake) -> None:
    started = time.perf_counter()
    fhirlake.connect(lake.storage.root).close()
    assert time.perf_counter() - started < 1.0  # the benchmark measures it; this only catches a regression


def test_errors_are_clear(lake: Lake, exports: Exports, tmp_path: Path) -> None:
    with pytest.raises(UnknownTableError, match="no table 'nope'"):
        lake.describe("nope")
    with pytest.raises(ReadOnlyLakeError):
        lake.ingest(exports.full, source="x", allow_raw=True)
    with pytest.raises(LakeNotFoundError, match="ingest an export first"):
        fhirlake.connect(tmp_path / "missing")
    with pytest.raises(ExportFolderError, match="no such export folder"):
        connect(tmp_path / "l", read_only=False).ingest(tmp_path / "none", source="x", allow_raw=True)
    with pytest.raises(fhirlake.lake.LakeError, match="as_of opens a past snapshot"):
        fhirlake.connect(lake.storage.root, as_of=1, read_only=False)


def test_a_bad_line_is_named(views: Path, tmp_path: Path) -> None:
    folder = helpers.write_export(tmp_path / "e", [helpers.patient("p1", "2020-01-01T00:00:00Z")], transaction_time="2025-01-01T00:00:00Z")
    with (folder / "Patient.ndjson").open("ab") as file:
        file.write(b'{"resourceType": "Patient"}\n')
    with pytest.raises(ExportFolderError, match=r"manifest.json: announces 1 Patient resources, the files hold 2"):
        connect(tmp_path / "lake", read_only=False, views=views).ingest(folder, source="x", allow_raw=True)
    (folder / "manifest.json").unlink()  # without a manifest to hold it to, the line itself is named
    with pytest.raises(InputDataError, match=r"Patient.ndjson:2: the resource has no id"):
        connect(tmp_path / "lake", read_only=False, views=views).ingest(folder, source="x", allow_raw=True)


def test_a_second_writer_is_refused(exports: Exports, tmp_path: Path) -> None:
    root = tmp_path / "busy"
    (root / "_fhirlake").mkdir(parents=True)
    (root / "_fhirlake" / "lock").write_text(f"{socket.gethostname()} {os.getpid()}")
    with pytest.raises(LakeBusyError, match="being written by another process"):
        connect(root, read_only=False).ingest(exports.full, source="x", allow_raw=True)


def test_a_changed_view_is_rebuilt_by_build(exports: Exports, tmp_path: Path) -> None:
    views = helpers.views_folder(tmp_path / "views", ["patient"])
    lake = connect(tmp_path / "lake", read_only=False, views=views)
    lake.ingest(exports.full, source="hospital-a", allow_raw=True)
    assert not lake.build().rebuilt
    definition = json.loads((views / "patient.json").read_text())
    definition["select"][0]["column"].append({"name": "first_language", "path": "communication.language.coding.code.first()", "type": "code"})
    (views / "patient.json").write_text(json.dumps(definition))
    shutil.copy(helpers.PROJECT_ROOT / "sql_on_fhir_views" / "condition.json", views / "condition.json")
    report = lake.build()
    assert set(report.rebuilt) == {"patient", "condition"} and report.snapshot_id == 2
    assert "first_language" in lake.describe("patient").columns["column"].to_list()
    assert lake.sql("SELECT count(*) AS n FROM gold.condition")["n"][0] == 0
    assert lake.build(["patient"], force=True).rebuilt["patient"].rows_added == 6


def test_a_uri_root_works(exports: Exports, views: Path, tmp_path: Path) -> None:
    uri = (tmp_path / "lake").as_uri()
    lake = fhirlake.connect(uri, read_only=False, views=views)
    lake.ingest(exports.full, source="hospital-a", allow_raw=True)
    assert fhirlake.connect(uri).sql("SELECT count(*) AS n FROM gold.observation")["n"][0] == 36


def test_cli(exports: Exports, views: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tmp_path / "lake")
    assert main(["lake", "ingest", str(exports.full), "--source", "hospital-a", "--lake", root, "--views", str(views), "--allow-raw"]) == 0
    assert "snapshot 1: export 'full'" in capsys.readouterr().out
    assert main(["lake", "status", "--lake", root]) == 0
    status = capsys.readouterr().out
    assert "gold.patient" in status and "watermark 2025-06-30T12:00:00+00:00" in status
    assert main(["sql", "SELECT count(*) AS n FROM gold.patient", "--lake", root]) == 0
    assert "6" in capsys.readouterr().out
    assert main(["lake", "ingest", str(exports.incremental), "--source", "hospital-a", "--lake", root, "--views", str(views), "--allow-raw"]) == 0
    capsys.readouterr()
    assert main(["lake", "optimize", "--lake", root, "--views", str(views)]) == 0
    assert "gold tables compacted" in capsys.readouterr().out
    assert main(["lake", "optimize", "--lake", root, "--views", str(views)]) == 0
    assert "nothing to compact" in capsys.readouterr().out
    assert main(["sql", "SELECT * FROM nope", "--lake", root]) == 2
    assert "fhirlake: error:" in capsys.readouterr().err
    # exact answers are for trusted users, under audit: each query is in the lake's audit log
    from fhirlake.audit import read_entries, verify_log

    log = Path(root) / "_fhirlake" / "audit.jsonl"
    verify_log(log)
    entries = [entry for _, entry in read_entries(log) if entry and entry.get("event") == "sql"]
    assert [(e["sql"], e["decision"], e["rows"]) for e in entries] == [
        (["SELECT count(*) AS n FROM gold.patient"], "allowed", 1), (["SELECT * FROM nope"], "error", None)]


def test_view_query_runs_a_view_over_any_relation() -> None:
    table = pa.table({"resource": ['{"resourceType": "Patient", "id": "a", "gender": "male"}',
                                   '{"resourceType": "Observation", "id": "b"}'], "key": ["k1", "k2"]})
    view = {"resource": "Patient", "select": [{"column": [{"name": "id", "path": "getResourceKey()"},
                                                          {"name": "gender", "path": "gender"}]}]}
    con = duckdb.connect()
    con.register("input", table)
    rows = con.sql(view_query(view, exp.to_table("input"), carry={"_key": "key"}).sql(dialect="duckdb")).fetchall()
    assert rows == [("a", "male", "k1")]
