"""The columns of each gold view, read from the ViewDefinition library, to check a policy's names."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fhirlake.sof import compile_view, load_view
from fhirlake.sof.library import view_files

__all__ = ["library_catalog"]


def library_catalog(folder: Path | None = None) -> Mapping[str, frozenset[str]]:
    """view name → its output column names, for every view in the library."""
    return {path.stem: frozenset(c.name for c in compile_view(load_view(path)).columns) for path in view_files(folder)}
