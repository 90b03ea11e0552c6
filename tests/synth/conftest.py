"""Shared runs for the synth tests: each is generated once per test session (a few seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from fhirlake.synth import RunReport, generate


@dataclass(repr=False)
class Run:
    """A generated folder, with its resources loaded by type.

    Its repr shows counts only, so a failing test never prints patient data.
    """

    report: RunReport
    path: Path
    resources: dict[str, list[dict[str, Any]]]
    manifest: dict[str, Any]
    truth: dict[str, Any]

    def __repr__(self) -> str:
        return f"Run({self.path.name}, {self.report.counts})"

    def all(self) -> Iterator[dict[str, Any]]:
        for items in self.resources.values():
            yield from items


def load(path: Path) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any], dict[str, Any]]:
    manifest = orjson.loads((path / "manifest.json").read_bytes())
    resources = {
        entry["type"]: [orjson.loads(line) for line in (path / entry["url"]).read_bytes().splitlines()]
        for entry in manifest["output"]
    }
    return resources, manifest, orjson.loads((path / "truth.json").read_bytes())


def _run(path: Path, **kwargs: Any) -> Run:
    report = generate(path, **kwargs)
    resources, manifest, truth = load(path)
    return Run(report, path, resources, manifest, truth)


@pytest.fixture(scope="session")
def en_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("en"), patients=160, seed=11, workers=2)


@pytest.fixture(scope="session")
def fr_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("fr"), patients=60, seed=12, locale="fr", workers=2)
