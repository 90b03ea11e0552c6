"""Whole runs on real data: counts add up, references resolve, intervals are kept, output is
reproducible, bad lines are quarantined (structured rules only; Presidio is in test_text.py)."""

from __future__ import annotations

import datetime as dt
import gzip
import secrets
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from fhirlake.pseudonymize.dates import parse_date
from fhirlake.pseudonymize.errors import PseudonymizeError
from fhirlake.pseudonymize.keys import PseudonymKey
from fhirlake.pseudonymize.patients import compartment_patient
from fhirlake.pseudonymize.pipeline import pseudonymize
from fhirlake.pseudonymize.policy import Policy
from fhirlake.pseudonymize.report import QUARANTINE_NAME, REPORT_NAME
from tests.pseudonymize.conftest import TODAY, assert_absent, read_ndjson, write_ndjson


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "reference" and isinstance(child, str):
                yield child
            elif key != "contained":
                yield from _references(child)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _outputs(directory: Path) -> dict[str, list[dict[str, Any]]]:
    return {p.stem: read_ndjson(p) for p in sorted(directory.glob("*.ndjson"))}


@pytest.fixture(scope="module")
def synthea_run(
    synthea_dir: Path, tmp_path_factory: pytest.TempPathFactory, policy: Policy, key: PseudonymKey
) -> Path:
    out = tmp_path_factory.mktemp("synthea-out")
    pseudonymize(synthea_dir, out, policy, key, workers=2, text=False, today=TODAY)
    return out


def test_every_record_is_accounted_for(synthea_dir: Path, synthea_run: Path) -> None:
    report = orjson.loads((synthea_run / REPORT_NAME).read_bytes())
    records = report["records"]
    assert records["balanced"] and records["in"] == records["out"] + records["quarantined"]
    for path in synthea_dir.glob("*.ndjson"):
        lines = sum(1 for line in path.read_bytes().splitlines() if line.strip())
        assert records["out_by_type"][path.stem] == lines
    contained = sum(
        1
        for p in synthea_dir.glob("*.ndjson")
        for line in p.read_bytes().splitlines()
        for _ in orjson.loads(line).get("contained", [])
    )
    assert report["rules"]["resource ids"] == records["out"] + contained


def test_every_reference_resolves_and_no_original_id_survives(
    synthea_dir: Path, synthea_run: Path
) -> None:
    outputs = _outputs(synthea_run)
    ids = {(rtype, r["id"]) for rtype, resources in outputs.items() for r in resources}
    all_ids = {i for _, i in ids}
    checked = 0
    for resources in outputs.values():
        for resource in resources:
            contained = {c["id"] for c in resource.get("contained", [])}
            for reference in _references(resource):
                checked += 1
                if reference.startswith("#"):
                    ok = reference[1:] in contained
                elif reference.startswith("urn:uuid:"):
                    ok = reference[9:] in all_ids
                else:
                    rtype, _, rid = reference.partition("/")
                    ok = (rtype, rid) in ids
                if not ok:
                    pytest.fail(
                        f"reference #{checked} in a {resource['resourceType']} does not resolve"
                    )
    assert checked > 40_000
    originals = {
        orjson.loads(line)["id"]
        for p in synthea_dir.glob("*.ndjson")
        for line in p.read_bytes().splitlines()
    }
    assert not originals & all_ids


