"""Whole exports against the embedded server on 127.0.0.1, with every fault it can inject.

Each export must end with exactly the served resources: counts equal to the manifest and to
the source folder, and no resource twice.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhirlake.bulk import (
    AuthError,
    BulkClient,
    Event,
    Exporter,
    ExportExpiredError,
    ExportLevel,
    ExportOptions,
    ExportRequest,
    ExportResult,
    KickoffError,
    ResumeConflictError,
    Retrying,
    SigningKey,
    SmartBackendAuth,
    WatermarkStore,
    read_export,
)
from fhirlake.bulkserver import BackgroundServer, ClientRegistration, Faults, ServerAuth
from tests.bulk.helpers import FAST_RETRY, read_resources, source_counts, write_ndjson

pytestmark = pytest.mark.live
Start = Callable[..., BackgroundServer]


def run_export(
    server: BackgroundServer,
    lake: Path,
    *,
    auth: httpx.Auth | None = None,
    events: list[Event] | None = None,
    source: str = "test",
    clock: Callable[[], float] = time.time,
    **kwargs: Any,
) -> ExportResult:
    request_keys = {"level", "group_id", "types", "since", "method", "patients", "lenient"}
    request = ExportRequest(
        base_url=server.base_url, **{k: v for k, v in kwargs.items() if k in request_keys}
    )
    options = ExportOptions(
        retry=FAST_RETRY, parallel=3, **{k: v for k, v in kwargs.items() if k not in request_keys}
    )
    exporter = Exporter(
        source=source,
        request=request,
        lake=lake,
        auth=auth,
        options=options,
        clock=clock,
        on_event=events.append if events is not None else None,
    )
    return asyncio.run(exporter.run())


# A quarter of the Synthea export (about 4 MB) in several files per type: enough to exercise
# parallel downloads and faults per file while keeping the suite quick on a busy machine.
SUBSET = ("Patient", "Condition", "Encounter", "Organization", "Observation")


def assert_complete(
    result: ExportResult, folder: Path, types: tuple[str, ...] | None = None
) -> None:
    """Everything served is saved once: per type, saved = manifest counts = source lines, no duplicates."""
    saved = read_resources(result.directory)
    manifest_counts: Counter[str] = Counter()
    for item in result.manifest.output:
        manifest_counts[item.type] += item.count or 0
    expected = {
        t: n
        for t, n in source_counts(folder).items()
        if t != "Group" and (types is None or t in types)
    }
    assert {t: len(rs) for t, rs in saved.items()} == expected
    assert dict(manifest_counts) == expected
    assert dict(result.resources) == expected
    for type_name, resources in saved.items():
        ids = [r["id"] for r in resources]
        assert len(ids) == len(set(ids)), f"duplicate {type_name} resources"
    assert not list(result.directory.rglob("*.part"))


def test_a_clean_export_lands_in_the_bronze_layout(
    synthea_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    server = live_server(synthea_dir, lines_per_file=1500)
    lake = tmp_path / "lake"
    result = run_export(server, lake, source="synthea")
    assert_complete(result, synthea_dir)
    folder = result.directory
    assert folder.parent == lake / "bronze" / "synthea"
    assert (
        json.loads((folder / "manifest.json").read_bytes())["transactionTime"]
        == result.transaction_time
    )
    assert (
        folder / "output" / "Observation" / "0004.ndjson"
    ).is_file()  # 4707 lines in files of 1500
    state = read_export(folder)
    assert state.status == "completed" and state.job_deleted
    assert len(state.files) == len(result.manifest.output)
    assert WatermarkStore(lake).get("synthea") == result.transaction_time
    assert result.job_deleted and server.state.requests("DELETE", status=202)
    assert result.downloaded == len(result.manifest.output) and result.reused == 0


@pytest.mark.parametrize(
    "faults",
    [
        Faults(kickoff_429=2),
        Faults(status_429=2, status_500=3),
        Faults(file_500=2),
        Faults(file_429=1),
        Faults(file_drop=1),
        Faults(slow_seconds=0.02),
        Faults(kickoff_429=1, status_500=1, file_500=1, file_429=1, file_drop=1),
    ],
    ids=["kickoff-429", "status-429-and-3x500", "file-500", "file-429", "file-drop", "slow", "all"],
)
def test_transient_faults_never_lose_or_duplicate_a_resource(
    faults: Faults, synthea_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    server = live_server(synthea_dir, lines_per_file=1200, faults=faults)
    events: list[Event] = []
    result = run_export(server, tmp_path / "lake", events=events, types=SUBSET)
    assert_complete(result, synthea_dir, SUBSET)
    statuses = Counter(r.status for r in server.state.log)
    injected_429 = (
        faults.kickoff_429 + faults.status_429 + faults.file_429 * len(result.manifest.output)
    )
    injected_500 = faults.status_500 + faults.file_500 * len(result.manifest.output)
    assert statuses[429] == injected_429
    assert statuses[500] == injected_500
    if faults.file_drop:
        dropped = [
            e for e in events if isinstance(e, Retrying) and "RemoteProtocolError" in e.reason
        ]
        assert len(dropped) == len(result.manifest.output)


def test_an_expired_export_is_a_clear_error_and_can_be_restarted(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    server = live_server(small_dir, faults=Faults(gone_jobs=1))
    lake = tmp_path / "lake"
    with pytest.raises(ExportExpiredError, match=r"gone \(410\).*--restart-expired"):
        run_export(server, lake)
    first = read_export(next((lake / "bronze" / "test").iterdir()))
    assert first.status == "manifest"  # kept as it was: resumable if the server had it
    result = run_export(server, lake, restart_expired=True)
    assert_complete(result, small_dir)
    assert read_export(first.path).status == "abandoned"
    assert result.export_id != first.export_id


def test_error_files_are_fetched_and_their_outcomes_reported(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    server = live_server(small_dir, faults=Faults(error_entries=3))
    result = run_export(server, tmp_path / "lake")
    assert_complete(result, small_dir)
    assert [issue.code for issue in result.issues] == ["processing"] * 3
    assert "injected fault 1" in result.issues[0].text
    assert (result.directory / "error" / "0001.ndjson").is_file()


def test_lenient_kickoff_reports_ignored_parameters(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    server = live_server(small_dir)
    request = ExportRequest(
        base_url=server.base_url, type_filters=("Patient?active=true",), lenient=True
    )
    exporter = Exporter(
        source="s", request=request, lake=tmp_path, options=ExportOptions(retry=FAST_RETRY)
    )
    result = asyncio.run(exporter.run())
    assert [(i.severity, i.code) for i in result.issues] == [("information", "not-supported")]


def test_since_auto_fetches_only_changes_and_deletions(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    server = live_server(small_dir)
    lake = tmp_path / "lake"
    first = run_export(server, lake)
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    changed = {
        "resourceType": "Observation",
        "id": "o99",
        "status": "final",
        "meta": {"lastUpdated": later},
    }
    with open(small_dir / "Observation.ndjson", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(changed) + "\n")
    write_ndjson(small_dir / "deleted.ndjson", [{"type": "Patient", "id": "p4", "deleted": later}])

    since = WatermarkStore(lake).get("test")
    assert since == first.transaction_time
    second = run_export(server, lake, since=since)
    saved = read_resources(second.directory)
    assert {t: [r["id"] for r in rs] for t, rs in saved.items()} == {"Observation": ["o99"]}
    deleted = [
        json.loads(line)
        for line in (second.directory / "deleted" / "0001.ndjson").read_text().splitlines()
    ]
    assert [e["request"]["url"] for e in deleted[0]["entry"]] == ["Patient/p4"]
    assert WatermarkStore(lake).get("test") == second.transaction_time != first.transaction_time


def test_group_and_post_kickoffs_export_the_group(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    server = live_server(small_dir)
    result = run_export(
        server, tmp_path / "lake", level=ExportLevel.GROUP, group_id="g1", method="POST"
    )
    saved = read_resources(result.directory)
    assert sorted(r["id"] for r in saved["Patient"]) == ["p0", "p1"]
    assert len(saved["Observation"]) == 10
    assert server.state.requests("POST", path_contains="/Group/g1/$export")


def test_an_unfinished_export_asked_for_differently_is_not_mixed_up(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    server = live_server(small_dir, faults=Faults(gone_jobs=1))
    lake = tmp_path / "lake"
    with pytest.raises(ExportExpiredError):
        run_export(server, lake, types=("Patient",))
    with pytest.raises(ResumeConflictError, match="different request; run with --new"):
        run_export(server, lake, types=("Observation",))
    result = run_export(server, lake, types=("Observation",), new=True)
    assert set(result.resources) == {"Observation"}


# --------------------------------------------------------------------------- SMART Backend Services


def smart_server(
    live_server: Start, folder: Path, key: SigningKey, **kwargs: Any
) -> BackgroundServer:
    registration = ClientRegistration(client_id="fhirlake-test", jwks={"keys": [key.public_jwk()]})
    auth = ServerAuth(clients=(registration,), **kwargs.pop("auth_options", {}))
    return live_server(folder, auth=auth, **kwargs)


def smart_auth(server: BackgroundServer, key: SigningKey, **kwargs: Any) -> SmartBackendAuth:
    return SmartBackendAuth(
        client_id="fhirlake-test", key=key, fhir_base_url=server.base_url, **kwargs
    )


@pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
def test_smart_backend_services_export(
    algorithm: str, synthea_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    key = SigningKey.generate(algorithm)  # type: ignore[arg-type]
    server = smart_server(live_server, synthea_dir, key, lines_per_file=1200)
    auth = smart_auth(server, key)
    result = run_export(server, tmp_path / "lake", auth=auth, types=SUBSET)
    assert_complete(result, synthea_dir, SUBSET)
    assert result.manifest.requires_access_token
    assert auth.tokens_issued == 1  # one token, reused for every request
    assert not server.state.requests(status=401)


def test_discovery_falls_back_to_the_capability_statement(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    key = SigningKey.generate("ES384")
    server = smart_server(live_server, small_dir, key, auth_options={"well_known": False})
    auth = smart_auth(server, key)
    assert_complete(run_export(server, tmp_path / "lake", auth=auth), small_dir)
    assert auth.token_url == f"{server.base_url}/auth/token"
    assert server.state.requests("GET", path_contains="/metadata", status=200)


def test_a_token_expiring_mid_export_is_renewed(
    synthea_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    key = SigningKey.generate("ES384")
    server = smart_server(
        live_server,
        synthea_dir,
        key,
        lines_per_file=400,
        auth_options={"token_ttl": 1},
        faults=Faults(bytes_per_second=300_000),
    )
    auth = smart_auth(server, key)
    types = (
        "Patient",
        "Condition",
        "Encounter",
        "Organization",
    )  # about 1.6 MB: nearly 2 s at 0.9 MB/s
    assert_complete(
        run_export(server, tmp_path / "lake", auth=auth, types=types), synthea_dir, types
    )
    assert auth.tokens_issued >= 2


def test_a_401_gets_a_new_token_and_the_request_is_retried(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    key = SigningKey.generate("RS384")
    server = smart_server(
        live_server, small_dir, key, auth_options={"token_ttl": 1}, faults=Faults(slow_seconds=0.4)
    )
    frozen = time.time()  # the client believes no time passes, so only 401s make it renew
    auth = smart_auth(server, key, clock=lambda: frozen)
    result = run_export(server, tmp_path / "lake", auth=auth, clock=lambda: frozen)
    assert_complete(result, small_dir)
    assert server.state.requests(status=401)
    assert auth.tokens_issued >= 2


def test_exporting_without_a_token_or_with_an_unknown_key_fails_clearly(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    key = SigningKey.generate("RS384")
    server = smart_server(live_server, small_dir, key)
    with pytest.raises(KickoffError, match="kick-off refused with 401"):
        run_export(server, tmp_path / "a")
    stranger = smart_auth(server, SigningKey.generate("RS384"))
    with pytest.raises(AuthError, match=r"refused \(401\): invalid_client: no usable RS384 key"):
        run_export(server, tmp_path / "b", auth=stranger)


def test_the_sync_client_steps_through_an_export(
    small_dir: Path, live_server: Start, tmp_path: Path
) -> None:
    server = live_server(small_dir, lines_per_file=10, faults=Faults(file_500=1, status_429=1))
    with BulkClient(retry=FAST_RETRY) as client:
        job = client.kick_off(ExportRequest(base_url=server.base_url, types=("Observation",)))
        done = client.wait(job)
        results = [
            client.download(file, tmp_path / f"{n}.ndjson", requires_token=False)
            for n, file in enumerate(done.manifest.output)
        ]
        accepted, _ = client.delete(job)
    assert [r.lines for r in results] == [10, 10, 10]
    assert accepted and server.state.jobs[job.status_url.rsplit("/", 1)[1]].removed
