"""Which lake ``fhirlake.connect()`` opens when none is named: env, ./.fhirlake, a parent's, like git."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import fhirlake
from fhirlake.lake._storage import default_root


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder with a ``notebooks/deep`` subfolder; no $FHIRLAKE_LAKE."""
    monkeypatch.delenv("FHIRLAKE_LAKE", raising=False)
    (tmp_path / "project" / "notebooks" / "deep").mkdir(parents=True)
    return tmp_path / "project"


def test_environment_wins(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / ".fhirlake").mkdir()
    monkeypatch.setenv("FHIRLAKE_LAKE", str(project / "elsewhere"))
    assert default_root(project / "notebooks") == str(project / "elsewhere")


def test_nearest_parent_lake_is_found(project: Path) -> None:
    (project / ".fhirlake").mkdir()
    assert default_root(project / "notebooks" / "deep") == str(project / ".fhirlake")
    (project / "notebooks" / ".fhirlake").mkdir()
    assert default_root(project / "notebooks" / "deep") == str(project / "notebooks" / ".fhirlake")
    assert default_root(project) == str(project / ".fhirlake")


def test_without_any_lake_the_default_is_the_working_directory(project: Path) -> None:
    assert Path(default_root(project / "notebooks")).name == ".fhirlake"
    assert not Path(default_root(project / "notebooks")).is_absolute()


def test_a_file_named_fhirlake_is_not_a_lake(project: Path) -> None:
    (project / ".fhirlake").write_text("not a lake")
    assert default_root(project / "notebooks") == ".fhirlake"


def test_connect_from_a_subfolder_opens_the_project_lake(
    project: Path, demo_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(demo_lake, project / ".fhirlake")
    monkeypatch.chdir(project / "notebooks")
    lake, original = fhirlake.connect(), fhirlake.connect(demo_lake)
    try:
        assert Path(lake.storage.root) == (project / ".fhirlake").resolve()
        assert lake.describe("patient").rows == original.describe("patient").rows > 0
    finally:
        lake.close()
        original.close()
