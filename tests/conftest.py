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
