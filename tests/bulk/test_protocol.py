"""Protocol unit tests: request building, header reading, decisions, on httpx.MockTransport."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhirlake.bulk import (
    AsyncBulkClient,
    BulkClient,
    BulkNetworkError,
    BulkProtocolError,
    BulkTimeoutError,
    CountMismatchError,
    DownloadResult,
    ExportExpiredError,
    ExportFailedError,
    ExportJob,
    ExportLevel,
    ExportRequest,
    ExportStalledError,
    KickoffError,
    Manifest,
    ManifestFile,
    Polling,
    Retrying,
    RetryPolicy,
)
from fhirlake.bulk._budget import RetryBudget, StallWatch
from fhirlake.bulk._protocol import (
    LineCounter,
    Wait,
    kickoff_request,
    parse_retry_after,
    server_says,
)
from fhirlake.errors import ConfigurationError

BASE = "https://fhir.example.org/r4"
NOW = 1_700_000_000.0


class FakeTime:
    """An injected clock whose sleeps only advance time (and are recorded)."""

    def __init__(self) -> None:
        self.now = NOW
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def outcome(code: str, text: str = "") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


def manifest_body(**extra: Any) -> dict[str, Any]:
    body = {
        "transactionTime": "2024-05-01T10:00:00Z",
        "request": f"{BASE}/$export",
        "requiresAccessToken": False,
        "output": [{"type": "Patient", "url": f"{BASE}/files/p.ndjson", "count": 2}],
        "error": [],
    }
    body.update(extra)
    return body


def scripted(responses: list[httpx.Response], seen: list[httpx.Request]) -> httpx.MockTransport:
    """A transport answering with ``responses`` in order, recording requests."""
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    return httpx.MockTransport(handler)


def sync_client(transport: httpx.MockTransport, fake: FakeTime, **kwargs: Any) -> BulkClient:
    return BulkClient(
        transport=transport, clock=fake.clock, monotonic=fake.clock, sleep=fake.sleep, **kwargs
    )


# --------------------------------------------------------------------------- kick-off requests


@pytest.mark.parametrize(
    ("level", "group", "path"),
    [
        (ExportLevel.SYSTEM, None, "/r4/$export"),
        (ExportLevel.PATIENT, None, "/r4/Patient/$export"),
        (ExportLevel.GROUP, "g-1", "/r4/Group/g-1/$export"),
    ],
)
def test_kickoff_get_targets_each_level_with_the_required_headers(
    level: ExportLevel, group: str | None, path: str
) -> None:
    request = kickoff_request(ExportRequest(base_url=BASE + "/", level=level, group_id=group))
    assert request.method == "GET"
    assert request.url.path == path
    assert request.headers["Accept"] == "application/fhir+json"
    assert request.headers["Prefer"] == "respond-async"


def test_kickoff_get_encodes_every_parameter() -> None:
    request = kickoff_request(
        ExportRequest(
            base_url=BASE,
            output_format="application/fhir+ndjson",
            since="2024-01-01T00:00:00Z",
            types=("Patient", "Observation"),
            elements=("id", "Observation.code"),
            type_filters=("Observation?category=laboratory", "Observation?code=1,2"),
            include_associated_data=("LatestProvenanceResources",),
            lenient=True,
        )
    )
    params = request.url.params
    assert params["_outputFormat"] == "application/fhir+ndjson"
    assert params["_since"] == "2024-01-01T00:00:00Z"
    assert params["_type"] == "Patient,Observation"
    assert params["_elements"] == "id,Observation.code"
    assert params.get_list("_typeFilter") == [
        "Observation?category=laboratory",
        "Observation?code=1,2",
    ]
    assert params["includeAssociatedData"] == "LatestProvenanceResources"
    assert request.headers["Prefer"] == "respond-async, handling=lenient"


def test_kickoff_post_sends_a_parameters_body_with_patient_references() -> None:
    request = kickoff_request(
        ExportRequest(
            base_url=BASE,
            level=ExportLevel.GROUP,
            group_id="g1",
            method="POST",
            since="2024-01-01T00:00:00Z",
            types=("Patient",),
            patients=("Patient/a", "Patient/b"),
        )
    )
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/fhir+json"
    assert not request.url.params
    body = json.loads(request.content)
    assert body["resourceType"] == "Parameters"
    assert {"name": "_since", "valueInstant": "2024-01-01T00:00:00Z"} in body["parameter"]
    refs = [p["valueReference"]["reference"] for p in body["parameter"] if p["name"] == "patient"]
    assert refs == ["Patient/a", "Patient/b"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patients": ("Patient/a",), "level": ExportLevel.PATIENT}, "only allowed with POST"),
        ({"patients": ("Patient/a",), "method": "POST"}, "not allowed on a system-level"),
        ({"level": ExportLevel.GROUP}, "needs a group id"),
        ({"since": "2024-01-01"}, "not a FHIR instant"),
        ({"types": ("patient",)}, "not a FHIR resource type"),
    ],
)
def test_invalid_requests_are_refused_with_a_clear_reason(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ExportRequest(base_url=BASE, **kwargs)


def test_request_round_trips_through_the_journal_form() -> None:
    original = ExportRequest(
        base_url=BASE, level=ExportLevel.GROUP, group_id="g", types=("Patient",)
    )
    assert ExportRequest.from_json(original.to_json()) == original
    assert original.fingerprint() != ExportRequest(base_url=BASE).fingerprint()


# --------------------------------------------------------------------------- headers


def test_retry_after_as_delay_seconds() -> None:
    assert parse_retry_after("120", now=NOW) == 120.0


def test_retry_after_as_http_date() -> None:
    value = email.utils.formatdate(NOW + 30, usegmt=True)
    assert parse_retry_after(value, now=NOW) == pytest.approx(30.0)


def test_retry_after_as_epoch_time_is_tolerated() -> None:
    assert parse_retry_after(str(int(NOW + 45)), now=NOW) == pytest.approx(45.0)


def test_retry_after_beyond_any_epoch_in_seconds_is_epoch_milliseconds() -> None:
    assert parse_retry_after(str(int((NOW + 45) * 1000)), now=NOW) == pytest.approx(45.0)
    assert parse_retry_after(str(int((NOW - 45) * 1000)), now=NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "Wed, 99 Foo 2015 07:28:00"])
def test_unreadable_retry_after_gives_none(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_retry_after_in_the_past_means_now() -> None:
    assert parse_retry_after(email.utils.formatdate(NOW - 100, usegmt=True), now=NOW) == 0.0


def test_line_counter_counts_an_unterminated_last_line() -> None:
    counter = LineCounter()
    for chunk in (b'{"a":1}\n{"b"', b":2}\n", b'{"c":3}'):
        counter.feed(chunk)
    assert counter.lines == 3
    counter.feed(b"\n")
    assert counter.lines == 3


# --------------------------------------------------------------------------- retry budget


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(
        backoff_base=1, backoff_factor=2, backoff_cap=5, max_attempts=10, deadline=None
    )
    budget = RetryBudget(policy, what="x", deadline_at=None)
    delays = [budget.on_failure(None, "500", now=0) for _ in range(5)]
    assert delays == [1, 2, 4, 5, 5]


def test_failures_stop_after_max_attempts_with_the_last_reason() -> None:
    budget = RetryBudget(
        RetryPolicy(max_attempts=3, deadline=None), what="status u", deadline_at=None
    )
    budget.on_failure(None, "500", now=0)
    budget.on_failure(None, "500", now=0)
    with pytest.raises(BulkNetworkError, match="status u: gave up after 3 attempts: 502"):
        budget.on_failure(None, "502", now=0)


def test_server_waits_are_clamped_and_the_deadline_is_enforced() -> None:
    policy = RetryPolicy(max_retry_after=10, deadline=30)
    budget = RetryBudget(policy, what="status u", deadline_at=30)
    assert budget.on_wait(Wait(500.0, "in progress"), now=0) == 10
    assert budget.on_wait(Wait(10.0, "in progress"), now=25) == 5  # cut to the time left
    assert budget.on_failure(None, "500", now=29.5) == 0.5
    with pytest.raises(BulkTimeoutError, match="deadline of 30 s has passed"):
        budget.on_wait(Wait(10.0, "in progress"), now=30)


def test_a_job_whose_progress_stops_changing_is_stalled() -> None:
    watch = StallWatch(RetryPolicy(stall_timeout=100), status_url="https://x/jobs/7", now=0)
    watch.observe("10%", now=0)
    watch.observe("20%", now=90)
    watch.observe("20%", now=189)  # 99 s unchanged: still fine
    with pytest.raises(ExportStalledError, match=r"https://x/jobs/7: .*no progress for 100 s"):
        watch.observe("20%", now=190)
    silent = StallWatch(RetryPolicy(stall_timeout=5), status_url="u", now=0)
    with pytest.raises(ExportStalledError, match="no X-Progress"):
        silent.observe(None, now=5)
    StallWatch(RetryPolicy(stall_timeout=None), status_url="u", now=0).observe(None, now=1e9)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (json.dumps(outcome("login", "token expired")).encode(), ["error/login: token expired"]),
        (b'{"error": "invalid_client", "error_description": "unknown key"}',
         ["server said: invalid_client: unknown key"]),
        (b"<html><head><title>413 Too Large</title></head><body><h1>413 Too Large</h1>"
         b"<p>limit\n 8 KB</p></body></html>", ["server said: 413 Too Large limit 8 KB"]),
        (b"quota\x00 exceeded\r\n", ["server said: quota exceeded"]),
        (b"", []),
    ],
)  # fmt: skip
def test_the_servers_error_body_is_shown_on_one_line(body: bytes, said: list[str]) -> None:
    assert server_says(body) == said
    assert len(server_says(b"x" * 5000)[0]) < 320


# --------------------------------------------------------------------------- kick-off and polling


def test_kickoff_retries_429_and_transient_500_then_resolves_a_relative_location() -> None:
    fake, seen = FakeTime(), []
    transport = scripted(
        [
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(503),
            httpx.Response(500, json=outcome("transient")),
            httpx.Response(202, headers={"Content-Location": "/r4/jobs/42"}),
        ],
        seen,
    )
    with sync_client(transport, fake, retry=RetryPolicy(backoff_base=1)) as client:
        job = client.kick_off(ExportRequest(base_url=BASE))
    assert job.status_url == "https://fhir.example.org/r4/jobs/42"
    assert fake.sleeps == [7.0, 1.0, 2.0]
    assert len(seen) == 4


def test_kickoff_refusal_carries_the_operation_outcome() -> None:
    fake = FakeTime()
    transport = scripted(
        [httpx.Response(400, json=outcome("invalid", "_type Foo is not supported"))], []
    )
    with (
        sync_client(transport, fake) as client,
        pytest.raises(KickoffError, match=r"400.*_type Foo is not supported"),
    ):
        client.kick_off(ExportRequest(base_url=BASE))


def test_kickoff_without_content_location_is_a_protocol_error() -> None:
    with (
        sync_client(scripted([httpx.Response(202)], []), FakeTime()) as client,
        pytest.raises(BulkProtocolError, match="no Content-Location"),
    ):
        client.kick_off(ExportRequest(base_url=BASE))


def test_polling_honours_every_retry_after_form_and_reports_progress() -> None:
    fake, events = FakeTime(), []
    http_date = email.utils.formatdate(NOW + 3 + 20, usegmt=True)  # after the first 3 s wait
    transport = scripted(
        [
            httpx.Response(202, headers={"Retry-After": "3", "X-Progress": "10% complete"}),
            httpx.Response(429, headers={"Retry-After": http_date}),
            httpx.Response(
                202, headers={"Retry-After": str(int(NOW + 23 + 4)), "X-Progress": "90% complete"}
            ),
            httpx.Response(202),  # no Retry-After: backoff
            httpx.Response(500, json=outcome("transient")),
            httpx.Response(
                200, json=manifest_body(), headers={"Expires": "Wed, 01 May 2024 12:00:00 GMT"}
            ),
        ],
        [],
    )
    policy = RetryPolicy(backoff_base=2, backoff_factor=2)
    with sync_client(transport, fake, retry=policy, on_event=events.append) as client:
        completed = client.wait(ExportJob("https://fhir.example.org/r4/jobs/1"))
    assert completed.manifest.transaction_time == "2024-05-01T10:00:00Z"
    assert completed.expires == "Wed, 01 May 2024 12:00:00 GMT"
    assert fake.sleeps == pytest.approx([3.0, 20.0, 4.0, 16.0, 2.0])  # 4th wait: 2*2**3
    progress = [e.progress for e in events if isinstance(e, Polling)]
    assert progress == ["10% complete", "90% complete", None]
    assert any(isinstance(e, Retrying) and "500" in e.reason for e in events)


def test_three_transient_500s_in_a_row_do_not_end_the_export() -> None:
    transport = scripted(
        [httpx.Response(500, json=outcome("transient"))] * 3
        + [httpx.Response(200, json=manifest_body())],
        [],
    )
    with sync_client(transport, FakeTime()) as client:
        assert client.wait(ExportJob(f"{BASE}/jobs/1")).manifest.output[0].count == 2


def test_a_non_transient_status_error_fails_the_export() -> None:
    transport = scripted([httpx.Response(500, json=outcome("exception", "disk full"))], [])
    with (
        sync_client(transport, FakeTime()) as client,
        pytest.raises(ExportFailedError, match="disk full"),
    ):
        client.wait(ExportJob(f"{BASE}/jobs/1"))


def test_a_forgotten_job_is_reported_as_expired() -> None:
    transport = scripted([httpx.Response(404, json=outcome("not-found"))], [])
    with (
        sync_client(transport, FakeTime()) as client,
        pytest.raises(ExportExpiredError, match="no longer has"),
    ):
        client.wait(ExportJob(f"{BASE}/jobs/1"))


def test_a_manifest_that_is_not_json_is_a_protocol_error() -> None:
    transport = scripted([httpx.Response(200, content=b"<html>")], [])
    with (
        sync_client(transport, FakeTime()) as client,
        pytest.raises(BulkProtocolError, match="not JSON"),
    ):
        client.wait(ExportJob(f"{BASE}/jobs/1"))


# --------------------------------------------------------------------------- manifests


def test_manifest_ignores_unknown_fields_and_keeps_deleted() -> None:
    body = manifest_body(
        extension={"x": 1},
        outputOrganizedBy="Patient",
        link=[{"relation": "next", "url": "x"}],
        deleted=[{"type": "Bundle", "url": f"{BASE}/files/d.ndjson", "extension": {"y": 2}}],
    )
    manifest = Manifest.from_json(body)
    assert manifest.output == (ManifestFile("Patient", f"{BASE}/files/p.ndjson", 2),)
    assert manifest.deleted == (ManifestFile("Bundle", f"{BASE}/files/d.ndjson", None),)
    assert manifest.error == ()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"transactionTime": None}, "no transactionTime"),
        ({"output": None}, "no output"),
        (
            {"output": [{"type": "Patient", "url": "/relative"}]},
            r"output\[0\].url is not an absolute URL",
        ),
        ({"output": [{"type": "Patient", "url": f"{BASE}/f", "count": -1}]}, r"output\[0\].count"),
        ({"requiresAccessToken": "yes"}, "requiresAccessToken is not a boolean"),
    ],
)
def test_malformed_manifests_name_the_field(change: dict[str, Any], message: str) -> None:
    body = {k: v for k, v in {**manifest_body(), **change}.items() if v is not None}
    with pytest.raises(BulkProtocolError, match=message):
        Manifest.from_json(body)


# --------------------------------------------------------------------------- downloads


def file_transport(bodies: list[httpx.Response], seen: list[httpx.Request]) -> httpx.MockTransport:
    return scripted(bodies, seen)


def test_download_decodes_gzip_streams_to_disk_and_sends_no_token_when_not_required(
    tmp_path: Path,
) -> None:
    seen: list[httpx.Request] = []
    lines = b'{"resourceType":"Patient","id":"a"}\n{"resourceType":"Patient","id":"b"}\n'
    transport = file_transport(
        [httpx.Response(200, content=gzip.compress(lines), headers={"Content-Encoding": "gzip"})],
        seen,
    )
    auth = httpx.BasicAuth("should", "not-be-sent")
    with sync_client(transport, FakeTime(), auth=auth) as client:
        result = client.download(
            ManifestFile("Patient", f"{BASE}/f/1", 2), tmp_path / "p.ndjson", requires_token=False
        )
    assert (tmp_path / "p.ndjson").read_bytes() == lines
    assert (result.lines, result.bytes) == (2, len(lines))
    assert seen[0].headers["Accept-Encoding"] == "gzip"
    assert "Authorization" not in seen[0].headers
    assert not list(tmp_path.glob("*.part"))


def test_download_retries_5xx_and_honours_retry_after_on_429(tmp_path: Path) -> None:
    fake = FakeTime()
    transport = file_transport(
        [
            httpx.Response(503),
            httpx.Response(429, headers={"Retry-After": "9"}),
            httpx.Response(200, content=b"{}\n"),
        ],
        [],
    )
    with sync_client(transport, fake, retry=RetryPolicy(backoff_base=0.5)) as client:
        client.download(
            ManifestFile("Patient", f"{BASE}/f/1", 1), tmp_path / "p.ndjson", requires_token=False
        )
    assert fake.sleeps == [0.5, 9.0]


def test_count_mismatch_is_retried_once_then_reported_and_nothing_is_left(tmp_path: Path) -> None:
    transport = file_transport([httpx.Response(200, content=b"{}\n")] * 2, [])
    with (
        sync_client(transport, FakeTime()) as client,
        pytest.raises(CountMismatchError, match="says 3 resources but the file holds 1 lines"),
    ):
        client.download(
            ManifestFile("Patient", f"{BASE}/f/1", 3),
            tmp_path / "p.ndjson",
            requires_token=False,
        )
    assert list(tmp_path.iterdir()) == []


def test_a_gone_file_is_a_clear_expiry_error(tmp_path: Path) -> None:
    transport = file_transport([httpx.Response(410)], [])
    with (
        sync_client(transport, FakeTime()) as client,
        pytest.raises(ExportExpiredError, match=r"gone \(410\).*--restart-expired"),
    ):
        client.download(
            ManifestFile("Patient", f"{BASE}/f/1"), tmp_path / "p.ndjson", requires_token=False
        )


def test_network_errors_are_retried_then_reported_with_the_cause(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    fake = FakeTime()
    with (
        sync_client(httpx.MockTransport(refuse), fake, retry=RetryPolicy(max_attempts=3)) as client,
        pytest.raises(BulkNetworkError, match="gave up after 3 attempts: ConnectError") as info,
    ):
        client.download(
            ManifestFile("Patient", f"{BASE}/f/1"), tmp_path / "p.ndjson", requires_token=False
        )
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert len(fake.sleeps) == 2


def test_async_client_downloads_and_deletes(tmp_path: Path) -> None:
    fake, seen = FakeTime(), []
    transport = scripted([httpx.Response(200, content=b"{}\n{}\n"), httpx.Response(202)], seen)

    async def run() -> tuple[DownloadResult, tuple[bool, str]]:
        async with AsyncBulkClient(
            transport=transport, clock=fake.clock, monotonic=fake.clock, sleep=fake.async_sleep
        ) as client:
            result = await client.download(
                ManifestFile("X", f"{BASE}/f/1", 2), tmp_path / "x.ndjson", requires_token=False
            )
            return result, await client.delete(ExportJob(f"{BASE}/jobs/1"))

    result, (accepted, reason) = asyncio.run(run())
    assert result.lines == 2
    assert (accepted, reason) == (True, "202 Accepted")
    assert [r.method for r in seen] == ["GET", "DELETE"]
