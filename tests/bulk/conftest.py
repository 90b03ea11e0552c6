"""Fixtures for the Bulk Data tests: small NDJSON folders, the shared Synthea export, live servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fhirlake.bulkserver import BackgroundServer, BulkServerConfig
from tests.bulk.helpers import write_ndjson
from tests.conftest import shared_path


@pytest.fixture
def synthea_dir() -> Path:
    """The 30-patient Synthea Bulk export in ../shared (or $FHIRLAKE_SHARED); skipped if absent."""
    return shared_path("data", "synthea-r4-30")


@pytest.fixture
def small_dir(tmp_path: Path) -> Path:
    """Six patients, thirty observations (five each), one organization and a two-member Group."""
    folder = tmp_path / "data"
    folder.mkdir()
    patients = [
        {
            "resourceType": "Patient",
            "id": f"p{i}",
            "meta": {"lastUpdated": f"2024-0{1 + i % 3}-01T00:00:00Z"},
        }
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
    write_ndjson(
        folder / "Organization.ndjson",
        [{"resourceType": "Organization", "id": "org1", "name": "H"}],
    )
    group = {
        "resourceType": "Group",
        "id": "g1",
        "type": "person",
        "actual": True,
        "member": [
            {"entity": {"reference": "Patient/p0"}},
            {"entity": {"reference": "Patient/p1"}},
        ],
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
