"""fhirlake: an analytics lakehouse on FHIR Bulk Data.

Export (``fhirlake.bulk``) → pseudonymise (``fhirlake.pseudonymize``) → flatten through
SQL-on-FHIR v2 ViewDefinitions (``fhirlake.sof``) → serve with DuckDB.
"""

from __future__ import annotations

from fhirlake.errors import ConfigurationError, FhirlakeError, InputDataError

__all__ = ["ConfigurationError", "FhirlakeError", "InputDataError", "__version__"]

__version__ = "0.1.0"
