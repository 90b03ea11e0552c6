"""docs/data-dictionary.md: current with the views, and true of the lake's catalog."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import fhirlake
from fhirlake.lake.dictionary import REGENERATE, data_dictionary, dictionary_tables
from fhirlake.sof.cli import view_group
from tests.conftest import PROJECT_ROOT

DICTIONARY = PROJECT_ROOT / "docs" / "data-dictionary.md"


def test_committed_dictionary_is_current() -> None:
    committed = DICTIONARY.read_text(encoding="utf-8") if DICTIONARY.is_file() else ""
    assert committed == data_dictionary(), f"docs/data-dictionary.md is out of date; regenerate it with: {REGENERATE}"


def test_generation_is_deterministic() -> None:
    assert data_dictionary() == data_dictionary()


def test_every_view_and_column_is_described() -> None:
    tables = dictionary_tables()
    views = sorted(p.stem for p in (PROJECT_ROOT / "sql_on_fhir_views").glob("*.json"))
    assert [t.name for t in tables] == views
    text = data_dictionary()
    for table in tables:
        assert f"## gold.{table.name}\n" in text
        assert table.columns and all(c.description and c.sql_type for c in table.columns), table.name
        for column in table.columns:
            assert f"| `{column.name}` | `{column.sql_type}` |" in text


def test_dictionary_matches_the_catalog_of_a_real_lake(demo_lake: Path) -> None:
    lake = fhirlake.connect(demo_lake)
    try:
        for table in dictionary_tables():
            described = lake.describe(table.name).columns
            actual = list(zip(described["column"], described["type"], strict=True))
            assert actual == [(c.name, c.sql_type) for c in table.columns], table.name
    finally:
        lake.close()


def test_a_new_view_appears_with_its_columns(tmp_path: Path) -> None:
    for view in ("patient.json", "encounter.json"):
        shutil.copy(PROJECT_ROOT / "sql_on_fhir_views" / view, tmp_path / view)
    (tmp_path / "smoking_status.json").write_text(json.dumps({
        "resourceType": "ViewDefinition", "name": "smoking_status", "title": "Smoking status", "status": "draft",
        "resource": "Observation", "description": "One row per smoking-status observation.",
        "where": [{"path": "code.coding.where(code = '72166-2').exists()"}],
        "select": [{"column": [
            {"name": "observation_id", "path": "getResourceKey()", "type": "id", "description": "Key | id."},
            {"name": "status_code", "path": "value.ofType(CodeableConcept).coding.code", "type": "code",
             "collection": True, "description": "Codes of the status."}]}],
    }), encoding="utf-8")
    text = data_dictionary(tmp_path)
    assert [t.name for t in dictionary_tables(tmp_path)] == ["encounter", "patient", "smoking_status"]
    assert "## gold.smoking_status\n" in text and "| `observation_id` | `VARCHAR` | id | Key \\| id. |" in text
    assert "| `status_code` | `VARCHAR[]` | code (collection) | Codes of the status. |" in text
    assert "Only resources where `code.coding.where(code = '72166-2').exists()`." in text
    assert "| `length_of_stay_days` | `DOUBLE` |" in text and "| `age` | `INTEGER` |" in text


def test_cli_writes_and_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PROJECT_ROOT)
    out = tmp_path / "dictionary.md"
    runner = CliRunner()
    stale = runner.invoke(view_group, ["dictionary", "--out", str(out), "--check"])
    assert stale.exit_code == 1 and "regenerate it with" in stale.output
    assert runner.invoke(view_group, ["dictionary", "--out", str(out)]).exit_code == 0
    assert out.read_text(encoding="utf-8") == data_dictionary()
    current = runner.invoke(view_group, ["dictionary", "--out", str(out), "--check"])
    assert current.exit_code == 0 and "is current" in current.output
    printed = runner.invoke(view_group, ["dictionary"])
    assert printed.exit_code == 0 and printed.output == data_dictionary()
