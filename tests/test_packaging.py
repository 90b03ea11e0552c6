"""The package installs anywhere (issue #15, point 6): a wheel built from the checkout, installed
in a fresh virtual environment outside it, finds its view library and policy in itself, and
puts no generic top-level ``pipelines`` module into site-packages.

The fresh environment borrows the third-party dependencies of the running one (a path entry,
not an install), so the test needs no network and checks only what the wheel itself carries.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from fhirlake.errors import ConfigurationError
from fhirlake.resources import anonymization_folder, default_policy_path, views_folder
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow


# what the wheel is built from, copied so that no build/ folder is left in (or reused from) the checkout
SOURCES = ("pyproject.toml", "setup.py", "README.md", "src", "pipelines", "sql_on_fhir_views", "anonymization")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree, out = tmp_path_factory.mktemp("tree"), tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copyfile(source, tree / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(tree)],
                   check=True, cwd=out)
    (built,) = out.glob("fhirlake-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; its python."""
    home = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(home)
    python = home / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    # the dependencies of this environment, after the venv's own site-packages (no .pth of it runs:
    # this checkout's editable install stays out)
    (purelib / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(purelib), str(wheel)],
                   check=True)
    return python


def run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FHIRLAKE_", "PYTHON"))}
    return subprocess.run([str(python), *args], capture_output=True, text=True, cwd=cwd, env=env, check=False)


def test_the_wheel_carries_the_library_and_no_generic_top_level_module(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.startswith("fhirlake-")}
    assert top == {"fhirlake", "fhirlake_pipelines"}
    views = {Path(n).name for n in names if n.startswith("fhirlake/_data/views/")}
    assert views == {p.name for p in (PROJECT_ROOT / "sql_on_fhir_views").glob("*.json")}
    shipped = {Path(n).name for n in names if n.startswith("fhirlake/_data/anonymization/")}
    assert {"policy.yaml", "presidio-analyzer.yaml", "clinical-terms.yaml", "string-elements.yaml"} <= shipped
    assert "fhirlake_pipelines/definitions.py" in names and "fhirlake_pipelines/defs/assets.py" in names


def test_an_installed_wheel_validates_its_views_anywhere(installed: Path, tmp_path: Path) -> None:
    done = run(installed, "-m", "fhirlake", "view", "validate", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("ok  ") == len(list((PROJECT_ROOT / "sql_on_fhir_views").glob("*.json")))
    assert "/_data/views/" in done.stdout and str(PROJECT_ROOT) not in done.stdout


def test_an_installed_wheel_loads_its_own_policy(installed: Path, tmp_path: Path) -> None:
    script = ("from fhirlake.resources import default_policy_path\n"
              "from fhirlake.pseudonymize import load_policy\n"
              "path = default_policy_path(); load_policy(path); print(path)\n"
              "import fhirlake_pipelines\n"
              "try:\n    import pipelines\nexcept ImportError:\n    print('no pipelines module')\n")
    done = run(installed, "-c", script, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "/_data/anonymization/policy.yaml" in done.stdout and "no pipelines module" in done.stdout


def test_the_projects_own_folders_override_the_shipped_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FHIRLAKE_VIEWS", raising=False)
    monkeypatch.delenv("FHIRLAKE_ANONYMIZATION", raising=False)
    assert views_folder(tmp_path) == PROJECT_ROOT / "sql_on_fhir_views"  # the checkout's
    (tmp_path / "sql_on_fhir_views").mkdir()
    (tmp_path / "anonymization").mkdir()
    assert views_folder(tmp_path) == tmp_path / "sql_on_fhir_views"  # the working directory's
    assert default_policy_path(tmp_path) == tmp_path / "anonymization" / "policy.yaml"
    monkeypatch.setenv("FHIRLAKE_ANONYMIZATION", str(tmp_path / "elsewhere"))
    with pytest.raises(ConfigurationError, match=r"FHIRLAKE_ANONYMIZATION: .* is not a folder"):
        anonymization_folder(tmp_path)


def test_an_installed_wheel_runs_the_chain_and_serves_mcp(installed: Path, tmp_path: Path) -> None:
    """From a folder outside the checkout: `fhirlake run` against the embedded Bulk server builds a
    pseudonymised lake with the shipped policy and views, and `fhirlake mcp` lists its tools to
    the MCP SDK's client over stdio."""
    import secrets

    import anyio

    from fhirlake.bulkserver import BackgroundServer, BulkServerConfig
    from fhirlake.synth import generate
    from mcp import Client, StdioServerParameters

    generate(tmp_path / "hospital", patients=3, seed=5, workers=1)
    work = tmp_path / "elsewhere"
    work.mkdir()
    key = {"FHIRLAKE_PSEUDONYM_KEY": secrets.token_hex(32)}
    with BackgroundServer(BulkServerConfig(data_dir=tmp_path / "hospital")) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FHIRLAKE_", "PYTHON"))} | key
        done = subprocess.run([str(installed), "-m", "fhirlake", "run", "--url", server.base_url, "--name", "site",
                               "--lake", "lake", "--full", "--no-text", "--workers", "1"],
                              capture_output=True, text=True, cwd=work, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["export", "pseudonymise", "checks", "ingest",
                                                                      "total"]
    counted = run(installed, "-m", "fhirlake", "sql", "SELECT count(*) AS n FROM gold.patient", "--lake", "lake",
                  cwd=work)
    assert counted.returncode == 0 and "3" in counted.stdout, counted.stderr
    params = StdioServerParameters(command=str(installed), args=["-m", "fhirlake", "mcp", "--lake", "lake"],
                                   cwd=str(work), env={k: v for k, v in os.environ.items()
                                                       if not k.startswith(("FHIRLAKE_", "PYTHON"))})

    async def tools() -> set[str]:
        async with Client(params) as client:
            return {tool.name for tool in (await client.list_tools()).tools}

    listed = anyio.run(tools)
    assert {"count_cohort", "run_aggregate_sql", "list_views"} <= listed
