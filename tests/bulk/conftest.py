"""Fixtures for the Bulk Data tests: small NDJSON folders, the shared Synthea export, live servers."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fhirlake.bulk import RetryPolicy
from fhirlake.bulkserver import BackgroundServer, BulkServerConfig

# Fast but real retries: tests never wait more than a few hundredths of a second per retry.
FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_cap=0.05, max_retry_after=1.0, deadline=120.0)


def _shared_root() -> Path:
    override = os.environ.get("FHIRLAKE_SHARED")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2].parent / "shared"


@pytest.fixture(scope="session")
def synthea_dir() -> Path:
    """The 30-patient Synthea Bulk export in ../shared (or $FHIRLAKE_SHARED); skipped if absent."""
    path = _shared_root() / "data" / "synthea-r4-30"
    if not (path / "Patient.ndjson").is_file():
        pytest.skip(f"shared Synthea data not found at {path} (set FHIRLAKE_SHARED to its parent folder)")
    return path


def write_ndjson(path: Path, resources: list[dict[str, Any]]) -> None:
    """Write resources as NDJSON, one per line."""
    path.write_text("".join(json.dumps(r) + "\n" for r in resources), encoding="utf-8")


@pytest.fixture
def small_dir(tmp_path: Path) -> Path:
    """Six patients, thirty observations (five each), one organization and a two-member Group."""
    folder = tmp_path / "data"
    folder.mkdir()
    patients = [
        {"resourceType": "Patient", "id": f"p{i}", "meta": {"lastUpdated": f"2024-0{1 + i % 3}-01T00:00:00Z"}}
        for i in range(6)
    ]
    observations = [
        {
            "resourceType": "Observation",
            "id": f"o{i}",
            "status": "final",
            "code": {"text": "weight"},
            "subject": {"reference": f"Patient/p{i % 6}"},
            "meta": {"lastUpdated": f"2024-0{1 + i % 3}-15T00:00:00Z"},
        }
        for i in range(30)
    ]
    write_ndjson(folder / "Patient.ndjson", patients)
    write_ndjson(folder / "Observation.ndjson", observations)
    write_ndjson(folder / "Organization.ndjson", [{"resourceType": "Organization", "id": "org1", "name": "H"}])
    group = {
        "resourceType": "Group",
        "id": "g1",
        "type": "person",
        "actual": True,
        "member": [{"entity": {"reference": "Patient/p0"}}, {"entity": {"reference": "Patient/p1"}}],
    }
    write_ndjson(folder / "Group.ndjson", [group])
    return folder


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., BackgroundServer]]:
    """Start embedded servers on 127.0.0.1 (``live_server(data_dir, **config)``); all stop at teardown."""
    started: list[BackgroundServer] = []

    def start(data_dir: Path, **kwargs: Any) -> BackgroundServer:
        kwargs.setdefault("retry_after", 0)
        kwargs.setdefault("work_dir", tmp_path / f"server-work-{len(started)}")
        server = BackgroundServer(BulkServerConfig(data_dir=data_dir, **kwargs))
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def read_resources(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """Every resource saved under ``<export>/output``, by type."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((directory / "output").rglob("*.ndjson")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                resource = json.loads(line)
                found.setdefault(resource["resourceType"], []).append(resource)
    return found


def source_counts(folder: Path) -> dict[str, int]:
    """Lines per type in a served folder."""
    return {
        path.name.split(".")[0]: sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
        for path in folder.glob("*.ndjson")
        if path.name[0].isupper()
    }
