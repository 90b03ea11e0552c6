"""fhirlake: an analytics lakehouse on FHIR Bulk Data.

Export (``fhirlake.bulk``) → pseudonymise (``fhirlake.pseudonymize``) → flatten through
SQL-on-FHIR v2 ViewDefinitions (``fhirlake.sof``) → serve with DuckDB.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fhirlake.errors import ConfigurationError, FhirlakeError, InputDataError

if TYPE_CHECKING:
    from fhirlake.lake import Lake

__all__ = ["ConfigurationError", "FhirlakeError", "InputDataError", "__version__", "connect"]

__version__ = "0.1.0"


def connect(
    lake: str | Path | None = None, *, as_of: int | str | datetime | None = None, read_only: bool = True,
    views: str | Path | None = None,
) -> Lake:
    """Open a lake (see :func:`fhirlake.lake.connect`); imported on first use, so ``import fhirlake`` stays light."""
    from fhirlake.lake import connect as connect_lake

    return connect_lake(lake, as_of=as_of, read_only=read_only, views=views)
