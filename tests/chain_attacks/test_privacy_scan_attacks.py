"""fhirlake privacy scan: no file it skips silently, no leak it misses by a file's name."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.chain_attacks.support import assert_refused, cli, copy_batch


def scan(out: Path, raw: Path):
    return cli("privacy", "scan", out, "--input", raw)


def test_clean_pseudonymised_batch_passes(pseudo_batch: Path, raw_batch: Path) -> None:
    result = scan(pseudo_batch, raw_batch)
    assert result.code == 0, str(result)


def test_misnamed_file_in_the_output_is_refused(
        pseudo_batch: Path, raw_batch: Path, tmp_path: Path) -> None:
    """The issue: with Observations.ndjson, privacy scan exits 0. A name that is not a
    resource type must give a non-zero exit and a one-line reason naming the file."""
    folder = copy_batch(pseudo_batch, tmp_path / "p", manifest=False)
    (folder / "Observation.ndjson").rename(folder / "Observations.ndjson")
    result = scan(folder, raw_batch)
    assert_refused(result, "Observations.ndjson")


def test_misnamed_file_in_the_input_is_refused(
        pseudo_batch: Path, raw_batch: Path, tmp_path: Path) -> None:
    """The patients the scan looks for come from IN: a misnamed Patient file hides them all."""
    raw = copy_batch(raw_batch, tmp_path / "raw", manifest=False, truth=False)
    (raw / "Patient.ndjson").rename(raw / "Patients.ndjson")
    result = scan(pseudo_batch, raw)
    assert_refused(result, "Patients.ndjson")


def _hide(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    elif name.endswith(".zst"):
        import zstandard
        path.write_bytes(zstandard.ZstdCompressor().compress(text.encode()))
    else:
        path.write_text(text)


@pytest.mark.parametrize("name", ["Patient.ndjson", "Patients.ndjson", "Patient.ndjson.gz",
                                  "Patient.ndjson.zst", "extra/Patient.ndjson"])
def test_raw_patients_hidden_under_any_name_do_not_pass(
        pseudo_batch: Path, raw_batch: Path, tmp_path: Path, name: str) -> None:
    """Exit 1 if OUT holds anything identifying a person of IN (the help), whatever the name."""
    folder = copy_batch(pseudo_batch, tmp_path / "p", manifest=False)
    if name != "Patient.ndjson":
        (folder / "Patient.ndjson").unlink()
    _hide(folder, name, (raw_batch / "Patient.ndjson").read_text())
    result = scan(folder, raw_batch)
    assert result.code != 0, f"raw patients in {name} passed the scan:\n{result}"
