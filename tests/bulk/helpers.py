"""Helpers shared by the Bulk Data tests (data writing and reading, fast retry settings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fhirlake.bulk import RetryPolicy

# Fast but real retries: tests never wait more than a few hundredths of a second per retry.
FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_cap=0.05, max_retry_after=1.0, deadline=120.0)


def write_ndjson(path: Path, resources: list[dict[str, Any]]) -> None:
    """Write resources as NDJSON, one per line."""
    path.write_text("".join(json.dumps(r) + "\n" for r in resources), encoding="utf-8")


def read_resources(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """Every resource saved under ``<export>/output``, by type."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((directory / "output").rglob("*.ndjson")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                resource = json.loads(line)
                found.setdefault(resource["resourceType"], []).append(resource)
    return found


def source_counts(folder: Path) -> dict[str, int]:
    """Lines per type in a served folder."""
    return {
        path.name.split(".")[0]: sum(
            1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
        )
        for path in folder.glob("*.ndjson")
        if path.name[0].isupper()
    }
