"""Errors of the lakehouse (``fhirlake.lake``)::

    FhirlakeError
    └── LakeError                     anything the lake refuses or cannot do
        ├── LakeNotFoundError         no lake (or no catalog yet) at the given root
        ├── SnapshotNotFoundError     ``as_of`` names no snapshot, export or time of this lake
        ├── ReadOnlyLakeError         a write on a lake opened read-only
        ├── LakeBusyError             another process is writing the lake
        ├── ExportFolderError         an export folder or its manifest cannot be used
        ├── RawInputError             a batch not pseudonymised, without allow_raw
        └── UnknownTableError         a table name the catalog does not have

Lower-level errors (deltalake, DuckDB, file systems) are mapped at the boundary with
``raise ... from exc``; bad NDJSON lines are :class:`fhirlake.errors.InputDataError`.
"""

from __future__ import annotations

from fhirlake.errors import FhirlakeError

__all__ = [
    "ExportFolderError",
    "LakeBusyError",
    "LakeError",
    "LakeNotFoundError",
    "RawInputError",
    "ReadOnlyLakeError",
    "SnapshotNotFoundError",
    "UnknownTableError",
]


class LakeError(FhirlakeError):
    """Root of the lake's errors."""


class LakeNotFoundError(LakeError):
    """There is no lake at the given root, or it has no catalog yet (nothing ingested)."""


class SnapshotNotFoundError(LakeError):
    """``as_of`` matches no snapshot id, export id or time of the lake."""


class ReadOnlyLakeError(LakeError):
    """A write (ingest, build) was asked of a lake opened read-only."""


class LakeBusyError(LakeError):
    """Another live process holds the lake's write lock."""


class ExportFolderError(LakeError):
    """An export folder is missing, empty, or its manifest or deleted-resources file is invalid."""


class UnknownTableError(LakeError):
    """The catalog has no table of that name."""


class RawInputError(LakeError):
    """A batch that was not pseudonymised, given without ``allow_raw`` (``--allow-raw``)."""
