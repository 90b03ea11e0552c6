"""The notebooks on a lake built by hand with plain ``fhirlake lake ingest`` of folders without a
manifest (no transactionTime, so no watermark), as a researcher's own lake may be: they run
without an error and draw no group under k (issue #15, point 9)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fhirlake.cli import main
from fhirlake.synth import generate
from tests.notebooks.test_notebooks import execute, outputs, shown

pytestmark = pytest.mark.slow
PLAIN = ["01-quick-start.ipynb", "02-cohort-study.ipynb", "03-incremental-updates-and-time-travel.ipynb",
         "05-writing-a-view.ipynb"]


@pytest.fixture(scope="module")
def plain_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("plain")
    lake = base / "lake"
    for index, site in enumerate(("north", "south")):
        folder = base / site
        generate(folder, patients=40, seed=70 + index, workers=1)
        (folder / "manifest.json").unlink()  # a plain folder of <Type>.ndjson files
        assert main(["lake", "ingest", str(folder), "--source", site, "--lake", str(lake), "--allow-raw"]) == 0
    return lake


@pytest.fixture(scope="module")
def runs(plain_lake: Path, kernel: str) -> dict[str, Any]:
    return {name: execute(name, plain_lake, kernel) for name in PLAIN}


@pytest.mark.parametrize("name", PLAIN)
def test_a_notebook_runs_on_a_plain_lake(runs: dict[str, Any], name: str) -> None:
    errors = [o for o in outputs(runs[name]) if o.output_type == "error"]
    assert not errors, f"{name}: {errors[0].ename}: {errors[0].evalue}"


def test_time_travel_says_there_is_no_watermark(runs: dict[str, Any]) -> None:
    text = shown(outputs(runs["03-incremental-updates-and-time-travel.ipynb"]))
    assert "north: last export north, watermark none (no transactionTime)" in text
