"""The view library: the ViewDefinition files in ``sql_on_fhir_views/`` (one per gold table).

A view is named by its file name without ``.json``. The folder is found by
:func:`fhirlake.resources.views_folder`: ``FHIRLAKE_VIEWS``, else ``sql_on_fhir_views/`` in the
working directory or in the checkout, else the library shipped in the package.
"""

from __future__ import annotations

from pathlib import Path

from fhirlake.errors import ConfigurationError
from fhirlake.resources import views_folder
from fhirlake.sof.model import ViewDefinition, load_view

__all__ = ["resolve_view", "view_files", "views_folder"]

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
