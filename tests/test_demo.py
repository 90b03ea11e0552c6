"""``fhirlake demo`` never harms: its own lake folder, deletes only what it made, stops on one
Ctrl-C, and prints a Dagster command that works as printed (issue #15, point 3)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from fhirlake.demo import (
    DEFAULT_DEMO_LAKE,
    DEMO_MARKER,
    _Interrupt,
    build_demo_lake,
    dagster_command,
    demo_command,
    prepare_lake,
)
from fhirlake.errors import ConfigurationError
from fhirlake.lake._storage import default_root


def test_the_demo_builds_its_own_lake_not_the_users() -> None:
    lake_option = next(p for p in demo_command.params if p.name == "lake")
    assert lake_option.default == DEFAULT_DEMO_LAKE == Path(".fhirlake-demo")


def test_a_folder_the_demo_did_not_make_is_left_alone(tmp_path: Path) -> None:
    users = tmp_path / "lake"
    (users / "silver").mkdir(parents=True)
    with pytest.raises(ConfigurationError, match=r"no demo marker.*left alone"):
        prepare_lake(users)
    assert (users / "silver").is_dir() and not (users / DEMO_MARKER).exists()


@pytest.mark.parametrize(
    ("extra", "reason"),
    [("notes.txt", "notes.txt was not made by the demo"),
     ("bronze/hospital-x/e1/manifest.json", "bronze/hospital-x is not one of the demo's sources")],
)  # fmt: skip
def test_a_demo_lake_holding_anything_else_is_not_rebuilt(tmp_path: Path, extra: str, reason: str) -> None:
    lake = tmp_path / "demo"
    prepare_lake(lake)
    (lake / extra).parent.mkdir(parents=True, exist_ok=True)
    (lake / extra).write_text("mine", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=reason):
        prepare_lake(lake)
    assert (lake / extra).read_text(encoding="utf-8") == "mine"


def test_a_demo_lake_is_rebuilt_from_empty(tmp_path: Path) -> None:
    lake = tmp_path / "demo"
    prepare_lake(lake)
    for made in ("gold/patient/part-0.parquet", "bronze/site-a/e1/manifest.json", ".catalog-1.duckdb"):
        (lake / made).parent.mkdir(parents=True, exist_ok=True)
        (lake / made).write_bytes(b"x")
    prepare_lake(lake)
    assert sorted(p.name for p in lake.iterdir()) == [DEMO_MARKER]
    assert json.loads((lake / DEMO_MARKER).read_text(encoding="utf-8"))["sources"] == ["site-a", "site-b"]


def test_reading_without_a_lake_finds_the_demos_but_writing_never_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FHIRLAKE_LAKE", raising=False)
    (tmp_path / ".fhirlake-demo").mkdir()
    (tmp_path / "notebooks").mkdir()
    assert default_root(tmp_path / "notebooks", reading=True) == str(tmp_path / ".fhirlake-demo")
    assert default_root(tmp_path / "notebooks") == ".fhirlake"
    (tmp_path / ".fhirlake").mkdir()  # the user's own lake wins
    assert default_root(tmp_path / "notebooks", reading=True) == str(tmp_path / ".fhirlake")


def test_one_ctrl_c_stops_the_demo_and_forked_workers_stay_quiet() -> None:
    handler = _Interrupt()
    handler.check()  # nothing yet
    handler.pid = os.getpid() + 1  # as seen from a forked worker: ignored, the parent stops it
    handler(2, None)
    assert not handler.received
    handler.pid = os.getpid()
    with pytest.raises(KeyboardInterrupt):
        handler(2, None)
    with pytest.raises(KeyboardInterrupt):  # a run that swallowed it is followed by a stop
        handler.check()


@pytest.mark.slow
def test_the_printed_dagster_command_runs_a_source(tmp_path: Path) -> None:
    """The environment of the printed command (as a shell expands it) loads the code location
    with the demo's sites as file sources, and a run of one succeeds with the demo's key."""
    import dagster as dg

    from fhirlake_pipelines.definitions import build_definitions
    from fhirlake_pipelines.run import run_sources
    from fhirlake_pipelines.settings import PipelineSettings

    lake = tmp_path / "demo"
    with dg.instance_for_test() as instance:  # cleaned up here (an ephemeral one leaves a temp folder to the GC)
        result = build_demo_lake(lake, patients=4, seed=5, key=secrets.token_hex(32), text=False, save_key=True,
                                 instance=instance)
    assert result.success, result.errors
    key_file = result.key_file
    assert key_file is not None and key_file.stat().st_mode & 0o077 == 0  # the owner's only
    assert not (lake / "_demo" / "servers.yaml").exists()  # the servers are gone: not offered
    command = dagster_command(lake, tmp_path / "home", key_file=key_file)
    assert command.endswith(" dagster dev")
    shown = subprocess.run(["bash", "-c", command.removesuffix(" dagster dev") + " env"],
                           capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]}).stdout
    env = dict(line.split("=", 1) for line in shown.splitlines() if line.startswith(("FHIRLAKE_", "DAGSTER_")))
    assert env["FHIRLAKE_PSEUDONYM_KEY"] == key_file.read_text(encoding="utf-8").strip()
    settings = PipelineSettings.from_env(env)
    assert settings.partition_keys == ["site-a", "site-b"] and not settings.sources
    os.environ["FHIRLAKE_PSEUDONYM_KEY"] = env["FHIRLAKE_PSEUDONYM_KEY"]
    try:
        with dg.instance_for_test() as instance:
            outcome = run_sources(build_definitions(settings), ["site-a"], instance=instance)
    finally:
        del os.environ["FHIRLAKE_PSEUDONYM_KEY"]
    assert outcome["site-a"].success, outcome["site-a"].error
