"""The sources file, the bronze layout's journal and the watermark store; and the public names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fhirlake.bulk
import fhirlake.bulkserver
from fhirlake.bulk import (
    AuthError,
    BearerTokenAuth,
    BulkError,
    ExportLevel,
    SigningKey,
    SmartBackendAuth,
    SourceConfigError,
    WatermarkStore,
    load_sources,
)
from fhirlake.bulk._layout import ExportDir, Journal
from fhirlake.errors import FhirlakeError

REPO = Path(__file__).resolve().parents[2]


def test_public_names_are_exactly_the_curated_ones() -> None:
    assert sorted(fhirlake.bulk.__all__) == sorted(
        [
            "AsyncBulkClient", "AuthError", "BearerTokenAuth", "BulkClient", "BulkError",
            "BulkNetworkError", "BulkProtocolError", "BulkTimeoutError", "BytesReceived",
            "CompletedExport", "CountMismatchError", "DownloadError", "DownloadResult", "Event",
            "ExportAbandoned", "ExportExpiredError", "ExportFailedError", "ExportJob", "ExportLevel",
            "ExportOptions", "ExportRequest", "ExportResult", "ExportStalledError", "ExportState", "Exporter", "FileDone",
            "FileRecord", "JobDeleted", "KickedOff", "KickoffError", "Manifest", "ManifestFile",
            "ManifestSaved", "OutcomeIssue", "Polling", "ResumeConflictError", "RetryPolicy",
            "Retrying", "SigningKey", "SmartBackendAuth", "Source", "SourceAuth",
            "SourceConfigError", "WatermarkStore", "export", "list_exports", "load_sources",
            "read_export",
        ]
    )  # fmt: skip
    assert sorted(fhirlake.bulkserver.__all__) == [
        "BackgroundServer", "BulkServerConfig", "ClientRegistration", "Faults", "RequestRecord",
        "ServerAuth", "ServerState", "create_app", "serve",
    ]  # fmt: skip
    for module in (fhirlake.bulk, fhirlake.bulkserver):
        for name in module.__all__:
            assert getattr(module, name) is not None


def test_every_bulk_error_is_a_fhirlake_error() -> None:
    errors = [getattr(fhirlake.bulk, n) for n in fhirlake.bulk.__all__ if n.endswith("Error")]
    assert errors and all(issubclass(e, FhirlakeError) for e in errors)
    assert all(issubclass(e, BulkError) for e in errors if e is not SourceConfigError)


# --------------------------------------------------------------------------- sources file


def test_the_example_sources_file_is_valid_and_builds_its_auth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sources = load_sources(REPO / "sources.example.yaml")
    assert set(sources) == {"demo", "hospital-a", "registry"}
    demo, hospital, registry = sources["demo"], sources["hospital-a"], sources["registry"]
    assert demo.since == "auto" and demo.auth.build(demo.request.base_url) is None
    assert hospital.request.level is ExportLevel.GROUP
    assert hospital.request.endpoint.endswith("/Group/diabetes-cohort-2024/$export")
    assert hospital.request.type_filters == ("Observation?category=laboratory",)
    assert registry.request.types == ("Patient", "Immunization")

    monkeypatch.setenv("REGISTRY_TOKEN", "t0ken")
    assert isinstance(registry.auth.build(registry.request.base_url), BearerTokenAuth)
    monkeypatch.setenv(
        "HOSPITAL_A_PRIVATE_KEY", SigningKey.generate("ES384").private_pem().decode()
    )
    smart = hospital.auth.build(hospital.request.base_url)
    assert isinstance(smart, SmartBackendAuth) and smart.client_id == "fhirlake-research"


def test_a_missing_secret_variable_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REGISTRY_TOKEN", raising=False)
    registry = load_sources(REPO / "sources.example.yaml")["registry"]
    with pytest.raises(AuthError, match="REGISTRY_TOKEN is not set"):
        registry.auth.build(registry.request.base_url)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("sources:\n  a:\n    level: system\n", r"sources.a.url: is required"),
        (
            "sources:\n  a:\n    url: http://x\n    level: sytem\n",
            r"sources.a.level: must be one of system, patient, group \(got 'sytem'\)",
        ),
        (
            "sources:\n  a:\n    url: http://x\n    typs: [Patient]\n",
            r"sources.a.typs: unknown key",
        ),
        (
            "sources:\n  a:\n    url: http://x\n    auth: {type: bearer, token: abc}\n",
            r"sources.a.auth.token: secrets never go in this file",
        ),
        (
            "sources:\n  a:\n    url: http://x\n    auth: {type: smart, client_id: c}\n",
            r"sources.a.auth: SMART auth needs exactly one of key_file or key_env",
        ),
        (
            "sources:\n  a:\n    url: http://x\n    level: group\n",
            r"sources.a: a group-level export needs a group id",
        ),
        (
            "sources:\n  a:\n    url: http://x\n    since: yesterday\n",
            r"sources.a.since: _since 'yesterday' is not a FHIR instant",
        ),
        (
            "sources:\n  a:\n    url: http://x\n    parallel: 0\n",
            r"sources.a.parallel: must be a whole number from 1 to 64",
        ),
        ("sources:\n  'bad name':\n    url: http://x\n", r"sources.bad name: a source name uses"),
        ("sources: [1, 2]\n", r"sources: the file must hold a mapping"),
        ("sources:\n  a: {url: http://x\n", r"not valid YAML"),
    ],
)
def test_bad_sources_files_name_the_file_and_key(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(body)
    with pytest.raises(SourceConfigError, match=message) as info:
        load_sources(path)
    assert str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)


def test_a_missing_sources_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(SourceConfigError, match=r"file not found .*--sources"):
        load_sources(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- layout


def test_the_journal_survives_a_torn_last_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state.jsonl")
    journal.append("created", fingerprint="f")
    with open(journal.path, "ab") as fh:
        fh.write(b'{"event":"file","na')  # a crash mid-append
    journal.append("kicked_off", status_url="http://x/jobs/1")
    assert [e["event"] for e in journal.events()] == ["created", "kicked_off"]
    lines = journal.path.read_bytes().splitlines()
    assert len(lines) == 3 and lines[1] == b'{"event":"file","na'  # appended, never rewritten


def test_the_manifest_is_written_once(tmp_path: Path) -> None:
    export_dir = ExportDir(tmp_path / "e1")
    export_dir.path.mkdir()
    export_dir.save_manifest(b'{"a":1}')
    export_dir.save_manifest(b'{"a":1}')  # the same bytes again: fine
    with pytest.raises(BulkError, match="a different manifest is already saved"):
        export_dir.save_manifest(b'{"a":2}')
    assert export_dir.manifest_path.read_bytes() == b'{"a":1}'


def test_watermarks_are_kept_per_source_in_a_small_json_file(tmp_path: Path) -> None:
    store = WatermarkStore(tmp_path)
    assert store.get("a") is None
    store.set("a", transaction_time="2024-01-01T00:00:00Z", export_id="e1")
    store.set("b", transaction_time="2024-02-01T00:00:00Z", export_id="e2")
    store.set("a", transaction_time="2024-03-01T00:00:00Z", export_id="e3")
    assert WatermarkStore(tmp_path).get("a") == "2024-03-01T00:00:00Z"
    data = json.loads((tmp_path / "watermarks.json").read_text())
    assert data["b"] == {"exportId": "e2", "transactionTime": "2024-02-01T00:00:00Z"}
    assert not list(tmp_path.glob("*.tmp"))
