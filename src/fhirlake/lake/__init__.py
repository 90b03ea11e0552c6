"""The lakehouse: silver and gold Delta tables, incremental merge, snapshots, a DuckDB catalog.

Under one lake root (a folder, ``./.fhirlake`` by default, or an object-store URI)::

    silver/<Type>/            Delta, one row per resource (newest version), partitioned by _year
    gold/<view>/              Delta, one table per ViewDefinition of sql_on_fhir_views/
    catalog.duckdb            views over the latest snapshot's Parquet files (paths relative to
                              the root: the folder can be copied, moved or mounted elsewhere)
    _fhirlake/snapshots.json  the lake log: every snapshot's table versions and export
    _fhirlake/tombstones/     Delta, the deletions seen (so an old export cannot resurrect)

>>> import fhirlake
>>> lake = fhirlake.connect(read_only=False)                       # doctest: +SKIP
>>> lake.ingest("exports/2025-07-01", source="hospital-a")         # doctest: +SKIP
>>> lake.sql("SELECT count(*) FROM gold.patient")                  # doctest: +SKIP
>>> old = fhirlake.connect(as_of="2025-07-01")                     # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhirlake._lazy import lazy_attribute

if TYPE_CHECKING:
    from fhirlake.lake._catalog import reader_settings
    from fhirlake.lake._ingest import (
        BuildReport,
        CompactCounts,
        IngestReport,
        OptimizeReport,
        TypeCounts,
        ViewCounts,
    )
    from fhirlake.lake._lake import Lake, LakeStatus, SourceStatus, TableDescription, connect
    from fhirlake.lake._log import Snapshot
    from fhirlake.lake._vacuum import VacuumReport
    from fhirlake.lake.errors import (
        ExportFolderError,
        LakeBusyError,
        LakeError,
        LakeNotFoundError,
        RawInputError,
        ReadOnlyLakeError,
        SnapshotNotFoundError,
        UnknownTableError,
    )

_EXPORTS = {
    "reader_settings": "fhirlake.lake._catalog",
    "BuildReport": "fhirlake.lake._ingest",
    "CompactCounts": "fhirlake.lake._ingest",
    "IngestReport": "fhirlake.lake._ingest",
    "OptimizeReport": "fhirlake.lake._ingest",
    "TypeCounts": "fhirlake.lake._ingest",
    "ViewCounts": "fhirlake.lake._ingest",
    "Lake": "fhirlake.lake._lake",
    "LakeStatus": "fhirlake.lake._lake",
    "SourceStatus": "fhirlake.lake._lake",
    "TableDescription": "fhirlake.lake._lake",
    "connect": "fhirlake.lake._lake",
    "Snapshot": "fhirlake.lake._log",
    "VacuumReport": "fhirlake.lake._vacuum",
    "ExportFolderError": "fhirlake.lake.errors",
    "LakeBusyError": "fhirlake.lake.errors",
    "LakeError": "fhirlake.lake.errors",
    "LakeNotFoundError": "fhirlake.lake.errors",
    "RawInputError": "fhirlake.lake.errors",
    "ReadOnlyLakeError": "fhirlake.lake.errors",
    "SnapshotNotFoundError": "fhirlake.lake.errors",
    "UnknownTableError": "fhirlake.lake.errors",
}


def __getattr__(name: str) -> object:
    return lazy_attribute(__name__, _EXPORTS, name)


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "BuildReport",
    "CompactCounts",
    "ExportFolderError",
    "IngestReport",
    "Lake",
    "LakeBusyError",
    "LakeError",
    "LakeNotFoundError",
    "LakeStatus",
    "OptimizeReport",
    "RawInputError",
    "ReadOnlyLakeError",
    "Snapshot",
    "SnapshotNotFoundError",
    "SourceStatus",
    "TableDescription",
    "TypeCounts",
    "UnknownTableError",
    "VacuumReport",
    "ViewCounts",
    "connect",
    "reader_settings",
]
