"""The output folder looks like a Bulk Data export and is reproducible."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import orjson
import pytest

from fhirlake.synth import OutputDirectoryError, SynthOptionError, generate
from tests.synth.conftest import Run

EXPECTED_TYPES = {
    "AllergyIntolerance", "Condition", "DiagnosticReport", "DocumentReference", "Encounter", "Immunization",
    "MedicationRequest", "Observation", "Organization", "Patient", "Practitioner", "Procedure",
}


def test_manifest_lists_every_file_with_its_line_count(en_run: Run) -> None:
    manifest = en_run.manifest
    assert manifest["requiresAccessToken"] is False
    assert manifest["error"] == []
    assert manifest["transactionTime"].startswith("2025-06-30T12:00:00")
    assert {entry["type"] for entry in manifest["output"]} == EXPECTED_TYPES
    for entry in manifest["output"]:
        path = en_run.path / entry["url"]
        assert path.name == f"{entry['type']}.ndjson"
        lines = path.read_bytes().splitlines()
        assert len(lines) == entry["count"] == en_run.report.counts[entry["type"]]
        assert all(orjson.loads(line)["resourceType"] == entry["type"] for line in lines)
    ndjson = {p.name for p in en_run.path.glob("*.ndjson")}
    assert ndjson == {entry["url"] for entry in manifest["output"]}


def test_patient_count_and_truth_records(en_run: Run) -> None:
    patients = en_run.resources["Patient"]
    assert len(patients) == 160
    assert [r["patient"] for r in en_run.truth["records"]] == [f"Patient/{p['id']}" for p in patients]


def test_observations_dominate_like_in_a_synthea_export(en_run: Run) -> None:
    counts = en_run.report.counts
    clinical = sum(n for t, n in counts.items() if t != "DocumentReference")
    assert 0.45 < counts["Observation"] / clinical < 0.75
    per_patient = {t: n / counts["Patient"] for t, n in counts.items()}
    assert 15 < per_patient["Encounter"] < 60
    assert per_patient["MedicationRequest"] > 5
    assert per_patient["Condition"] > 3


def test_same_seed_same_bytes_whatever_the_workers(tmp_path: Path) -> None:
    one = generate(tmp_path / "one", patients=30, seed=5, workers=1)
    two = generate(tmp_path / "two", patients=30, seed=5, workers=2)
    other = generate(tmp_path / "other", patients=30, seed=6, workers=1)
    names = [*sorted(p.name for p in one.files.values()), "manifest.json", "truth.json"]
    for name in names:
        assert (one.out_dir / name).read_bytes() == (two.out_dir / name).read_bytes(), name
    assert (one.out_dir / "Patient.ndjson").read_bytes() != (other.out_dir / "Patient.ndjson").read_bytes()


def test_gzip_output_is_one_gzip_member_with_the_same_content(tmp_path: Path) -> None:
    plain = generate(tmp_path / "plain", patients=30, seed=8, workers=1)
    packed = generate(tmp_path / "packed", patients=30, seed=8, gzip=True, workers=2)
    assert packed.counts == plain.counts
    for rtype, path in packed.files.items():
        assert path.name == f"{rtype}.ndjson.gz"
        raw = path.read_bytes()
        single = zlib.decompressobj(zlib.MAX_WBITS | 16)
        content = single.decompress(raw)
        assert single.eof and single.unused_data == b""  # one member: readers that stop after it see everything
        assert content == gzip.decompress(raw) == plain.files[rtype].read_bytes()
    manifest = orjson.loads((packed.out_dir / "manifest.json").read_bytes())
    assert all(entry["url"].endswith(".ndjson.gz") for entry in manifest["output"])


def test_refuses_a_non_empty_folder_unless_overwrite(tmp_path: Path) -> None:
    generate(tmp_path, patients=3, seed=1, workers=1)
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(OutputDirectoryError):
        generate(tmp_path, patients=3, seed=1, workers=1)
    report = generate(tmp_path, patients=4, seed=2, workers=1, overwrite=True)
    assert report.counts["Patient"] == 4
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert len((tmp_path / "Patient.ndjson").read_bytes().splitlines()) == 4


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [({"patients": 0}, "patients"), ({"patients": 5, "locale": "de"}, "locale"), ({"patients": 5, "as_of": "soon"}, "as_of")],
)
def test_invalid_options_are_named(tmp_path: Path, kwargs: dict[str, object], word: str) -> None:
    with pytest.raises(SynthOptionError, match=word):
        generate(tmp_path, **kwargs)  # type: ignore[arg-type]
