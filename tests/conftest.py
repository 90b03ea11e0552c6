"""Shared test fixtures: where the read-only shared material is, and skipping without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """``$FHIRLAKE_SHARED`` or ``../shared`` beside the project, if it exists."""
    configured = os.environ.get("FHIRLAKE_SHARED")
    path = Path(configured) if configured else PROJECT_ROOT.parent / "shared"
    return path if path.is_dir() else None


def shared_path(*parts: str) -> Path:
    """A path inside the shared folder; skips the test with the reason when it is absent."""
    base = shared_dir()
    if base is None:
        pytest.skip("the shared folder (../shared or $FHIRLAKE_SHARED) is not here")
    path = base.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not here")
    return path


@pytest.fixture(scope="session")
def synthea_dir() -> Path:
    """The 30-patient Synthea Bulk export in ../shared/data/synthea-r4-30."""
    return shared_path("data", "synthea-r4-30")


DEMO_LAKE_PATIENTS = 150
DEMO_LAKE_SEED = 7


@pytest.fixture(scope="session")
def demo_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small lake built once per test session: synthetic export → silver → gold (+ catalog).

    Two sources (``site-a`` and ``site-b``, 150 synthetic patients in all, seed 7) so tenant
    and per-source behaviour can be tested. Not pseudonymised, to keep the session fast: the
    gold tables hold the same columns either way, and synthetic ids identify no one. Tests
    must not write to it (copy it first); open it with ``fhirlake.connect(path)``.
    """
    import fhirlake
    from fhirlake.synth import generate

    root = tmp_path_factory.mktemp("demo-lake")
    lake = fhirlake.connect(root / "lake", read_only=False)
    half = DEMO_LAKE_PATIENTS // 2
    for source, seed in (("site-a", DEMO_LAKE_SEED), ("site-b", DEMO_LAKE_SEED + 1)):
        export = root / "exports" / source
        generate(export, patients=half, seed=seed, workers=1)
        lake.ingest(export, source=source, allow_raw=True)
    return root / "lake"


PIPELINE_LAKE_PATIENTS = 24
PIPELINE_LAKE_SEED = 11


@pytest.fixture(scope="session")
def pipeline_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake made by the real chain, once per session: ``fhirlake demo``'s own function.

    Two synthetic hospitals (``site-a`` English, ``site-b`` French; 24 patients in all, seed
    11) are served by embedded Bulk Data servers on loopback and run through the Dagster code
    location (``full_export`` per source: export → pseudonymise with Presidio → silver → gold →
    catalog, every asset check passing). Pseudonymised with a random per-session key. Layout:
    ``<lake>/bronze/<source>/<export id>/``, ``<lake>/pseudonymised/<source>/<export id>/``
    (``privacy-report.json``, ``quarantine.jsonl``, ``manifest.json``), silver, gold, catalog.
    Tests must not write to it (copy it first); open it with ``fhirlake.connect(path)``.
    """
    import secrets

    from fhirlake.demo import build_demo_lake

    lake = tmp_path_factory.mktemp("pipeline-lake") / "lake"
    result = build_demo_lake(lake, patients=PIPELINE_LAKE_PATIENTS, seed=PIPELINE_LAKE_SEED,
                             key=secrets.token_hex(32))
    assert result.success, result.errors
    return lake


@pytest.fixture(scope="session")
def spark():  # type: ignore[no-untyped-def]
    """One local Spark session (local[2]) for the whole test run; skips without pyspark or Java.

    Spark allows one session per process, so every Spark test shares this one: start-up costs
    about 10 s on these machines, paid once.
    """
    import shutil

    pytest.importorskip("pyspark")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java 17 (no java on PATH, no JAVA_HOME)")
    from fhirlake.spark import spark_session

    session = spark_session("local[2]", app_name="fhirlake-tests")
    yield session
    session.stop()
