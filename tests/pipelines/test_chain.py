"""The code location run in-process against temporary folders and real loopback servers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

import fhirlake
from fhirlake.bulk import load_sources
from fhirlake.chain import stages
from fhirlake_pipelines.definitions import build_definitions
from fhirlake_pipelines.defs.resources import PseudonymizerResource
from fhirlake_pipelines.run import run_sources
from fhirlake_pipelines.settings import PROJECT_ROOT, PipelineSettings

pytestmark = [pytest.mark.slow, pytest.mark.live]


def _settings(tmp: Path, urls: dict[str, str], *, file_sources: tuple[str, ...] = ()) -> PipelineSettings:
    sources_file = tmp / "sources.yaml"
    sources_file.write_text(json.dumps({"sources": {s: {"url": u} for s, u in urls.items()}}), encoding="utf-8")
    return PipelineSettings(lake=tmp / "lake", sources_file=sources_file, sources=load_sources(sources_file),
                            file_sources=file_sources, drop_dir=tmp / "drop")


def _defs(settings: PipelineSettings, key: str) -> dg.Definitions:
    # text=False: free text redacted without Presidio (pipeline_lake covers Presidio)
    return build_definitions(settings, pseudonymizer=PseudonymizerResource(key=key, text=False, workers=1))


def _gold_counts(lake: Path) -> dict[str, int]:
    with fhirlake.connect(lake) as opened:
        return dict(opened.sql("SELECT _source, count(*) FROM gold.patient GROUP BY ALL").iter_rows())


def test_dg_check_defs_loads_the_code_location() -> None:
    dg_cli = Path(sys.executable).with_name("dg")
    done = subprocess.run([str(dg_cli), "check", "defs"], cwd=PROJECT_ROOT,  # plain: yaml checked too
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "All definitions loaded successfully" in done.stdout + done.stderr


def test_code_location_has_the_graph_jobs_schedules_and_sensor(tmp_path: Path, servers: dict[str, str],
                                                               key: str) -> None:
    defs = _defs(_settings(tmp_path, servers, file_sources=("clinic",)), key)
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    views = {p.stem for p in (PROJECT_ROOT / "sql_on_fhir_views").glob("*.json")}
    assert keys == {"bronze", "pseudonymised", "silver", "catalog"} | {f"gold/{v}" for v in views}
    assert {s.name for s in repo.schedule_defs} == {"nightly_site_a", "nightly_site_b", "weekly_optimize"}
    assert repo.get_schedule_def("weekly_optimize").job_name == "optimize_lake"
    schedule = repo.get_schedule_def("nightly_site_b")
    request = schedule.evaluate_tick(dg.build_schedule_context(repository_def=repo))
    assert [r.partition_key for r in request.run_requests or []] == ["site-b"]
    partitions = repo.asset_graph.get(dg.AssetKey("silver")).partitions_def
    assert partitions is not None and partitions.get_partition_keys() == ["clinic", "site-a", "site-b"]


def test_chain_runs_per_source_and_rerun_is_idempotent(tmp_path: Path, servers: dict[str, str], key: str) -> None:
    settings = _settings(tmp_path, servers)
    defs = _defs(settings, key)
    first = run_sources(defs, ["site-a", "site-b"], full=True)
    assert all(r.success for r in first.values()), first
    counts = _gold_counts(settings.lake)
    assert counts == {"site-a": 4, "site-b": 4}
    with fhirlake.connect(settings.lake) as opened:
        snapshots = len(opened.log.snapshots())
    again = run_sources(defs, ["site-a", "site-b"], full=False)  # incremental: nothing changed
    assert all(r.success for r in again.values()), again
    assert _gold_counts(settings.lake) == counts
    with fhirlake.connect(settings.lake) as opened:
        assert len(opened.log.snapshots()) == snapshots  # nothing new merged
    assert len(stages.pseudonymised_batches(settings.lake, "site-a")) == 1
    # the weekly compaction: one new snapshot, the same rows
    optimized = defs.resolve_job_def("optimize_lake").execute_in_process(raise_on_error=False)
    assert optimized.success
    assert _gold_counts(settings.lake) == counts
    with fhirlake.connect(settings.lake) as opened:
        assert [s.kind for s in opened.log.snapshots()][-1] == "optimize"


def test_a_failing_source_does_not_block_the_others(tmp_path: Path, servers: dict[str, str], key: str) -> None:
    # a real server, but the path is not a FHIR base: the kick-off is refused (404)
    dead = servers["site-b"].removesuffix("/fhir") + "/not-fhir"
    settings = _settings(tmp_path, {**servers, "down": dead})
    defs = _defs(settings, key)
    outcome = run_sources(defs, ["down", "site-a"], full=True)
    assert not outcome["down"].success and outcome["down"].error and outcome["down"].error.startswith("bronze")
    assert outcome["site-a"].success
    assert _gold_counts(settings.lake) == {"site-a": 4}


def test_a_leak_blocks_the_lake(tmp_path: Path, servers: dict[str, str], hospitals: dict[str, Path],
                                key: str) -> None:
    settings = _settings(tmp_path, servers)
    defs = _defs(settings, key)
    job = defs.resolve_job_def("full_export")
    partial = job.execute_in_process(partition_key="site-a", asset_selection=[dg.AssetKey("bronze"),
                                     dg.AssetKey("pseudonymised")], raise_on_error=False)
    assert partial.success
    # the fault: a patient's family name survives in the output (as a bad policy would leave it)
    patient = json.loads((hospitals["site-a"] / "Patient.ndjson").read_text().splitlines()[0])
    folder = stages.pseudonymised_batches(settings.lake, "site-a")[0]
    with (folder / "Patient.ndjson").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"resourceType": "Patient", "id": "x", "name": [{"family": patient["name"][0]["family"]}]}) + "\n")
    outcome = run_sources(defs, ["site-a"], full=False)["site-a"]
    assert not outcome.success
    assert "pseudonymised:no_identifier_leaks" in outcome.failed_checks
    assert stages.blocked_reason(folder) is not None
    assert not (settings.lake / "catalog.duckdb").exists()  # nothing reached silver or gold
    with pytest.raises(stages.BlockedBatchError, match="kept out of the lake"):
        stages.ingest_pending(settings.lake, "site-a")


def test_drop_folder_sensor_picks_up_a_batch(tmp_path: Path, servers: dict[str, str], hospitals: dict[str, Path],
                                             key: str) -> None:
    settings = _settings(tmp_path, servers, file_sources=("clinic",))
    defs = _defs(settings, key)
    repo = defs.get_repository_def()
    sensor = repo.get_sensor_def("drop_folder")
    with dg.instance_for_test() as instance:
        assert not sensor.evaluate_tick(dg.build_sensor_context(instance=instance, repository_def=repo)).run_requests
        batch = settings.drop_dir / "clinic" / "2025-07-01"
        shutil.copytree(hospitals["clinic"], batch, ignore=shutil.ignore_patterns("manifest.json", "truth.json"))
        assert not sensor.evaluate_tick(dg.build_sensor_context(instance=instance, repository_def=repo)).run_requests  # not ready
        (batch / "_READY").touch()
        requests = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, repository_def=repo)).run_requests or []
    assert [(r.partition_key, r.run_key) for r in requests] == [("clinic", "clinic/2025-07-01")]
    outcome = run_sources(defs, ["clinic"])
    assert outcome["clinic"].success, outcome
    assert _gold_counts(settings.lake) == {"clinic": 4}
    assert run_sources(defs, ["clinic"])["clinic"].success  # imported once
    assert len(stages.bronze_batches(settings.lake, "clinic")) == 1
