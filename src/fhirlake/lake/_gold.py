"""Gold: one Delta table per ViewDefinition of ``sql_on_fhir_views/``, typed columns.

Each row carries three hidden columns after the view's own: ``_resource_key`` and ``_source``
(the silver key of the resource it came from, which gold rows are merged by) and ``_year`` (the
partition, the same as the resource's silver row). A table remembers which view built it (a
hash in every commit's metadata); when the view file changes, the table is rebuilt from silver.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable
from sqlglot import exp

from fhirlake.lake._delta import PARTITION
from fhirlake.sof.compiler import CompiledView, compile_view
from fhirlake.sof.library import view_files
from fhirlake.sof.model import ViewDefinition, load_view
from fhirlake.sof.roles import BOUNDS_KEY, ROLE_KEY
from fhirlake.sof.runner import view_query

__all__ = ["HIDDEN_COLUMNS", "GoldView", "load_gold_views"]

#: Bump when the shape of gold rows changes, so every gold table is rebuilt once.
_GOLD_FORMAT = "1"
VIEW_HASH_KEY = "fhirlake.view_sha"
HIDDEN_COLUMNS = {
    "_resource_key": "The silver key (resource id) of the resource the row comes from.",
    "_source": "The source (hospital, server) the row comes from.",
    PARTITION: "UTC year of the resource's last_updated (the partition).",
}
#: The silver columns every gold row carries, by gold column name (after the view's own).
CARRY = {"_resource_key": "resource_key", "_source": "source", PARTITION: PARTITION}
ROWS_PER_GROUP = 16384


@dataclass(frozen=True)
class GoldView:
    """A view of the library, compiled, with the hash that identifies its definition."""

    name: str
    path: Path
    view: ViewDefinition
    sha: str

    @property
    def resource(self) -> str:
        """The resource type the view runs over."""
        return self.view.resource

    @property
    def table(self) -> str:
        """The table's folder in the lake."""
        return f"gold/{self.name}"

    @cached_property
    def compiled(self) -> CompiledView:
        return compile_view(self.view)

    @property
    def description(self) -> str:
        return self.view.description or self.view.title or f"Rows of the {self.name} view."

    @property
    def sort_column(self) -> str | None:
        """The column :meth:`Lake.optimize` orders rows by: ``code``, else the first ``*_code`` column.

        Questions filter on codes (an HbA1c, a diagnosis); with rows in code order each Parquet
        row group holds a narrow range of codes, and its min/max statistics let DuckDB skip the
        row groups of other codes.
        """
        names = [c.name for c in self.view.columns]
        return "code" if "code" in names else next((n for n in names if n.endswith("_code")), None)

    @cached_property
    def query_sql(self) -> str:
        """The view over the ``changed_rows`` relation (silver-shaped rows with ``_year``), hidden columns last."""
        return view_query(self.compiled, exp.to_table("changed_rows"), carry=CARRY).sql(dialect="duckdb", copy=False)

    def with_comments(self, schema: pa.Schema) -> pa.Schema:
        """``schema`` with each column's description as its ``comment`` (Spark shows it too) and
        its declared role and bounds (:mod:`fhirlake.sof.roles`), which the catalog lists."""
        metadata: dict[str, dict[str, str]] = {name: {"comment": text} for name, text in HIDDEN_COLUMNS.items()}
        for column in self.view.columns:
            entry = {"comment": column.description} if column.description else {}
            role = column.role
            if role is not None:
                entry[ROLE_KEY] = role.role
                if role.bounds_text is not None:
                    entry[BOUNDS_KEY] = role.bounds_text
            metadata[column.name] = entry
        return pa.schema([field.with_metadata(metadata[field.name]) if metadata.get(field.name) else field
                          for field in schema])

    def built_by_this_view(self, table: DeltaTable | None) -> bool:
        """Whether the table's last commit was made with this very view definition."""
        if table is None:
            return False
        history = table.history(1)
        return bool(history) and history[0].get(VIEW_HASH_KEY) == self.sha


def load_gold_views(folder: Path | None = None) -> list[GoldView]:
    """Every view of the library (or of ``folder``), parsed and hashed, sorted by name."""
    views = []
    for path in view_files(folder):
        definition = json.loads(path.read_text(encoding="utf-8"))
        canonical = json.dumps([_GOLD_FORMAT, definition], sort_keys=True, separators=(",", ":"))
        views.append(GoldView(path.stem, path, load_view(path), hashlib.sha256(canonical.encode()).hexdigest()[:16]))
    return views
