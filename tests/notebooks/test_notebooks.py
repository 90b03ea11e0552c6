"""The researcher notebooks: stored clean, and run end to end against lakes made by the real chain.

Each notebook is executed once per session by a real Jupyter kernel of the running interpreter
(nbclient), with ``FHIRLAKE_LAKE`` pointing at the ``pipeline_lake`` fixture (synthetic
hospitals exported, pseudonymised and flattened through the Dagster code location) and the
working directory ``notebooks/``, as a researcher would run them. The outputs are then checked:
no error, no warning, no patient identifier (original or pseudonymous), the plots drawn, the
shared lake left as it was.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

import fhirlake
from fhirlake.pseudonymize.scan import input_terms
from tests.conftest import PROJECT_ROOT

NOTEBOOKS = PROJECT_ROOT / "notebooks"
NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
_IDENTIFYING = {"PERSON", "IDENTIFIER", "PHONE_NUMBER", "EMAIL_ADDRESS"}


def test_the_notebooks_are_there_and_listed() -> None:
    expected = {"01-quick-start.ipynb", "02-cohort-study.ipynb", "03-incremental-updates-and-time-travel.ipynb",
                "04-what-pseudonymisation-did.ipynb", "05-writing-a-view.ipynb"}
    assert expected <= set(NAMES)
    listing = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    assert all(f"({name})" in listing for name in NAMES), "notebooks/README.md must link every notebook"


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_has_no_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)  # type: ignore[no-untyped-call]
    nbformat.validate(notebook)
    dirty = [i for i, cell in enumerate(notebook.cells)
             if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, (f"notebooks/{name}: cells {dirty} have outputs or execution counts; clear them "
                       f"(jupyter nbconvert --clear-output --inplace notebooks/{name})")
    assert "widgets" not in notebook.metadata


def execute(name: str, lake: Path, kernel: str) -> nbformat.NotebookNode:
    """Run a copy of ``notebooks/<name>`` in ``notebooks/`` with ``FHIRLAKE_LAKE=lake``."""
    from nbclient import NotebookClient

    notebook: nbformat.NotebookNode = nbformat.read(NOTEBOOKS / name, as_version=4)  # type: ignore[no-untyped-call]
    saved = os.environ.get("FHIRLAKE_LAKE")
    os.environ["FHIRLAKE_LAKE"] = str(lake)
    try:
        NotebookClient(notebook, timeout=600, kernel_name=kernel,
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    finally:
        if saved is None:
            os.environ.pop("FHIRLAKE_LAKE", None)
        else:
            os.environ["FHIRLAKE_LAKE"] = saved
    return notebook


def fingerprint(lake: Path) -> dict[str, tuple[int, int]]:
    """Every file of the lake with its size and modification time."""
    return {str(p.relative_to(lake)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(lake.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def executed(pipeline_lake: Path, kernel: str) -> dict[str, Any]:
    """Every notebook run once against the pipeline lake, and the lake's files before and after."""
    before = fingerprint(pipeline_lake)
    runs = {name: execute(name, pipeline_lake, kernel) for name in NAMES}
    return {"runs": runs, "before": before, "after": fingerprint(pipeline_lake)}


def outputs(notebook: nbformat.NotebookNode) -> list[Any]:
    """The outputs of every code cell, in order."""
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]


def output_text(notebook: nbformat.NotebookNode) -> str:
    """All text the notebook showed (streams, results, errors), images left out."""
    return shown(outputs(notebook))


def shown(outs: list[Any]) -> str:
    """The text of these outputs."""
    parts: list[str] = []
    for out in outs:
        parts.append(out.get("text", ""))
        data = out.get("data", {})
        parts += [str(v) for k, v in data.items() if not k.startswith("image/")]
        parts += [out.get("evalue", "")]
    return "\n".join(parts)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_cleanly_on_the_pipeline_lake(executed: dict[str, Any], name: str) -> None:
    notebook = executed["runs"][name]
    errors = [o for o in outputs(notebook) if o.output_type == "error"]
    assert not errors, f"{name}: {errors[0].ename}: {errors[0].evalue}"
    stderr = [o.text for o in outputs(notebook) if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"{name} wrote to stderr (a warning?): {stderr[0][:500]}"
    assert all(c.execution_count for c in notebook.cells if c.cell_type == "code")


def test_no_patient_identifier_is_shown(executed: dict[str, Any], pipeline_lake: Path) -> None:
    shown = "\n".join(output_text(nb) for nb in executed["runs"].values())
    secrets: set[str] = set()
    for export in pipeline_lake.glob("bronze/*/*/state.jsonl"):
        _, terms, original_ids = input_terms(export.parent)  # the raw batch, read in place
        secrets |= {t.text for t in terms if t.entity in _IDENTIFYING and not t.weak}
        secrets |= set(original_ids)
    lake = fhirlake.connect(pipeline_lake)
    try:
        keys = set(lake.sql("SELECT patient_id FROM gold.patient")["patient_id"])
        keys |= set(lake.sql("SELECT resource_key FROM silver.Observation")["resource_key"])
    finally:
        lake.close()
    assert len(secrets) > 20 and len(keys) > 20  # the scan has something to look for
    leaked = sorted(s for s in secrets | keys if len(s) >= 5 and s in shown)
    assert not leaked, f"{len(leaked)} patient identifiers shown by the notebooks"


def test_the_shared_lake_is_left_as_it_was(executed: dict[str, Any]) -> None:
    assert executed["before"] == executed["after"]


def test_privacy_reports_are_read(executed: dict[str, Any], pipeline_lake: Path) -> None:
    text = output_text(executed["runs"]["04-what-pseudonymisation-did.ipynb"])
    reports = list(pipeline_lake.glob("pseudonymised/*/*/privacy-report.json"))
    assert reports and f"{len(reports)} privacy report(s)" in text
    key_id = json.loads(reports[0].read_text(encoding="utf-8"))["key_id"]
    assert key_id in text


def test_time_travel_shows_the_new_source_then_not(executed: dict[str, Any]) -> None:
    text = output_text(executed["runs"]["03-incremental-updates-and-time-travel.ipynb"])
    assert "site-c" in text and "is already in snapshot" in text and "changed: False" in text
    assert "as_of the first export  -> snapshot 1" in text


def test_cohort_study_on_a_larger_lake_draws_its_plots(demo_lake: Path, kernel: str) -> None:
    notebook = execute("02-cohort-study.ipynb", demo_lake, kernel)
    assert not [o for o in outputs(notebook) if o.output_type == "error"]
    images = [o for o in outputs(notebook) if "image/png" in o.get("data", {})]
    assert len(images) == 3
    lake = fhirlake.connect(demo_lake)
    try:
        known_age = lake.sql("SELECT count(*) AS n FROM gold.patient WHERE age IS NOT NULL")["n"][0]
    finally:
        lake.close()
    assert f"{known_age} patients with a known age" in output_text(notebook)
    table = next(t for t in (shown([o]) for o in outputs(notebook)) if "age_band" in t)
    cells = [row.strip("│ ").split("┆") for row in table.splitlines() if row.startswith("│") and "┆" in row]
    header = [c.strip() for c in cells[0]]
    counts = [row[header.index(c)].strip() for row in cells[3:] for c in ("patients", "hypertension", "diabetes")]
    assert counts and all(re.fullmatch(r"<11|-|0|[1-9]\d+", c) and c not in {str(n) for n in range(1, 11)}
                          for c in counts), f"a count under 11 was displayed: {counts}"
