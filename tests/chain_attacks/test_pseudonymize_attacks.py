"""fhirlake pseudonymize: nothing lost with exit 0 (issue 15, point 2)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.chain_attacks.names import EXTENSION_MUTATIONS, near_miss_file
from tests.chain_attacks.support import (
    assert_refused,
    cli,
    copy_batch,
    lines_by_type,
    read_lines,
    report,
    set_manifest_count,
)

FEW = settings(max_examples=10, deadline=None, database=None,
               suppress_health_check=[HealthCheck.too_slow])


def pseudonymize(src: Path, out: Path, *extra: str):
    return cli("pseudonymize", src, out, "--no-text", "--workers", "1", *extra)


def assert_balanced(src_counts: dict[str, int], out: Path) -> dict:
    """in = every input record, in = out + quarantined, out = what was written, per type."""
    records = report(out)["records"]
    total = sum(src_counts.values())
    assert records["in"] == total, f"read {records['in']} of {total} input records: {records}"
    assert records["in"] == records["out"] + records["quarantined"], records
    written = sum(len(read_lines(p)) for p in out.glob("*.ndjson"))
    assert written == records["out"], f"{written} lines written, report says {records['out']}"
    quarantine = out / "quarantine.jsonl"
    held = len(read_lines(quarantine)) if quarantine.exists() else 0
    assert held == records["quarantined"], f"{held} quarantine entries, report {records}"
    return records


def assert_nothing_written(out: Path) -> None:
    assert not (out / "privacy-report.json").exists(), (
        f"a refused run left a batch that looks complete: {sorted(p.name for p in out.iterdir())}")


@FEW
@given(case=near_miss_file(), with_manifest=st.booleans())
def test_near_miss_file_names_are_refused_or_fully_read(
        raw_batch: Path, tmp_path_factory: pytest.TempPathFactory,
        case: tuple[str, str], with_manifest: bool) -> None:
    kind, name = case
    root = tmp_path_factory.mktemp("near-miss")
    src = copy_batch(raw_batch, root / "in", manifest=with_manifest)
    expected = lines_by_type(src)
    (src / f"{kind}.ndjson").rename(src / name)
    out = root / "out"
    result = pseudonymize(src, out)
    if result.code == 0:
        records = assert_balanced(expected, out)
        assert records["out_by_type"].get(kind, 0) == expected[kind], (
            f"{name}: {expected[kind]} {kind} records in, "
            f"{records['out_by_type'].get(kind, 0)} out, exit 0\n{result}")
    else:
        assert_refused(result, name.strip() or name, "manifest.json")
        assert_nothing_written(out)


def test_file_of_an_unknown_type_is_refused(raw_batch: Path, tmp_path: Path) -> None:
    src = copy_batch(raw_batch, tmp_path / "in", manifest=False)
    (src / "Foo.ndjson").write_text((src / "Patient.ndjson").read_text())
    result = pseudonymize(src, tmp_path / "out")
    assert_refused(result, "Foo.ndjson")
    assert_nothing_written(tmp_path / "out")


@FEW
@given(foreign=st.integers(0, 12), host=st.sampled_from(["Observation", "Encounter"]))
def test_mixed_type_file_counts_add_up_and_rate_blocks(
        raw_batch: Path, tmp_path_factory: pytest.TempPathFactory, foreign: int, host: str) -> None:
    root = tmp_path_factory.mktemp("mixed")
    src = copy_batch(raw_batch, root / "in", manifest=False)
    strangers = (src / "Patient.ndjson").read_text().splitlines() + \
        (src / "Practitioner.ndjson").read_text().splitlines()
    with (src / f"{host}.ndjson").open("a") as handle:
        for line in (strangers * 4)[:foreign]:
            handle.write(line + "\n")
    total = sum(len(read_lines(p)) for p in src.glob("*.ndjson"))
    out = root / "out"
    result = pseudonymize(src, out)
    records = assert_balanced({"all": total}, out) if (out / "privacy-report.json").exists() \
        else None
    if records is None:
        assert_refused(result)
        return
    rate = records["quarantined"] / records["in"]
    if rate > 0.01:
        assert_refused(result, "quarantine")
    else:
        assert result.code == 0, str(result)


@FEW
@given(bad=st.integers(0, 30),
       threshold=st.sampled_from([None, 0.0, 0.005, 0.02, 0.05, 0.5]),
       garbage=st.sampled_from(["{bad json", "[]", '{"resourceType": 3}', "null",
                                '{"resourceType":"Observation"']))
def test_quarantine_rate_threshold(raw_batch: Path, tmp_path_factory: pytest.TempPathFactory,
                                   bad: int, threshold: float | None, garbage: str) -> None:
    root = tmp_path_factory.mktemp("rate")
    src = copy_batch(raw_batch, root / "in", manifest=False)
    good = sum(len(read_lines(p)) for p in src.glob("*.ndjson"))
    with (src / "Observation.ndjson").open("a") as handle:
        handle.write((garbage + "\n") * bad)
    limit = 0.01 if threshold is None else threshold
    extra = () if threshold is None else ("--max-quarantine-rate", str(threshold))
    out = root / "out"
    result = pseudonymize(src, out, *extra)
    rate = bad / (good + bad)
    if rate > limit:
        assert_refused(result, "quarantine", str(out), out.name)
    else:
        assert result.code == 0, str(result)
    records = assert_balanced({"all": good + bad}, out)
    assert records["quarantined"] == bad, records
    for line in read_lines(out / "quarantine.jsonl"):
        entry = json.loads(line)
        assert entry["file"].endswith("Observation.ndjson") and int(entry["line"]) > 0, entry


@FEW
@given(kind=st.sampled_from(["Procedure", "Observation", "Patient", "Condition"]))
def test_empty_file_the_manifest_counts_is_refused(
        raw_batch: Path, tmp_path_factory: pytest.TempPathFactory, kind: str) -> None:
    root = tmp_path_factory.mktemp("empty")
    src = copy_batch(raw_batch, root / "in")
    (src / f"{kind}.ndjson").write_text("")
    result = pseudonymize(src, root / "out")
    assert_refused(result, f"{kind}.ndjson")
    assert_nothing_written(root / "out")


def test_manifest_naming_a_missing_file_is_refused(raw_batch: Path, tmp_path: Path) -> None:
    src = copy_batch(raw_batch, tmp_path / "in")
    (src / "Encounter.ndjson").unlink()
    result = pseudonymize(src, tmp_path / "out")
    assert_refused(result, "Encounter.ndjson", "manifest.json#")
    assert_nothing_written(tmp_path / "out")


@FEW
@given(kind=st.sampled_from(["Procedure", "Observation", "Patient", "Encounter"]),
       delta=st.integers(-5, 5).filter(bool))
def test_manifest_count_that_disagrees_exits_non_zero(
        raw_batch: Path, tmp_path_factory: pytest.TempPathFactory, kind: str, delta: int) -> None:
    root = tmp_path_factory.mktemp("count")
    src = copy_batch(raw_batch, root / "in")
    actual = len(read_lines(src / f"{kind}.ndjson"))
    announced = actual + delta if actual + delta >= 0 else actual - delta
    set_manifest_count(src, kind, announced)
    result = pseudonymize(src, root / "out")
    assert result.code != 0, f"manifest says {announced} {kind}, file holds {actual}:\n{result}"
    assert_refused(result)


def test_manifest_count_mismatch_reason_names_the_file_or_pointer(
        raw_batch: Path, tmp_path: Path) -> None:
    src = copy_batch(raw_batch, tmp_path / "in")
    set_manifest_count(src, "Condition", len(read_lines(src / "Condition.ndjson")) + 5)
    result = pseudonymize(src, tmp_path / "out")
    assert_refused(result, "Condition.ndjson", "manifest.json")


def test_truncated_gzip_is_refused(raw_batch: Path, tmp_path: Path) -> None:
    src = copy_batch(raw_batch, tmp_path / "in", manifest=False)
    data = gzip.compress((src / "Observation.ndjson").read_bytes())
    (src / "Observation.ndjson").unlink()
    (src / "Observation.ndjson.gz").write_bytes(data[: len(data) // 2])
    result = pseudonymize(src, tmp_path / "out")
    assert_refused(result, "Observation.ndjson.gz")
    assert_nothing_written(tmp_path / "out")


def zstd_batch(raw: Path, folder: Path, *, manifest: bool) -> Path:
    import zstandard
    src = copy_batch(raw, folder, manifest=manifest)
    for path in list(src.glob("*.ndjson")):
        (src / (path.name + ".zst")).write_bytes(
            zstandard.ZstdCompressor().compress(path.read_bytes()))
        path.unlink()
    if manifest:
        data = json.loads((src / "manifest.json").read_text())
        for entry in data["output"]:
            entry["url"] = entry["url"] + ".zst"
        (src / "manifest.json").write_text(json.dumps(data))
    return src


@pytest.mark.parametrize("manifest", [True, False])
def test_zstd_batch_is_accepted_whole(raw_batch: Path, tmp_path: Path, manifest: bool) -> None:
    src = zstd_batch(raw_batch, tmp_path / "in", manifest=manifest)
    expected = lines_by_type(src)
    result = pseudonymize(src, tmp_path / "out")
    assert result.code == 0, str(result)
    records = assert_balanced(expected, tmp_path / "out")
    assert records["out_by_type"] == expected


@pytest.mark.parametrize("where", ["file", "folder"])
def test_bundle_is_accepted_whole(raw_batch: Path, tmp_path: Path, where: str) -> None:
    expected = lines_by_type(raw_batch)
    entries = [{"fullUrl": f"urn:uuid:{json.loads(line)['id']}", "resource": json.loads(line)}
               for path in sorted(raw_batch.glob("*.ndjson")) for line in read_lines(path)]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "export.json").write_text(json.dumps(bundle))
    src = folder / "export.json" if where == "file" else folder
    result = pseudonymize(src, tmp_path / "out")
    assert result.code == 0, str(result)
    records = assert_balanced(expected, tmp_path / "out")
    assert records["out_by_type"] == expected


@pytest.mark.parametrize("extension", EXTENSION_MUTATIONS)
def test_near_miss_extension_is_not_skipped_silently(
        raw_batch: Path, tmp_path: Path, extension: str) -> None:
    """Observation<ext> with NDJSON inside, no manifest: read whole, or refused by name."""
    src = copy_batch(raw_batch, tmp_path / "in", manifest=False)
    expected = lines_by_type(src)
    name = "Observation" + extension
    (src / "Observation.ndjson").rename(src / name)
    out = tmp_path / "out"
    result = pseudonymize(src, out)
    if result.code != 0:
        assert_refused(result, name.strip() or name)
        return
    records = report(out)["records"]
    assert records["out_by_type"].get("Observation", 0) == expected["Observation"], (
        f"{name!r}: {expected['Observation']} Observations in, "
        f"{records['out_by_type'].get('Observation', 0)} out, "
        f"{records['quarantined']} quarantined, exit 0")