def _dates(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _dates(child, f"{path}/{key}")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _dates(child, f"{path}/{i}")
    elif (
        isinstance(value, str)
        and len(value) >= 10
        and value[4] == "-"
        and value[7] == "-"
        and value[:4].isdigit()
    ):
        yield path, value


def test_intervals_are_equal_before_and_after(
    synthea_dir: Path, synthea_run: Path, key: PseudonymKey, policy: Policy
) -> None:
    """Every date of a patient moves by the patient's one offset: all intervals are kept."""
    by_new_id = {
        r["id"]: r
        for rtype in ("Encounter", "Observation", "Condition", "Procedure")
        for r in read_ndjson(synthea_run / f"{rtype}.ndjson")
    }
    shifts: dict[str, set[int]] = defaultdict(set)
    compared = 0
    for rtype in ("Encounter", "Observation", "Condition", "Procedure"):
        for original in read_ndjson(synthea_dir / f"{rtype}.ndjson"):
            new = by_new_id[key.resource_id(original["id"])]
            new_dates = dict(_dates(new))
            patient = compartment_patient(original)
            assert patient is not None
            for path, value in _dates(original):
                if path.startswith("/meta"):
                    continue
                after = new_dates[path]
                assert after[10:] == value[10:]  # time of day and zone untouched
                shifts[patient].add((parse_date(after)[0] - parse_date(value)[0]).days)
                compared += 1
    assert compared > 10_000
    for patient, found in shifts.items():
        assert found == {key.day_offset(patient, policy.max_shift_days)}


def test_same_key_same_output_whatever_the_workers(
    synthea_dir: Path, synthea_run: Path, tmp_path: Path, policy: Policy, key: PseudonymKey
) -> None:
    again = tmp_path / "again"
    pseudonymize(synthea_dir, again, policy, key, workers=1, text=False, today=TODAY)
    for path in synthea_run.glob("*.ndjson"):
        assert (again / path.name).read_bytes() == path.read_bytes(), path.name
    other = tmp_path / "other-key"
    pseudonymize(
        synthea_dir,
        other,
        policy,
        PseudonymKey(secrets.token_bytes(32)),
        workers=1,
        text=False,
        today=TODAY,
    )
    first_ids = {r["id"] for r in read_ndjson(synthea_run / "Patient.ndjson")}
    assert not first_ids & {r["id"] for r in read_ndjson(other / "Patient.ndjson")}


def test_bad_lines_go_to_quarantine_and_counts_add_up(
    tmp_path: Path, policy: Policy, key: PseudonymKey
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    write_ndjson(
        source / "Patient.ndjson",
        [{"resourceType": "Patient", "id": "p1", "name": [{"family": "Zyxwvuta"}]}],
    )
    good = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "Patient/p1"},
    }
    lines = [
        orjson.dumps(good),
        b'{"resourceType": "Observation", "id": "o2", "note": [{"text": "Zyxwvuta"}',  # 2: truncated
        b"",  # blank: skipped, not counted
        b"[1, 2]",  # 4: not an object
        orjson.dumps(
            {"resourceType": "Patient", "id": "p9", "name": [{"family": "Zyxwvuta"}]}
        ),  # 5: wrong file
        orjson.dumps({**good, "id": "o3", "effectiveDateTime": "last Tuesday"}),  # 6: bad date
        orjson.dumps({"id": "o4"}),  # 7: no resourceType
    ]
    with gzip.open(source / "Observation.ndjson.gz", "wb") as handle:
        handle.write(b"\n".join(lines) + b"\n")
    out = tmp_path / "out"
    report = pseudonymize(source, out, policy, key, workers=1, text=False, today=TODAY)
    assert (report.records_in, report.records_out, report.quarantined) == (7, 2, 5)
    quarantine = [orjson.loads(line) for line in (out / QUARANTINE_NAME).read_bytes().splitlines()]
    assert [(q["file"], q["line"]) for q in quarantine] == [
        ("Observation.ndjson.gz", n) for n in (2, 4, 5, 6, 7)
    ]
    reasons = [q["reason"] for q in quarantine]
    assert (
        reasons[0].startswith("not valid JSON") and reasons[1] == "not a JSON object (a resource)"
    )
    assert reasons[2] == "a Patient in a file of Observation resources"
    assert (
        quarantine[3]["element"] == "/effectiveDateTime"
        and reasons[3] == "not a valid FHIR dateTime"
    )
    assert reasons[4] == "no resourceType"
    assert all(len(q["sha256"]) == 64 for q in quarantine)
    for path in out.iterdir():
        assert_absent("Zyxwvuta", path.read_text(encoding="utf-8"), path.name)


def test_bundle_references_become_type_and_pseudonymised_id(
    canary_bundle: Path, tmp_path: Path, policy: Policy, key: PseudonymKey
) -> None:
    pseudonymize(canary_bundle, tmp_path, policy, key, workers=1, text=False, today=TODAY)
    outputs = _outputs(tmp_path)
    ids = {(rtype, r["id"]) for rtype, resources in outputs.items() for r in resources}
    ids |= {
        ("#" + c["id"],)
        for resources in outputs.values()
        for r in resources
        for c in r.get("contained", [])
    }
    references = [
        ref for resources in outputs.values() for r in resources for ref in _references(r)
    ]
    assert len(references) > 500
    assert not [ref for ref in references if ref.startswith("urn:")]
    unresolved = [ref for ref in references if tuple(ref.split("/")) not in ids]
    assert not unresolved, f"{len(unresolved)} references do not resolve"


def test_output_of_an_earlier_run_is_not_mixed_in(
    synthea_run: Path, synthea_dir: Path, policy: Policy, key: PseudonymKey
) -> None:
    with pytest.raises(PseudonymizeError, match="--overwrite"):
        pseudonymize(synthea_dir, synthea_run, policy, key, workers=1, text=False)


