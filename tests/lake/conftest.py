"""Fixtures of the lake tests: the hand-built exports and a small view folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.lake import helpers


@dataclass(frozen=True)
class Exports:
    full: Path
    incremental: Path
    final: Path


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Exports:
    base = tmp_path_factory.mktemp("exports")
    full = helpers.full_export()
    incremental = helpers.incremental_export(full)
    return Exports(
        full=helpers.write_export(base / "full", full, transaction_time="2025-06-30T12:00:00Z"),
        incremental=helpers.write_export(base / "inc", incremental, transaction_time="2025-07-02T00:00:00Z",
                                         deleted=helpers.DELETED),
        final=helpers.write_export(base / "final", helpers.final_state(full, incremental), transaction_time="2025-07-02T00:00:00Z"),
    )


@pytest.fixture(scope="session")
def views(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return helpers.views_folder(tmp_path_factory.mktemp("views"))
