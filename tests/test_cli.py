"""The ``fhirlake`` command line starts quickly: each command imports only its own area.

Speed is measured in benchmarks, not here; these tests assert what is imported, which is what
makes a command slow (Dagster, Presidio and spaCy, the MCP SDK, DuckDB, polars, pyarrow).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fhirlake.cli import _COMMANDS, _Entry, load_command, main

HEAVY = ("dagster", "presidio_analyzer", "spacy", "mcp", "duckdb", "polars", "pyarrow", "deltalake",
         "sqlglot", "uvicorn", "starlette", "httpx", "jwt", "pydantic", "fhirlake.serving")  # fmt: skip


def imported_after(*argv: str, cwd: Path | None = None) -> set[str]:
    """The top-level modules (and fhirlake subpackages) loaded by ``fhirlake ARGV`` in a fresh Python."""
    script = (
        "import json, sys\n"
        "from fhirlake.cli import main\n"
        f"code = main({list(argv)!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=cwd)
    names = json.loads(done.stdout.strip().splitlines()[-1])
    return {n.split(".")[0] for n in names} | {".".join(n.split(".")[:2]) for n in names if n.startswith("fhirlake.")}


def heavy(modules: set[str]) -> list[str]:
    return sorted(name for name in HEAVY if name in modules)


def test_the_top_level_help_imports_no_area() -> None:
    modules = imported_after("--help")
    assert heavy(modules) == []
    assert not any(m.startswith("fhirlake.") and m not in ("fhirlake.cli", "fhirlake.errors") for m in modules)


@pytest.mark.parametrize(
    "argv",
    [["demo", "--help"], ["view", "--help"], ["view", "validate", "--help"], ["synth", "--help"],
     ["export", "--help"], ["serve-bulk", "--help"], ["lake", "--help"], ["lake", "ingest", "--help"],
     ["sql", "--help"]],
    ids=" ".join,
)  # fmt: skip
def test_a_commands_help_imports_no_engine(argv: list[str]) -> None:
    assert heavy(imported_after(*argv)) == []


def test_a_lake_command_imports_its_area_only(tmp_path: Path) -> None:
    modules = imported_after("sql", "SELECT 1", "--lake", str(tmp_path / "none"))  # fails: no lake
    assert "duckdb" in modules
    assert [m for m in ("dagster", "presidio_analyzer", "spacy", "mcp", "fhirlake.serving") if m in modules] == []


@pytest.mark.parametrize("entry", _COMMANDS, ids=lambda e: e.name)
def test_the_listed_summary_is_the_commands_own(entry: _Entry) -> None:
    """``--help`` lists the summaries kept in fhirlake/cli.py: they must be the commands' own."""
    command = load_command(entry)
    assert command.name == entry.name
    assert command.get_short_help_str(limit=500) == entry.summary


def test_the_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {entry.name} " in out for entry in _COMMANDS)
    assert main(["no-such-command"]) == 2