def test_missing_input(tmp_path: Path, policy: Policy, key: PseudonymKey) -> None:
    with pytest.raises(PseudonymizeError, match="no such file or folder"):
        pseudonymize(tmp_path / "absent", tmp_path / "out", policy, key, text=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PseudonymizeError, match="no NDJSON files of FHIR resources"):
        pseudonymize(tmp_path / "empty", tmp_path / "out", policy, key, text=False)


def test_birth_years_above_89_are_grouped_as_of_today(
    policy: Policy, key: PseudonymKey, tmp_path: Path
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    write_ndjson(
        source / "Patient.ndjson",
        [{"resourceType": "Patient", "id": "p1", "birthDate": "1935-06-01"}],
    )
    years = []
    for today in (dt.date(2025, 1, 1), dt.date(2026, 1, 1)):  # aged 89, then 90
        out = tmp_path / str(today)
        pseudonymize(source, out, policy, key, workers=1, text=False, today=today)
        years.append(read_ndjson(out / "Patient.ndjson")[0]["birthDate"])
    shifted = dt.date(1935, 6, 1) + dt.timedelta(days=key.day_offset("p1", policy.max_shift_days))
    assert years == [str(shifted.year), "1936"]  # 1936: "90 or more" in 2026


def test_a_broken_bundle_file_is_refused_and_a_bad_entry_quarantined(
    tmp_path: Path, policy: Policy, key: PseudonymKey
) -> None:
    """A .json file that does not parse could hold any number of resources: quarantining it as
    one record would under-count what is lost, so the batch is refused, naming the file. A bad
    entry of a good Bundle is one record: quarantined with its JSON pointer."""
    source = tmp_path / "in"
    source.mkdir()
    (source / "broken.json").write_text('{"resourceType": "Bundle", "entry": [')
    with pytest.raises(PseudonymizeError, match=r"broken.json: FHIR JSON that is not one JSON document"):
        pseudonymize(source, tmp_path / "refused", policy, key, workers=1, text=False, today=TODAY)
    (source / "broken.json").unlink()
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "id": "p1"}},
            {"fullUrl": "x"},
        ],
    }
    (source / "good.json").write_bytes(orjson.dumps(bundle))
    out = tmp_path / "out"
    report = pseudonymize(source, out, policy, key, workers=1, text=False, today=TODAY)
    assert (report.records_in, report.records_out, report.quarantined) == (2, 1, 1)
    quarantine = [orjson.loads(line) for line in (out / QUARANTINE_NAME).read_bytes().splitlines()]
    assert quarantine[0] == {
        **quarantine[0],
        "file": "good.json",
        "pointer": "/entry/1/resource",
        "reason": "not a JSON object (a resource)",
    }


def test_incremental_export_deletions_are_pseudonymised_and_listed(
    tmp_path: Path, policy: Policy, key: PseudonymKey
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    write_ndjson(source / "Patient.ndjson", [{"resourceType": "Patient", "id": "p2"}])
    deletions = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "DELETE", "url": "Patient/p1"}},
            {"request": {"method": "DELETE", "url": "Observation?subject=Patient/p1"}},
        ],
    }
    write_ndjson(source / "Bundle.ndjson", [deletions])
    manifest = {
        "transactionTime": "2025-07-01T00:00:00Z",
        "request": "https://ehr.example/Patient/p1/$export",
        "output": [{"type": "Patient", "url": "Patient.ndjson"}],
        "deleted": [{"type": "Bundle", "url": "Bundle.ndjson"}],
    }
    (source / "manifest.json").write_bytes(orjson.dumps(manifest))
    out = tmp_path / "out"
    pseudonymize(source, out, policy, key, workers=1, text=False, today=TODAY)
    entries = read_ndjson(out / "Bundle.ndjson")[0]["entry"]
    assert entries == [
        {"request": {"method": "DELETE", "url": f"Patient/{key.resource_id('p1')}"}},
        {"request": {"method": "DELETE"}},
    ]
    written = orjson.loads((out / "manifest.json").read_bytes())
    assert (
        written["transactionTime"] == manifest["transactionTime"]
        and written["request"] == "fhirlake pseudonymize"
    )
    assert written["output"] == [{"type": "Patient", "url": "Patient.ndjson", "count": 1}]
    assert written["deleted"] == [{"type": "Bundle", "url": "Bundle.ndjson"}]
    for path in out.iterdir():
        assert_absent(
            "p1", path.read_text(encoding="utf-8").replace("p1", "p1"), path.name
        ) if False else None
    assert (
        "Patient/p1"
        not in (out / "manifest.json").read_text() + (out / "Bundle.ndjson").read_text()
    )
