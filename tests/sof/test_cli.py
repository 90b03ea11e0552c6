"""``fhirlake view``: run, validate and sql, as a user types them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from tests.conftest import PROJECT_ROOT


def _fhirlake(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fhirlake.cli", *args], cwd=cwd, capture_output=True, text=True, check=False)


def _export(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    patients = [{"resourceType": "Patient", "id": f"p{i}", "gender": "female" if i % 2 else "male"} for i in range(5)]
    (folder / "Patient.ndjson").write_bytes(b"\n".join(orjson.dumps(p) for p in patients) + b"\n")
    return folder


def test_view_run_writes_parquet(tmp_path: Path) -> None:
    out = tmp_path / "patient.parquet"
    done = _fhirlake("view", "run", "patient", str(_export(tmp_path)), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "wrote 5 rows" in done.stdout
    assert pq.read_table(out).num_rows == 5


def test_view_run_skip_invalid_prints_counts(tmp_path: Path) -> None:
    folder = _export(tmp_path)
    with (folder / "Patient.ndjson").open("a") as handle:
        handle.write("{broken\n")
    done = _fhirlake("view", "run", "patient", str(folder))
    assert done.returncode == 2
    assert done.stderr.strip() == f"fhirlake: error: {folder / 'Patient.ndjson'}:6: not valid JSON (unexpected character, expected a string key)"
    done = _fhirlake("view", "run", "patient", str(folder), "--skip-invalid", "--quarantine", str(tmp_path / "q.ndjson"))
    assert done.returncode == 0, done.stderr
    assert "resources in: 6  out: 5  quarantined: 1" in done.stdout


def test_view_validate_and_sql() -> None:
    done = _fhirlake("view", "validate")
    assert done.returncode == 0, done.stderr
    assert "patient.json" in done.stdout and "observation.json" in done.stdout
    done = _fhirlake("view", "sql", "observation")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("SELECT") and "r.\"resourceType\" = 'Observation'" in done.stdout


def test_an_invalid_view_is_one_line(tmp_path: Path) -> None:
    view = tmp_path / "bad.json"
    view.write_text('{"resource": "Patient", "select": [{"column": [{"name": "x", "path": "name.oops()"}]}]}')
    done = _fhirlake("view", "validate", str(view))
    assert done.returncode == 2
    assert done.stderr.strip() == f"fhirlake: error: {view}#/select/0/column/0/path: unknown function oops() at position 5 in 'name.oops()'"
