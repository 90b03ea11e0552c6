"""Fixtures of the pipeline tests: two small synthetic hospitals served on loopback."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhirlake.bulkserver import BackgroundServer, BulkServerConfig
from fhirlake.synth import generate


@pytest.fixture(scope="module")
def hospitals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hospitals")
    folders = {}
    for index, site in enumerate(("site-a", "site-b", "clinic")):
        folders[site] = root / site
        generate(folders[site], patients=4, seed=20 + index, workers=1)
    return folders


@pytest.fixture(scope="module")
def servers(hospitals: dict[str, Path]) -> Iterator[dict[str, str]]:
    with BackgroundServer(BulkServerConfig(data_dir=hospitals["site-a"])) as a, \
            BackgroundServer(BulkServerConfig(data_dir=hospitals["site-b"])) as b:
        yield {"site-a": a.base_url, "site-b": b.base_url}


@pytest.fixture()
def key() -> str:
    return secrets.token_hex(32)
