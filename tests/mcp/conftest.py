"""Fixtures of the MCP server tests: a cohort service and an MCP server over the shared demo lake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import fhirlake
from fhirlake.lake import Lake
from fhirlake.mcp_server import FhirlakeServer, build_server
from fhirlake.serving import CohortService, GoldReader, PrivacyPolicy

#: A privacy policy whose noise is far below one patient: the compiled questions are checked
#: against exact SQL with it (the noise itself is tested with the default policy).
EXACT = PrivacyPolicy(epsilon_per_call=1e7, epsilon_per_day=1e12)


@pytest.fixture
def service(demo_lake: Path, tmp_path: Path) -> Iterator[CohortService]:
    """A fresh service over the demo lake (read-only), with negligible noise and its own ledger."""
    reader = GoldReader(demo_lake)
    service = CohortService(reader, privacy=EXACT, state_dir=tmp_path / "state")
    yield service
    service.close()
    reader.close()


@pytest.fixture
def noisy_service(demo_lake: Path, tmp_path: Path) -> Iterator[CohortService]:
    """A service with the default privacy policy (noise, budget) and its own ledger."""
    reader = GoldReader(demo_lake)
    service = CohortService(reader, state_dir=tmp_path / "noisy-state")
    yield service
    service.close()
    reader.close()


@pytest.fixture
def server(service: CohortService) -> FhirlakeServer:
    return build_server(service)


@pytest.fixture(scope="session")
def truth(demo_lake: Path) -> Iterator[Lake]:
    """The demo lake through the notebook API, for hand-written independent SQL."""
    lake = fhirlake.connect(demo_lake)
    yield lake
    lake.close()
