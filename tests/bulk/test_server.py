"""The embedded Bulk Data server as a real HTTP peer on 127.0.0.1, driven with plain httpx."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhirlake.bulkserver import BackgroundServer, BulkServerConfig, Faults
from fhirlake.errors import ConfigurationError
from tests.bulk.helpers import write_ndjson

pytestmark = pytest.mark.live

KICKOFF = {"Accept": "application/fhir+json", "Prefer": "respond-async"}
Start = Callable[..., BackgroundServer]


def _poll_until_done(client: httpx.Client, status_url: str) -> httpx.Response:
    """Poll a status URL until the export stops answering 202 (the build runs in the background)."""
    deadline = time.monotonic() + 30
    while (response := client.get(status_url)).status_code == 202 and time.monotonic() < deadline:
        time.sleep(0.01)
    return response


def run_export(client: httpx.Client, url: str, **kwargs: Any) -> dict[str, Any]:
    """Kick off and poll until the manifest (the server answers immediately with retry_after=0)."""
    response = client.request(
        kwargs.pop("method", "GET"), url, headers={**KICKOFF, **kwargs.pop("headers", {})}, **kwargs
    )
    assert response.status_code == 202, response.text
    status_url = response.headers["content-location"]
    status = _poll_until_done(client, status_url)
    assert status.status_code == 200, status.text
    manifest: dict[str, Any] = status.json()
    manifest["_status_url"] = status_url
    return manifest


def lines(client: httpx.Client, url: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in client.get(url).text.splitlines() if line]


def test_kickoff_needs_the_async_headers(small_dir: Path, live_server: Start) -> None:
    server = live_server(small_dir)
    with httpx.Client() as client:
        no_prefer = client.get(
            f"{server.base_url}/$export", headers={"Accept": "application/fhir+json"}
        )
        no_accept = client.get(f"{server.base_url}/$export", headers={"Prefer": "respond-async"})
    assert no_prefer.status_code == no_accept.status_code == 400
    assert no_prefer.json()["issue"][0]["diagnostics"] == "Prefer: respond-async is required"


def test_system_export_lists_every_type_with_counts(small_dir: Path, live_server: Start) -> None:
    server = live_server(small_dir, lines_per_file=4)
    with httpx.Client() as client:
        manifest = run_export(client, f"{server.base_url}/$export")
        patients = [
            r for f in manifest["output"] if f["type"] == "Patient" for r in lines(client, f["url"])
        ]
    counts: dict[str, int] = {}
    for item in manifest["output"]:
        counts[item["type"]] = counts.get(item["type"], 0) + item["count"]
    assert counts == {"Observation": 30, "Organization": 1, "Patient": 6}
    assert (
        len([f for f in manifest["output"] if f["type"] == "Observation"]) == 8
    )  # split every 4 lines
    assert sorted(p["id"] for p in patients) == [f"p{i}" for i in range(6)]
    assert manifest["requiresAccessToken"] is False
    assert manifest["error"] == []
    assert "deleted" not in manifest  # only for _since exports


def test_type_since_and_elements_filter_the_output(small_dir: Path, live_server: Start) -> None:
    server = live_server(small_dir)
    with httpx.Client() as client:
        manifest = run_export(
            client,
            f"{server.base_url}/Patient/$export",
            params={
                "_type": "Patient",
                "_since": "2024-02-15T00:00:00Z",
                "_elements": "Patient.id",
            },
        )
        patients = [r for f in manifest["output"] for r in lines(client, f["url"])]
    assert {f["type"] for f in manifest["output"]} == {"Patient"}
    # lastUpdated is 2024-0{1 + i % 3}-01: only March (i = 2, 5) is after Feb 15
    assert sorted(p["id"] for p in patients) == ["p2", "p5"]
    assert all(set(p) == {"resourceType", "id", "meta"} for p in patients)
    assert all(p["meta"]["tag"][-1]["code"] == "SUBSETTED" for p in patients)


def test_group_export_keeps_members_and_their_data_only(
    small_dir: Path, live_server: Start
) -> None:
    server = live_server(small_dir)
    with httpx.Client() as client:
        manifest = run_export(client, f"{server.base_url}/Group/g1/$export")
        resources = [r for f in manifest["output"] for r in lines(client, f["url"])]
        unknown = client.get(f"{server.base_url}/Group/nope/$export", headers=KICKOFF)
    subjects = {r["subject"]["reference"] for r in resources if r["resourceType"] == "Observation"}
    assert subjects == {"Patient/p0", "Patient/p1"}
    assert sorted(r["id"] for r in resources if r["resourceType"] == "Patient") == ["p0", "p1"]
    assert any(r["resourceType"] == "Organization" for r in resources)
    assert unknown.status_code == 404


def test_deleted_resources_come_as_delete_bundles_and_not_as_output(
    small_dir: Path, live_server: Start
) -> None:
    write_ndjson(
        small_dir / "deleted.ndjson",
        [
            {"type": "Patient", "id": "p3", "deleted": "2024-06-01T00:00:00Z"},
            {"type": "Observation", "id": "o1", "deleted": "2023-01-01T00:00:00Z"},
        ],
    )
    server = live_server(small_dir)
    with httpx.Client() as client:
        manifest = run_export(
            client, f"{server.base_url}/$export", params={"_since": "2024-01-01T00:00:00Z"}
        )
        bundles = [b for f in manifest["deleted"] for b in lines(client, f["url"])]
        output = [r for f in manifest["output"] for r in lines(client, f["url"])]
    assert [e["request"] for b in bundles for e in b["entry"]] == [
        {"method": "DELETE", "url": "Patient/p3"}
    ]
    assert bundles[0]["type"] == "transaction"
    ids = {(r["resourceType"], r["id"]) for r in output}
    assert ("Patient", "p3") not in ids and ("Observation", "o1") not in ids


def test_unsupported_parameters_fail_or_are_reported_when_lenient(
    small_dir: Path, live_server: Start
) -> None:
    server = live_server(small_dir)
    url = f"{server.base_url}/$export"
    with httpx.Client() as client:
        strict = client.get(url, params={"_typeFilter": "Patient?active=true"}, headers=KICKOFF)
        patient_get = client.get(
            f"{server.base_url}/Patient/$export", params={"patient": "Patient/p1"}, headers=KICKOFF
        )
        manifest = run_export(
            client,
            url,
            params={"_typeFilter": "Patient?active=true"},
            headers={"Prefer": "respond-async, handling=lenient"},
        )
        outcomes = [o for f in manifest["error"] for o in lines(client, f["url"])]
    assert strict.status_code == 400
    assert "_typeFilter is not supported" in strict.json()["issue"][0]["diagnostics"]
    assert patient_get.status_code == 400
    assert outcomes[0]["issue"][0]["diagnostics"].startswith("parameter _typeFilter was ignored")


def test_post_kickoff_reads_a_parameters_body(small_dir: Path, live_server: Start) -> None:
    server = live_server(small_dir)
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "_type", "valueString": "Organization"}],
    }
    with httpx.Client() as client:
        manifest = run_export(client, f"{server.base_url}/$export", method="POST", json=body)
    assert [(f["type"], f["count"]) for f in manifest["output"]] == [("Organization", 1)]


def test_files_are_gzipped_when_asked_and_delete_ends_the_job(
    small_dir: Path, live_server: Start
) -> None:
    server = live_server(small_dir)
    with httpx.Client() as client:
        manifest = run_export(client, f"{server.base_url}/$export", params={"_type": "Patient"})
        url = manifest["output"][0]["url"]
        with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as raw:
            encoding = raw.headers["content-encoding"]
            compressed = b"".join(raw.iter_raw())
        plain = client.get(url, headers={"Accept-Encoding": "identity"})
        deleted = client.delete(manifest["_status_url"])
        after = client.get(manifest["_status_url"])
        file_after = client.get(url)
    assert encoding == "gzip"
    assert gzip.decompress(compressed) == plain.content
    assert "content-encoding" not in plain.headers and int(plain.headers["content-length"]) == len(
        plain.content
    )
    assert deleted.status_code == 202
    assert after.status_code == 404 and file_after.status_code == 404


def test_gzipped_source_files_are_served_decompressed(tmp_path: Path, live_server: Start) -> None:
    folder = tmp_path / "gz"
    folder.mkdir()
    content = "".join(
        json.dumps({"resourceType": "Patient", "id": f"z{i}"}) + "\n" for i in range(5)
    )
    (folder / "Patient.ndjson.gz").write_bytes(gzip.compress(content.encode()))
    server = live_server(folder)
    with httpx.Client() as client:
        manifest = run_export(client, f"{server.base_url}/$export")
        assert client.get(manifest["output"][0]["url"]).text == content
    assert manifest["output"][0]["count"] == 5


def test_status_reports_progress_and_retry_after_while_running(
    small_dir: Path, live_server: Start
) -> None:
    server = live_server(small_dir, job_seconds=30, retry_after=3, retry_after_style="http-date")
    with httpx.Client() as client:
        kick = client.get(f"{server.base_url}/$export", headers=KICKOFF)
        status = client.get(kick.headers["content-location"])
    assert status.status_code == 202
    assert status.headers["x-progress"].endswith("% complete")
    assert status.headers["retry-after"].endswith("GMT")


def test_faults_are_injected_as_configured(small_dir: Path, live_server: Start) -> None:
    faults = Faults(kickoff_429=1, status_500=2, file_500=1, file_429=1, error_entries=2)
    server = live_server(small_dir, faults=faults)
    with httpx.Client() as client:
        first = client.get(f"{server.base_url}/$export", headers=KICKOFF)
        status_url = client.get(f"{server.base_url}/$export", headers=KICKOFF).headers[
            "content-location"
        ]
        polls = [client.get(status_url) for _ in range(2)]
        polls.append(_poll_until_done(client, status_url))
        url = polls[-1].json()["output"][0]["url"]
        downloads = [client.get(url).status_code for _ in range(3)]
    assert first.status_code == 429 and first.headers["retry-after"] == "0"
    assert [p.status_code for p in polls] == [500, 500, 200]
    assert polls[0].json()["issue"][0]["code"] == "transient"
    assert downloads == [500, 429, 200]
    assert polls[-1].json()["error"][0]["count"] == 2


def test_a_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not a folder"):
        BulkServerConfig(data_dir=tmp_path / "missing")
