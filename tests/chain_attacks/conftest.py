"""Fixtures of the chain attacks: one small synthetic batch, raw and pseudonymised, and a key."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhirlake.synth import generate
from tests.chain_attacks.support import cli

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def pseudonym_key() -> Iterator[str]:
    key = secrets.token_hex(32)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FHIRLAKE_PSEUDONYM_KEY", key)
        yield key


@pytest.fixture(scope="session")
def raw_batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic <Type>.ndjson files of 3 patients, with manifest.json and truth.json."""
    folder = tmp_path_factory.mktemp("chain-raw") / "raw"
    generate(folder, patients=3, seed=15, workers=1)
    return folder


@pytest.fixture(scope="session")
def pseudo_batch(raw_batch: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fhirlake pseudonymize of raw_batch (no Presidio)."""
    out = tmp_path_factory.mktemp("chain-pseudo") / "pseudo"
    result = cli("pseudonymize", raw_batch, out, "--no-text", "--workers", "1")
    assert result.code == 0, str(result)
    return out


@pytest.fixture(scope="session")
def views(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two views of the library (patient, observation), to keep each ingest short."""
    folder = tmp_path_factory.mktemp("chain-views")
    for name in ("patient.json", "observation.json"):
        shutil.copy(PROJECT_ROOT / "sql_on_fhir_views" / name, folder / name)
    return folder


@pytest.fixture(scope="session")
def base_lake(pseudo_batch: Path, views: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake holding pseudo_batch as source 'base' (copy it before writing)."""
    lake = tmp_path_factory.mktemp("chain-base-lake") / "lake"
    result = cli("lake", "ingest", pseudo_batch, "--source", "base", "--lake", lake,
                 "--views", views)
    assert result.code == 0, str(result)
    return lake


@pytest.fixture(scope="session")
def bronze_export(raw_batch: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """raw_batch served by the embedded Bulk server, fetched by fhirlake export into bronze/."""
    from fhirlake.bulkserver import BackgroundServer, BulkServerConfig

    data = tmp_path_factory.mktemp("chain-served") / "data"
    shutil.copytree(raw_batch, data)
    (data / "truth.json").unlink()
    lake = tmp_path_factory.mktemp("chain-bronze") / "lake"
    with BackgroundServer(BulkServerConfig(data_dir=data)) as server:
        result = cli("export", "--url", server.base_url, "--name", "hospital", "--lake", lake,
                     "--quiet")
    assert result.code == 0, str(result)
    (batch,) = (lake / "bronze" / "hospital").iterdir()
    assert (batch / "output").is_dir(), sorted(p.name for p in batch.iterdir())
    return batch
