"""fhirlake.batch: one batch type read from every layout, and nothing lost without a word."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import zstandard

from fhirlake.batch import BatchError, read_batch
from fhirlake.cli import main

PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1970-01-01"}
OBSERVATION = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"},
               "subject": {"reference": "Patient/p1"}}


def _ndjson(*resources: dict[str, object]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in resources)


def test_plain_folder_of_every_compression(tmp_path: Path) -> None:
    (tmp_path / "Patient.ndjson").write_bytes(_ndjson(PATIENT))
    (tmp_path / "Observation.001.ndjson.gz").write_bytes(gzip.compress(_ndjson(OBSERVATION)))
    (tmp_path / "Observation-2.ndjson.zst").write_bytes(zstandard.compress(_ndjson(OBSERVATION)))
    (tmp_path / "bundle.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": []}))
    (tmp_path / "truth.json").write_text("{}")
    (tmp_path / "done.json").write_text('{"patients": 3}')  # a tool's marker: not FHIR, not data
    batch = read_batch(tmp_path, source="site")
    assert batch.types == ["Observation", "Patient"]
    assert [p.name for p in batch.files["Observation"]] == ["Observation-2.ndjson.zst", "Observation.001.ndjson.gz"]
    assert [p.name for p in batch.bundles] == ["bundle.json"]
    assert batch.source == "site" and not batch.pseudonymised


@pytest.mark.parametrize(("name", "hint"), [("Observations.ndjson", "did you mean Observation?"),
                                            ("patients.ndjson.gz", "did you mean Patient?"),
                                            ("data.ndjson", "name data files <Type>.ndjson")])
def test_a_file_named_after_no_resource_type_is_an_error(tmp_path: Path, name: str, hint: str) -> None:
    (tmp_path / "Patient.ndjson").write_bytes(_ndjson(PATIENT))
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(BatchError, match="is not a FHIR R4 resource type") as caught:
        read_batch(tmp_path)
    assert name in str(caught.value) and hint in str(caught.value)
    assert "\n" not in str(caught.value)


def test_manifest_folder_files_counts_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_bytes(_ndjson(PATIENT))
    manifest = {"transactionTime": "2025-01-01T00:00:00Z", "request": "x",
                "output": [{"type": "Patient", "url": "https://server/files/a.ndjson", "count": 1}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    batch = read_batch(tmp_path)
    assert batch.files == {"Patient": (tmp_path / "a.ndjson",)}
    assert batch.manifest_counts == {"Patient": 1} and batch.transaction_time == "2025-01-01T00:00:00Z"
    manifest["output"].append({"type": "Observation", "url": "b.ndjson", "count": 3})
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BatchError, match=r"manifest.json#/output/1: the file 'b.ndjson' the manifest names is not"):
        read_batch(tmp_path)


def test_an_empty_file_the_manifest_counts_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "Observation.ndjson").write_bytes(b"")
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"output": [{"type": "Observation", "url": "Observation.ndjson", "count": 229}]}))
    with pytest.raises(BatchError, match="empty, but the manifest announces 229 Observation resources"):
        read_batch(tmp_path)


def test_bronze_export_is_read_in_place(tmp_path: Path) -> None:
    """The layout of fhirlake export (output/<Type>/NNNN.ndjson, deleted/) needs no staging."""
    from fhirlake.bulk._layout import BronzeLayout

    export = BronzeLayout(tmp_path, "site").create(now=0.0)
    folder = export.path
    (folder / "output" / "Patient").mkdir(parents=True)
    (folder / "output" / "Patient" / "0001.ndjson").write_bytes(_ndjson(PATIENT))
    (folder / "manifest.json").write_text(json.dumps({"transactionTime": "2025-02-02T00:00:00Z", "output": [
        {"type": "Patient", "url": "http://x/0001", "count": 1}]}))
    journal = folder / "state.jsonl"
    events = [{"event": "manifest", "transaction_time": "2025-02-02T00:00:00Z"},
              {"event": "file", "name": "output/Patient/0001.ndjson", "kind": "output", "type": "Patient",
               "url": "http://x/0001", "lines": 1, "bytes": 10, "sha256": "0"},
              {"event": "completed"}]
    with journal.open("a") as handle:
        for event in events:
            handle.write(json.dumps(event) + "\n")
    batch = read_batch(folder)
    assert batch.files == {"Patient": (folder / "output" / "Patient" / "0001.ndjson",)}
    assert batch.lines == {"Patient": 1} and batch.manifest_counts == {"Patient": 1}
    assert batch.label(batch.files["Patient"][0]) == "output/Patient/0001.ndjson"


def test_lake_ingest_refuses_raw_input_and_status_says_when_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "Patient.ndjson").write_bytes(_ndjson(PATIENT))
    lake = str(tmp_path / "lake")
    assert main(["lake", "ingest", str(export), "--source", "site", "--lake", lake]) == 2
    error = capsys.readouterr().err.strip()
    assert "not pseudonymised (no privacy-report.json)" in error and "--allow-raw" in error
    assert "\n" not in error and not (tmp_path / "lake" / "silver").exists()
    assert main(["lake", "ingest", str(export), "--source", "site", "--lake", lake, "--allow-raw"]) == 0
    capsys.readouterr()
    assert main(["lake", "status", "--lake", lake]) == 0
    assert "source site: " in (out := capsys.readouterr().out) and "RAW DATA" in out
