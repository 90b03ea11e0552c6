"""The command line and the leak scan, on real data and on generator output with its truth file."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from fhirlake.cli import main
from fhirlake.pseudonymize.keys import KEY_ENV_VAR, PseudonymKey
from fhirlake.pseudonymize.pipeline import pseudonymize
from fhirlake.pseudonymize.policy import Policy
from fhirlake.pseudonymize.scan import scan_output, truth_terms
from fhirlake.pseudonymize.terms import Term
from fhirlake.pseudonymize.text import TextScrubber
from tests.pseudonymize.conftest import TODAY, assert_absent, write_ndjson


def _tiny_export(directory: Path) -> Path:
    directory.mkdir()
    write_ndjson(
        directory / "Patient.ndjson",
        [
            {
                "resourceType": "Patient",
                "id": "p1",
                "name": [{"family": "Quinterra", "given": ["Ottilie"]}],
                "telecom": [{"system": "phone", "value": "555-201-3344"}],
            }
        ],
    )
    write_ndjson(
        directory / "Encounter.ndjson",
        [
            {
                "resourceType": "Encounter",
                "id": "e1",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": "Patient/p1", "display": "Ottilie Quinterra"},
                "period": {"start": "2020-01-01T10:00:00Z", "end": "2020-01-01T11:00:00Z"},
            }
        ],
    )
    return directory


def test_cli_pseudonymize_then_scan(
    tmp_path: Path, key_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _tiny_export(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["pseudonymize", str(source), str(out), "--no-text", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "records: 2 in, 2 out, 0 quarantined" in printed
    assert main(["privacy", "scan", str(out), "--input", str(source)]) == 0
    assert "0 leaks" in capsys.readouterr().out
    for path in out.iterdir():
        assert_absent(key_env, path.read_text(encoding="utf-8"), path.name)
    assert main(["privacy", "report", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["records"]["balanced"] is True


def test_cli_scan_fails_on_leaks_without_printing_them(
    tmp_path: Path, key_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _tiny_export(tmp_path / "in")
    with pytest.raises(SystemExit) as exited:
        main(
            ["privacy", "scan", str(source), "--input", str(source)]
        )  # the raw input leaks, of course
    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert "leak: Encounter.ndjson:1: PERSON of patient #1" in captured.err
    for secret in ("Quinterra", "Ottilie", "555-201-3344"):
        assert_absent(secret, captured.out + captured.err, "the scan's own output")


def test_cli_without_key_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    source = _tiny_export(tmp_path / "in")
    assert main(["pseudonymize", str(source), str(tmp_path / "out"), "--no-text"]) == 2
    assert KEY_ENV_VAR in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_bad_policy_names_file_and_pointer(
    tmp_path: Path, key_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\ntext: {analyzer: nowhere.yaml}\nrules: [{type: HumanName, method: hide}]\n"
    )
    source = _tiny_export(tmp_path / "in")
    assert main(["pseudonymize", str(source), str(tmp_path / "out"), "--policy", str(policy)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"fhirlake: error: {policy}: /") and len(err.splitlines()) == 1


def test_weak_names_count_only_where_they_can_only_be_the_name(
    tmp_path: Path, key: PseudonymKey
) -> None:
    """A surname such as "Hand" is a leak in its patient's resources or as a whole value,
    not in another patient's note about a hand."""
    hand, other = key.resource_id("p-hand"), key.resource_id("p-other")
    write_ndjson(
        tmp_path / "Observation.ndjson",
        [
            {
                "resourceType": "Observation",
                "id": "o1",
                "subject": {"reference": f"Patient/{other}"},
                "valueString": "x-ray of the hand",
            },
            {
                "resourceType": "Observation",
                "id": "o2",
                "subject": {"reference": f"Patient/{hand}"},
                "valueString": "x-ray of the hand",
            },
            {
                "resourceType": "Observation",
                "id": "o3",
                "subject": {"reference": f"Patient/{other}"},
                "valueString": "Hand",
            },
        ],
    )
    terms = [Term("PERSON", "Hand", 1)]
    result = scan_output(tmp_path, terms, key=key, patient_ids={"p-hand": 1, "p-other": 2})
    assert [leak.line for leak in result.leaks] == [2, 3]
    without_key = scan_output(tmp_path, terms)
    assert [leak.line for leak in without_key.leaks] == [3] and not without_key.own_patient_checked


def test_generated_french_notes_leave_nothing_of_the_truth_file(
    tmp_path: Path, policy: Policy, key: PseudonymKey, scrubber: TextScrubber
) -> None:
    """``fhirlake synth`` French data: notes repeat names, NIR, IPP, phone and address."""
    synth = pytest.importorskip("fhirlake.synth")
    source = tmp_path / "synth-fr"
    synth.generate(source, patients=3, seed=7, locale="fr", history_years=2, workers=1)
    truth = orjson.loads((source / "truth.json").read_bytes())
    assert any("nir" in record["direct"] for record in truth["records"])
    out = tmp_path / "out"
    report = pseudonymize(source, out, policy, key, workers=1, today=TODAY, scrubber=scrubber)
    assert report.balanced and report.quarantined == 0  # manifest.json and truth.json are not input
    assert report.out_by_type["DocumentReference"] > 0 and report.text_stats.entities["FR_NIR"] > 0
    from fhirlake.pseudonymize.scan import scan_context

    # the full scan: every person named, birth dates in any format, date-offset leaks
    context = scan_context(source)
    context.terms += truth_terms(source / "truth.json", context.directory)
    result = scan_output(out, key=key, context=context)
    assert result.attachments_decoded > 0 and result.own_patient_checked
    assert result.leaks == [], [str(leak) for leak in result.leaks]
