"""What the server knows of the gold tables: views, columns, descriptions, the snapshot.

Read once from the lake's DuckDB catalog each time the reader (re)opens it. Key columns (the
patient key, every resource key: ``*_id``, ``*_ids``) are marked: they may join and be counted,
never be shown or grouped by.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from fhirlake.sof.roles import ColumnRole

__all__ = ["PATIENT_COLUMN", "ColumnInfo", "GoldCatalog", "ViewInfo", "is_key_column"]

PATIENT_COLUMN = "patient_id"
SOURCE_COLUMN = "_source"


def is_key_column(name: str) -> bool:
    """True for a patient or resource key column (never returned, never grouped by)."""
    lowered = name.lower()
    return (lowered.endswith("_id") or lowered.endswith("_ids") or lowered == "id"
            or lowered.startswith("_resource") or lowered.startswith("__fl"))


@dataclass(frozen=True)
class ColumnInfo:
    """A column of a gold view: name, DuckDB type, description, and its declared role (None
    when the view declares none: such a column cannot be used in the aggregate language)."""

    name: str
    type: str
    description: str
    role: ColumnRole | None = None

    @property
    def is_key(self) -> bool:
        return is_key_column(self.name) or (self.role is not None and self.role.role == "key")


@dataclass(frozen=True)
class ViewInfo:
    """A gold view: its name, description and columns (in order)."""

    name: str
    description: str
    columns: tuple[ColumnInfo, ...]

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def has_patient(self) -> bool:
        return self.column(PATIENT_COLUMN) is not None


@dataclass(frozen=True)
class GoldCatalog:
    """The gold views of one snapshot, and when it was taken."""

    views: Mapping[str, ViewInfo]
    snapshot_id: int | None
    reference_time: datetime | None
    built_at: datetime | None

    def view(self, name: str) -> ViewInfo | None:
        return self.views.get(name)
