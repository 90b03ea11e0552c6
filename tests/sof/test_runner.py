"""Running views over files: formats, Parquet output, and bad input that loses nothing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow.parquet as pq
import pytest
import zstandard

from fhirlake.errors import InputDataError
from fhirlake.sof import ViewEvaluationError, compile_view, parse_view, resources_table, run_view

VIEW: dict[str, Any] = {
    "resource": "Patient",
    "select": [
        {"column": [{"name": "id", "path": "getResourceKey()", "type": "id"},
                    {"name": "gender", "path": "gender", "type": "code"}]},
        {"forEachOrNull": "name", "column": [{"name": "family", "path": "family", "type": "string"}]},
    ],
}
PATIENTS = [
    {"resourceType": "Patient", "id": "p1", "gender": "female", "name": [{"family": "A"}, {"family": "B"}]},
    {"resourceType": "Patient", "id": "p2", "gender": "male"},
]


def _write(path: Path, lines: list[bytes]) -> Path:
    data = b"\n".join(lines) + b"\n"
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    elif path.name.endswith(".zst"):
        path.write_bytes(zstandard.ZstdCompressor().compress(data))
    else:
        path.write_bytes(data)
    return path


def _rows(result_table: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(r.values()) for r in result_table.to_pylist())


EXPECTED = [("p1", "female", "A"), ("p1", "female", "B"), ("p2", "male", None)]


@pytest.mark.parametrize("name", ["Patient.ndjson", "Patient.ndjson.gz", "Patient.ndjson.zst"])
def test_reads_plain_and_compressed_files(tmp_path: Path, name: str) -> None:
    _write(tmp_path / name, [orjson.dumps(p) for p in PATIENTS])
    (tmp_path / "Observation.ndjson").write_text('{"resourceType": "Observation", "id": "o1"}\n')
    result = run_view(VIEW, tmp_path)
    assert result.table is not None and _rows(result.table) == EXPECTED


def test_a_bulk_manifest_names_the_files(tmp_path: Path) -> None:
    _write(tmp_path / "0001.ndjson", [orjson.dumps(p) for p in PATIENTS])
    (tmp_path / "manifest.json").write_text(json.dumps({"output": [{"type": "Patient", "url": "http://x/files/0001.ndjson"}]}))
    result = run_view(VIEW, tmp_path)
    assert result.table is not None and _rows(result.table) == EXPECTED


def test_writes_parquet_atomically(tmp_path: Path) -> None:
    source = _write(tmp_path / "Patient.ndjson", [orjson.dumps(p) for p in PATIENTS])
    out = tmp_path / "gold" / "patient.parquet"
    result = run_view(VIEW, source, output=out)
    assert result.rows == 3 and result.output == out
    table = pq.read_table(out)
    assert table.column_names == ["id", "gender", "family"]
    assert _rows(table) == EXPECTED
    assert [p.name for p in out.parent.iterdir()] == ["patient.parquet"], "no temporary file left"


def test_a_failed_run_leaves_no_file(tmp_path: Path) -> None:
    source = _write(tmp_path / "Patient.ndjson", [orjson.dumps(p) for p in PATIENTS])
    out = tmp_path / "patient.parquet"
    view = {"resource": "Patient", "select": [{"column": [{"name": "family", "path": "name.family"}]}]}
    with pytest.raises(ViewEvaluationError, match="Multiple values found but not expected for column 'family'"):
        run_view(view, source, output=out)
    assert list(tmp_path.iterdir()) == [source]


BAD_LINES = [
    (b"this is not json", "not valid JSON"),
    (b"[1, 2]", "not a JSON object but a list"),
    (b'{"resourceType": "Observation", "id": "o1"}', "resourceType is 'Observation', expected 'Patient'"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_LINES)
def test_a_bad_line_stops_the_run_with_file_and_line(tmp_path: Path, bad: bytes, reason: str) -> None:
    source = _write(tmp_path / "Patient.ndjson", [orjson.dumps(PATIENTS[0]), b"", bad, orjson.dumps(PATIENTS[1])])
    with pytest.raises(InputDataError) as caught:
        run_view(VIEW, source)
    assert (caught.value.path, caught.value.line) == (str(source), 3)
    assert reason in str(caught.value)
    assert str(caught.value).startswith(f"{source}:3: ")


def test_skip_invalid_quarantines_and_counts_add_up(tmp_path: Path) -> None:
    lines = [orjson.dumps(PATIENTS[0])] + [bad for bad, _ in BAD_LINES] + [orjson.dumps(PATIENTS[1])]
    source = _write(tmp_path / "Patient.ndjson.gz", lines)
    quarantine = tmp_path / "quarantine.ndjson"
    result = run_view(VIEW, source, skip_invalid=True, quarantine=quarantine, output=tmp_path / "p.parquet")
    assert (result.resources_in, result.resources_out, result.quarantined) == (5, 2, 3)
    assert result.resources_in == result.resources_out + result.quarantined
    assert _rows(pq.read_table(tmp_path / "p.parquet")) == EXPECTED
    records = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert [(r["line"], r["text"].encode()) for r in records] == [(i + 2, bad) for i, (bad, _) in enumerate(BAD_LINES)]
    assert all(r["file"] == str(source) and r["reason"] for r in records)


def test_skip_invalid_with_nothing_valid_gives_an_empty_typed_table(tmp_path: Path) -> None:
    source = _write(tmp_path / "Patient.ndjson", [b"nope"])
    result = run_view(VIEW, source, skip_invalid=True, quarantine=tmp_path / "q.ndjson")
    assert result.table is not None and result.table.num_rows == 0
    assert result.table.column_names == ["id", "gender", "family"]
    assert (result.resources_in, result.resources_out, result.quarantined) == (1, 0, 1)


def test_relations_of_resource_json_skip_other_types() -> None:
    table = resources_table([*PATIENTS, {"resourceType": "Observation", "id": "o1", "code": {"text": "x"}}])
    result = run_view(VIEW, table)
    assert result.table is not None and _rows(result.table) == EXPECTED
    relation = duckdb.connect().from_arrow(table)
    assert run_view(VIEW, relation).rows == 3


def test_the_read_schema_holds_only_what_the_view_uses() -> None:
    compiled = compile_view(parse_view(VIEW))
    assert set(compiled.read_columns) == {"id", "gender", "name", "resourceType"}
    assert compiled.read_columns["name"] == 'STRUCT("family" VARCHAR)[]'


def test_a_folder_without_the_views_type_gives_an_empty_table(tmp_path: Path) -> None:
    (tmp_path / "Observation.ndjson").write_text('{"resourceType": "Observation", "id": "o1"}\n')
    result = run_view(VIEW, tmp_path)
    assert result.table is not None and result.table.num_rows == 0
    assert result.table.column_names == ["id", "gender", "family"]
    out = run_view(VIEW, tmp_path, output=tmp_path / "p.parquet", skip_invalid=True)
    assert (out.rows, out.resources_in, out.quarantined) == (0, 0, 0)
    assert pq.read_table(tmp_path / "p.parquet").column_names == ["id", "gender", "family"]


def test_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="no such file or folder"):
        run_view(VIEW, tmp_path / "nowhere")
