"""Fixtures of the MCP server tests: a cohort service and an MCP server over the shared demo lake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import fhirlake
from fhirlake.lake import Lake
from fhirlake.mcp_server import FhirlakeServer, build_server
from fhirlake.serving import CohortService, GoldReader


@pytest.fixture
def service(demo_lake: Path) -> Iterator[CohortService]:
    """A fresh service (fresh differencing memory) over the demo lake, read-only."""
    reader = GoldReader(demo_lake)
    yield CohortService(reader)
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
