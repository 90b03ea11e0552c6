"""The official SQL-on-FHIR v2 test suite, every test, on every engine (DuckDB and Spark), compared strictly.

The suite lives outside the project (``../shared/sof-tests``, or ``$FHIRLAKE_SOF_TESTS``);
without it these tests skip with that reason. Comparison rules (the suite's README):

* rows are an unordered multiset, and every expected row lists every column;
* types are exact: True is not 1, 1 is not 1.0, "1" is not 1. The one allowance is for
  columns declared ``decimal``: a FHIR decimal has no int/float distinction in JSON (the suite
  writes ``5`` for the decimal 5), so there numbers compare by value; a bool or a string is
  still never a decimal;
* ``expectColumns`` fixes the column order; ``expectError`` runs the view over the file's
  resources and requires a fhirlake SofError.

A test fhirlake cannot pass on an engine goes in KNOWN_FAILURES with the engine and its reason;
it is then expected to fail (strict xfail), so fixing it forces removing it from the map. The
Spark cases share the session-scoped local Spark of ``tests/conftest.py`` (and skip without
pyspark or Java).
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fhirlake.sof import SofError, compile_view, parse_view, resources_table, run_view
from tests.conftest import shared_dir

ENGINES = ("duckdb", "spark")

# (engine, file, test title) -> why fhirlake fails it there. Empty: all 134 pass on both engines.
KNOWN_FAILURES: dict[tuple[str, str, str], str] = {}


def _suite_dir() -> Path | None:
    configured = os.environ.get("FHIRLAKE_SOF_TESTS")
    if configured:
        return Path(configured)
    base = shared_dir()
    return base / "sof-tests" if base is not None else None


def _cases() -> list[Any]:
    folder = _suite_dir()
    if folder is None or not folder.is_dir():
        return [pytest.param(None, None, None, marks=pytest.mark.skip(reason="SQL-on-FHIR suite not found (../shared/sof-tests or $FHIRLAKE_SOF_TESTS)"))]
    cases = []
    for engine in ENGINES:
        for path in sorted(folder.glob("*.json")):
            if path.name == "tests.schema.json":
                continue
            suite = json.loads(path.read_text(encoding="utf-8"))
            for test in suite["tests"]:
                marks = []
                reason = KNOWN_FAILURES.get((engine, path.name, test["title"]))
                if reason:
                    marks.append(pytest.mark.xfail(reason=reason, strict=True))
                cases.append(pytest.param(engine, suite, test, id=f"{engine}: {path.stem}: {test['title']}", marks=marks))
    return cases


def _declared_types(view: dict[str, Any]) -> dict[str, str | None]:
    types: dict[str, str | None] = {}

    def walk(select: dict[str, Any]) -> None:
        for column in select.get("column", []):
            types[column["name"]] = column.get("type")
        for nested in select.get("select", []) + select.get("unionAll", []):
            walk(nested)

    for select in view.get("select", []):
        walk(select)
    return types


def _canonical(value: Any, fhir_type: str | None) -> Any:
    """A hashable, type-tagged form of a cell, so that True != 1 != 1.0 != '1'."""
    if value is None:
        return ("null",)
    if isinstance(value, list):
        return ("list", tuple(_canonical(v, fhir_type) for v in value))
    if isinstance(value, bool):
        return ("bool", value)
    if fhir_type == "decimal" and isinstance(value, int | float):
        return ("decimal", Decimal(repr(value)).normalize())
    if isinstance(value, int | float | str):
        return (type(value).__name__, value)
    return ("other", repr(value))


def _multiset(rows: list[dict[str, Any]], types: dict[str, str | None]) -> list[Any]:
    return sorted(repr(sorted((k, _canonical(v, types.get(k))) for k, v in row.items())) for row in rows)


@pytest.mark.parametrize(("engine", "suite", "test"), _cases())
def test_official_suite(engine: str, suite: dict[str, Any], test: dict[str, Any], request: pytest.FixtureRequest) -> None:
    if engine == "spark":
        request.getfixturevalue("spark")  # the one local Spark of the run (skips without it)
    resources = resources_table(suite["resources"])
    if test.get("expectError"):
        with pytest.raises(SofError):
            run_view(compile_view(parse_view(test["view"])), resources, engine=engine)
        return
    result = run_view(test["view"], resources, engine=engine)
    assert result.table is not None
    rows = result.table.to_pylist()
    if "expectCount" in test:
        assert len(rows) == test["expectCount"]
        return
    expected = test["expect"]
    if "expectColumns" in test:
        assert result.table.column_names == test["expectColumns"]
    if expected:
        assert set(result.table.column_names) == set(expected[0]), "every expected column, and no other"
    types = _declared_types(test["view"])
    assert _multiset(rows, types) == _multiset(expected, types)


def test_comparison_is_strict() -> None:
    """The comparator itself tells bool from int and int from float (outside decimals)."""
    types: dict[str, str | None] = {"a": "integer", "d": "decimal"}
    assert _multiset([{"a": 1}], types) != _multiset([{"a": True}], types)
    assert _multiset([{"a": 1}], types) != _multiset([{"a": 1.0}], types)
    assert _multiset([{"a": "1"}], types) != _multiset([{"a": 1}], types)
    assert _multiset([{"d": 5.0}], types) == _multiset([{"d": 5}], types)
    assert _multiset([{"d": True}], types) != _multiset([{"d": 1}], types)
    assert _multiset([{"a": 1}, {"a": 1}], types) != _multiset([{"a": 1}], types)
