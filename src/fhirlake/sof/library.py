"""The view library: the ViewDefinition files in ``sql_on_fhir_views/`` (one per gold table).

A view is named by its file name without ``.json``. The folder is found through the
``FHIRLAKE_VIEWS`` environment variable, else ``sql_on_fhir_views/`` in the current directory
or in the project checkout that holds this package.
"""

from __future__ import annotations

import os
from pathlib import Path

from fhirlake.errors import ConfigurationError
from fhirlake.sof.model import ViewDefinition, load_view

__all__ = ["resolve_view", "view_files", "views_folder"]

_FOLDER_NAME = "sql_on_fhir_views"


def views_folder() -> Path:
    """The folder of ViewDefinition files."""
    configured = os.environ.get("FHIRLAKE_VIEWS")
    if configured:
        return Path(configured)
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        if (base / _FOLDER_NAME).is_dir():
            return base / _FOLDER_NAME
    raise ConfigurationError(f"no {_FOLDER_NAME}/ folder here; set FHIRLAKE_VIEWS to the folder of ViewDefinition files")


def view_files(folder: Path | None = None) -> list[Path]:
    """Every ViewDefinition file in the library, sorted by name."""
    return sorted((folder or views_folder()).glob("*.json"))


def resolve_view(name_or_path: str) -> tuple[Path, ViewDefinition]:
    """A view given as a file path or as a library name (``patient``)."""
    path = Path(name_or_path)
    if not path.exists() and path.suffix != ".json":
        path = views_folder() / f"{name_or_path}.json"
        if not path.exists():
            known = ", ".join(p.stem for p in view_files()) or "none"
            raise ConfigurationError(f"no view {name_or_path!r} (library views: {known})")
    return path, load_view(path)
