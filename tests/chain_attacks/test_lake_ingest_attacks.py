"""fhirlake lake ingest: raw data refused, counts reconciled, nothing half-written (issue 15)."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.chain_attacks.names import near_miss_file
from tests.chain_attacks.support import (
    assert_refused,
    cli,
    copy_batch,
    lake_fingerprint,
    lines_by_type,
    read_lines,
    report,
    silver_counts,
    status_line,
)
from tests.chain_attacks.test_pseudonymize_attacks import zstd_batch

FEW = settings(max_examples=6, deadline=None, database=None,
               suppress_health_check=[HealthCheck.too_slow])


def ingest(folder: Path, lake: Path, views: Path, *extra: str, source: str = "attack"):
    return cli("lake", "ingest", folder, "--source", source, "--lake", lake, "--views", views,
               *extra)


def bundle_folder(raw: Path, folder: Path) -> Path:
    entries = [{"fullUrl": f"urn:uuid:{json.loads(line)['id']}", "resource": json.loads(line)}
               for path in sorted(raw.glob("*.ndjson")) for line in read_lines(path)]
    folder.mkdir(parents=True)
    (folder / "export.json").write_text(
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}))
    return folder


def gzip_batch(raw: Path, folder: Path) -> Path:
    src = copy_batch(raw, folder, manifest=False)
    for path in list(src.glob("*.ndjson")):
        (src / (path.name + ".gz")).write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    return src


RAW_LAYOUTS = ("plain", "plain-no-manifest", "gzip", "zstd", "bronze", "bundle")


def raw_layout(layout: str, raw: Path, bronze: Path, folder: Path) -> Path:
    if layout == "plain":
        return copy_batch(raw, folder)
    if layout == "plain-no-manifest":
        return copy_batch(raw, folder, manifest=False)
    if layout == "gzip":
        return gzip_batch(raw, folder)
    if layout == "zstd":
        return zstd_batch(raw, folder, manifest=True)
    if layout == "bronze":
        return bronze
    return bundle_folder(raw, folder)


@pytest.mark.parametrize("layout", RAW_LAYOUTS)
def test_raw_input_is_refused_in_every_layout(raw_batch: Path, bronze_export: Path,
                                              views: Path, tmp_path: Path, layout: str) -> None:
    folder = raw_layout(layout, raw_batch, bronze_export, tmp_path / "raw")
    lake = tmp_path / "lake"
    result = ingest(folder, lake, views)
    assert_refused(result, "--allow-raw")
    assert lake_fingerprint(lake) == (), f"a refused raw batch wrote to the lake:\n{result}"


def test_raw_input_into_an_existing_lake_changes_nothing(
        raw_batch: Path, base_lake: Path, views: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    shutil.copytree(base_lake, lake)
    before = lake_fingerprint(lake)
    result = ingest(copy_batch(raw_batch, tmp_path / "raw"), lake, views, source="base")
    assert_refused(result, "--allow-raw")
    assert lake_fingerprint(lake) == before
    assert "RAW" not in status_line(lake, "base")


def test_pseudonymised_batch_without_its_privacy_report_is_refused(
        pseudo_batch: Path, base_lake: Path, views: Path, tmp_path: Path) -> None:
    folder = copy_batch(pseudo_batch, tmp_path / "p")
    (folder / "privacy-report.json").unlink()
    lake = tmp_path / "lake"
    shutil.copytree(base_lake, lake)
    before = lake_fingerprint(lake)
    result = ingest(folder, lake, views)
    assert_refused(result, "privacy-report.json", "--allow-raw")
    assert lake_fingerprint(lake) == before


@pytest.mark.parametrize("layout", ("plain", "zstd", "bronze", "bundle"))
def test_allow_raw_ingests_everything_and_status_says_raw(
        raw_batch: Path, bronze_export: Path, views: Path, tmp_path: Path, layout: str) -> None:
    folder = raw_layout(layout, raw_batch, bronze_export, tmp_path / "raw")
    lake = tmp_path / "lake"
    result = ingest(folder, lake, views, "--allow-raw", source="rawsite")
    assert result.code == 0, str(result)
    assert silver_counts(lake) == lines_by_type(raw_batch)
    assert "RAW" in status_line(lake, "rawsite")


def test_raw_flag_survives_a_later_pseudonymised_batch(
        raw_batch: Path, pseudo_batch: Path, views: Path, tmp_path: Path) -> None:
    """The raw records are still in the lake: the status must keep saying so."""
    lake = tmp_path / "lake"
    assert ingest(copy_batch(raw_batch, tmp_path / "raw"), lake, views, "--allow-raw",
                  source="site").code == 0
    result = ingest(copy_batch(pseudo_batch, tmp_path / "p"), lake, views, source="site")
    assert result.code == 0, str(result)
    assert "RAW" in status_line(lake, "site")


def test_pseudonymised_source_is_not_flagged_raw(base_lake: Path) -> None:
    assert "RAW" not in status_line(base_lake, "base")


# ---- a privacy report alone is not proof: raw records inside a "pseudonymised" folder ----

def test_raw_folder_with_a_copied_privacy_report_is_refused(
        raw_batch: Path, pseudo_batch: Path, views: Path, tmp_path: Path) -> None:
    folder = copy_batch(raw_batch, tmp_path / "raw")
    shutil.copy(pseudo_batch / "privacy-report.json", folder / "privacy-report.json")
    lake = tmp_path / "lake"
    result = ingest(folder, lake, views)
    assert_refused(result)
    assert lake_fingerprint(lake) == ()


def test_raw_patients_swapped_into_a_pseudonymised_folder_are_refused(
        raw_batch: Path, pseudo_batch: Path, views: Path, tmp_path: Path) -> None:
    folder = copy_batch(pseudo_batch, tmp_path / "p")
    shutil.copy(raw_batch / "Patient.ndjson", folder / "Patient.ndjson")
    lake = tmp_path / "lake"
    result = ingest(folder, lake, views)
    assert_refused(result, "Patient.ndjson")
    assert lake_fingerprint(lake) == ()


def test_file_added_after_pseudonymisation_is_refused(
        raw_batch: Path, pseudo_batch: Path, views: Path, tmp_path: Path) -> None:
    """A type neither the manifest nor the privacy report knows, with raw records in it."""
    folder = copy_batch(pseudo_batch, tmp_path / "p")
    (folder / "AllergyIntolerance.ndjson").write_text(
        (raw_batch / "Patient.ndjson").read_text().replace('"Patient"', '"AllergyIntolerance"'))
    lake = tmp_path / "lake"
    result = ingest(folder, lake, views)
    assert_refused(result, "AllergyIntolerance.ndjson")
    assert lake_fingerprint(lake) == ()


# ---- counts ----

@pytest.mark.parametrize("manifest", [True, False])
def test_lines_missing_from_a_pseudonymised_file_are_refused(
        pseudo_batch: Path, views: Path, tmp_path: Path, manifest: bool) -> None:
    """The manifest (or the privacy report's out count) says 10 more Observations than there are."""
    folder = copy_batch(pseudo_batch, tmp_path / "p", manifest=manifest)
    lines = (folder / "Observation.ndjson").read_text().splitlines(keepends=True)
    (folder / "Observation.ndjson").write_text("".join(lines[:-10]))
    assert report(folder)["records"]["out_by_type"]["Observation"] == len(lines)
    lake = tmp_path / "lake"
    result = ingest(folder, lake, views)
    assert_refused(result, "Observation.ndjson", "manifest.json", "privacy-report.json")
    assert lake_fingerprint(lake) == ()


@pytest.mark.parametrize("kind", ["Procedure", "Observation"])
def test_empty_file_the_manifest_counts_is_refused(
        pseudo_batch: Path, base_lake: Path, views: Path, tmp_path: Path, kind: str) -> None:
    folder = copy_batch(pseudo_batch, tmp_path / "p")
    (folder / f"{kind}.ndjson").write_text("")
    lake = tmp_path / "lake"
    shutil.copytree(base_lake, lake)
    before = lake_fingerprint(lake)
    result = ingest(folder, lake, views)
    assert_refused(result, f"{kind}.ndjson")
    assert lake_fingerprint(lake) == before


@pytest.mark.parametrize("failure", ["quarantine-rate", "manifest-count"])
def test_batch_that_pseudonymize_rejected_is_not_ingested(
        raw_batch: Path, views: Path, tmp_path: Path, failure: str) -> None:
    """pseudonymize exited 1 (too many quarantined / counts off the manifest), yet left OUT:
    lake ingest must not take it with exit 0 (the issue: every by-hand command reconciles)."""
    src = copy_batch(raw_batch, tmp_path / "in", manifest=failure == "manifest-count")
    if failure == "quarantine-rate":
        with (src / "Observation.ndjson").open("a") as handle:
            handle.write("{bad json\n" * 40)
    else:
        data = json.loads((src / "manifest.json").read_text())
        for entry in data["output"]:
            if entry["type"] == "Condition":
                entry["count"] += 7
        (src / "manifest.json").write_text(json.dumps(data))
    out = tmp_path / "out"
    first = cli("pseudonymize", src, out, "--no-text", "--workers", "1")
    assert first.code != 0, str(first)
    if not (out / "privacy-report.json").exists():
        return  # nothing left to ingest: fine
    lake = tmp_path / "lake"
    result = ingest(out, lake, views)
    assert_refused(result)
    assert lake_fingerprint(lake) == ()


# ---- names ----

@FEW
@given(case=near_miss_file(), with_manifest=st.booleans())
def test_near_miss_names_in_a_pseudonymised_folder(
        pseudo_batch: Path, views: Path, tmp_path_factory: pytest.TempPathFactory,
        case: tuple[str, str], with_manifest: bool) -> None:
    kind, name = case
    root = tmp_path_factory.mktemp("ingest-near-miss")
    folder = copy_batch(pseudo_batch, root / "p", manifest=with_manifest)
    expected = lines_by_type(folder)
    (folder / f"{kind}.ndjson").rename(folder / name)
    lake = root / "lake"
    result = ingest(folder, lake, views)
    if result.code == 0:
        assert silver_counts(lake) == expected, f"{name}: records lost with exit 0\n{result}"
    else:
        assert_refused(result, name.strip() or name, "manifest.json")
        assert lake_fingerprint(lake) == ()


def test_unknown_type_file_is_refused(pseudo_batch: Path, views: Path, tmp_path: Path) -> None:
    folder = copy_batch(pseudo_batch, tmp_path / "p", manifest=False)
    shutil.copy(folder / "Patient.ndjson", folder / "Foo.ndjson")
    result = ingest(folder, tmp_path / "lake", views)
    assert_refused(result, "Foo.ndjson")
    assert lake_fingerprint(tmp_path / "lake") == ()


# ---- no half-written tables ----

@pytest.mark.parametrize("damage", ["truncated-gzip", "bad-line"])
def test_damaged_last_file_leaves_the_lake_as_it_was(
        pseudo_batch: Path, base_lake: Path, views: Path, tmp_path: Path, damage: str) -> None:
    """Procedure sorts after most types: earlier types must not be half-merged."""
    folder = copy_batch(pseudo_batch, tmp_path / "p", manifest=False)
    lines = (folder / "Procedure.ndjson").read_text().splitlines(keepends=True)
    # every resource changes (a newer lastUpdated), so a partial merge would show
    for path in folder.glob("*.ndjson"):
        path.write_text(path.read_text().replace('"lastUpdated":"20', '"lastUpdated":"21'))
    if damage == "truncated-gzip":
        data = gzip.compress((folder / "Procedure.ndjson").read_bytes())
        (folder / "Procedure.ndjson").unlink()
        (folder / "Procedure.ndjson.gz").write_bytes(data[: len(data) * 2 // 3])
        names: tuple[str, ...] = ("Procedure.ndjson.gz",)
    else:
        middle = len(lines) // 2
        lines = (folder / "Procedure.ndjson").read_text().splitlines(keepends=True)
        lines[middle] = "{this is not json\n"
        (folder / "Procedure.ndjson").write_text("".join(lines))
        names = (f"Procedure.ndjson:{middle + 1}",)
    lake = tmp_path / "lake"
    shutil.copytree(base_lake, lake)
    before, counts = lake_fingerprint(lake), silver_counts(lake)
    # changed by: the edits above make the files differ from what pseudonymize wrote, which the
    # lake now refuses outright (privacy-report.json holds each file's SHA-256); --allow-raw lets
    # the merge start, so the damaged last file is what stops it, as this test means
    result = ingest(folder, lake, views, "--allow-raw", source="base")
    assert result.code != 0, str(result)
    assert lake_fingerprint(lake) == before, f"a refused batch committed some tables:\n{result}"
    assert silver_counts(lake) == counts
    assert_refused(result, *names)


# ---- formats ----

def test_zstd_pseudonymised_batch_is_ingested_whole(
        pseudo_batch: Path, views: Path, tmp_path: Path) -> None:
    folder = zstd_batch(pseudo_batch, tmp_path / "p", manifest=True)
    lake = tmp_path / "lake"
    result = ingest(folder, lake, views)
    assert result.code == 0, str(result)
    assert silver_counts(lake) == lines_by_type(pseudo_batch)
    assert "RAW" not in status_line(lake, "attack")
