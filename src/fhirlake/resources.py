"""Where the declarative files fhirlake works from are found: the view library and the
anonymisation folder (policy, Presidio configuration, clinical terms, safe string elements).

They are data people edit (``sql_on_fhir_views/``, ``anonymization/`` at the top of a project)
and they ship inside the package too, so an installed wheel works anywhere. One order, for
every caller::

    1. the environment variable (FHIRLAKE_VIEWS, FHIRLAKE_ANONYMIZATION): a folder, which must exist
    2. the folder in the working directory: a project that keeps its own views or policy
    3. the folder of the checkout this package runs from (an editable install)
    4. the copy shipped in the package (fhirlake/_data/<folder>)

>>> views_folder().name in ("sql_on_fhir_views", "views")    # doctest: +SKIP
True
>>> default_policy_path().name
'policy.yaml'
"""

from __future__ import annotations

import os
from pathlib import Path

from fhirlake.errors import ConfigurationError

__all__ = ["anonymization_folder", "default_policy_path", "views_folder"]

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parents[1]  # <checkout>/src/fhirlake: the project root, when there is one


def views_folder(cwd: Path | None = None) -> Path:
    """The folder of ViewDefinition files (one per gold table)."""
    return _folder("sql_on_fhir_views", "FHIRLAKE_VIEWS", shipped="views", cwd=cwd)


def anonymization_folder(cwd: Path | None = None) -> Path:
    """The folder of the pseudonymisation policy and the files it names."""
    return _folder("anonymization", "FHIRLAKE_ANONYMIZATION", shipped="anonymization", cwd=cwd)


def default_policy_path(cwd: Path | None = None) -> Path:
    """The policy used when none is given: ``policy.yaml`` of :func:`anonymization_folder`
    (its analyzer and clinical-terms files are found beside it)."""
    return anonymization_folder(cwd) / "policy.yaml"


def _folder(name: str, variable: str, *, shipped: str, cwd: Path | None) -> Path:
    configured = os.environ.get(variable)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_dir():
            raise ConfigurationError(f"{variable}: {path} is not a folder")
        return path
    for candidate in ((cwd or Path.cwd()) / name, _CHECKOUT / name, _PACKAGE / "_data" / shipped):
        if candidate.is_dir():
            return candidate
    raise ConfigurationError(
        f"no {name}/ folder here and none shipped with fhirlake (a broken install?); set {variable}"
    )
