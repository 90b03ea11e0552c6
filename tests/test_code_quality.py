"""Lint and types are part of the test run: ruff on the whole tree, mypy strict on src/fhirlake."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)


def test_ruff_is_clean() -> None:
    done = _run(sys.executable, "-m", "ruff", "check", "src", "tests", "benchmarks", "pipelines", "notebooks")
    if "No module named ruff" in done.stderr:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_is_clean() -> None:
    done = _run(sys.executable, "-m", "mypy")
    if "No module named mypy" in done.stderr:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    assert done.returncode == 0, done.stdout + done.stderr
