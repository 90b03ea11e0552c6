"""Lazy public names for a package's ``__init__``: ``from fhirlake.lake import connect`` works
as usual, but importing the package (as ``fhirlake.lake.cli`` does, for ``fhirlake lake
--help``) loads none of its heavy modules (DuckDB, pyarrow, polars, deltalake, sqlglot) until a
name is first used.

A package lists ``name -> module`` and defines::

    def __getattr__(name: str) -> object:
        return lazy_attribute(__name__, _EXPORTS, name)

and imports the same names under ``TYPE_CHECKING`` so type checkers see them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping

__all__ = ["lazy_attribute"]


def lazy_attribute(package: str, exports: Mapping[str, str], name: str) -> object:
    """The public ``name`` of ``package``, imported from its module on first use and then kept."""
    module = exports.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    setattr(sys.modules[package], name, value)
    return value
