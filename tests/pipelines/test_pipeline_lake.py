"""The ``pipeline_lake`` fixture's contract: what the notebooks and other areas rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fhirlake

pytestmark = pytest.mark.slow


def test_pipeline_lake_holds_both_sources_pseudonymised(pipeline_lake: Path) -> None:
    reports = sorted(pipeline_lake.glob("pseudonymised/*/*/privacy-report.json"))
    assert [r.parts[-3] for r in reports] == ["site-a", "site-b"]
    for report in reports:
        data = json.loads(report.read_text(encoding="utf-8"))
        assert data["records"]["balanced"] and data["records"]["out"] > 0
        assert (report.parent / "quarantine.jsonl").is_file() and (report.parent / "manifest.json").is_file()
    with fhirlake.connect(pipeline_lake) as lake:
        per_source = dict(lake.sql("SELECT _source, count(*) FROM gold.patient GROUP BY ALL").iter_rows())
        assert per_source == {"site-a": 12, "site-b": 12}
        tables = set(lake.tables()["name"])
        assert {"gold.patient", "gold.condition", "gold.observation", "silver.Patient"} <= tables


def test_pipeline_lake_gold_carries_no_raw_patient_ids(pipeline_lake: Path) -> None:
    raw_ids = set()
    for site in ("site-a", "site-b"):
        for export in sorted((pipeline_lake / "_demo" / "drop" / site).glob("*/Patient.ndjson")):  # the demo's raw batches
            for line in export.read_text().splitlines():
                raw_ids.add(json.loads(line)["id"])
    assert len(raw_ids) == 24
    with fhirlake.connect(pipeline_lake) as lake:
        gold_ids = set(lake.sql("SELECT patient_id FROM gold.patient")["patient_id"])
    assert len(gold_ids) == 24
    assert not raw_ids & gold_ids


def test_the_demo_summary_masks_small_counts_and_names_no_patient(pipeline_lake: Path) -> None:
    from rich.console import Console

    from fhirlake.demo import DemoResult, print_summary

    console = Console(record=True, width=200)
    print_summary(console, DemoResult(lake=pipeline_lake, sources={"site-a": True, "site-b": True}, errors={}),
                  dagster_home=None)
    text = console.export_text()
    with fhirlake.connect(pipeline_lake) as lake:
        gold = [n for n in lake.tables()["name"] if n.startswith("gold.")]
        diabetic = lake.sql("SELECT count(DISTINCT patient_id) FROM gold.condition WHERE code = '44054006'").item()
        patient_ids = list(lake.sql("SELECT patient_id FROM gold.patient")["patient_id"])
    assert all(name in text for name in gold)
    cohort_line = next(line for line in text.splitlines() if "sample cohort" in line)
    assert diabetic < 11 and ": <11" in cohort_line  # 24 patients: every count of this cohort is small
    assert "site-a: 12 patients" in text and "site-b: 12 patients" in text
    assert not [pid for pid in patient_ids if pid in text]
