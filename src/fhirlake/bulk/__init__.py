"""fhirlake.bulk: a FHIR Bulk Data ($export) client that finishes every export that can finish.

It kicks off system, Patient or Group exports (GET, or POST with ``Parameters``), polls with
``Retry-After`` and backoff, saves the manifest before any download, streams files to disk in
parallel (gzip, atomic rename, line counts checked), retries what is transient, says clearly
what is not, resumes after a crash, and signs in with SMART Backend Services.

Quick start::

    from pathlib import Path
    from fhirlake.bulk import ExportRequest, export

    result = export(source="demo", request=ExportRequest(base_url="http://127.0.0.1:8410/fhir"),
                    lake=Path(".fhirlake"))
    print(result.resources, result.directory)

Layers: :mod:`._protocol` (pure: requests, headers, decisions), :class:`BulkClient` and
:class:`AsyncBulkClient` (thin I/O shells, one protocol step per call), :class:`Exporter`
(a whole resumable export into ``<lake>/bronze/<source>/<export id>/``).
"""

from __future__ import annotations

from fhirlake.bulk._auth import BearerTokenAuth, SmartBackendAuth
from fhirlake.bulk._client import AsyncBulkClient, BulkClient
from fhirlake.bulk._config import Source, SourceAuth, load_sources
from fhirlake.bulk._events import (
    BytesReceived,
    Event,
    ExportAbandoned,
    FileDone,
    JobDeleted,
    KickedOff,
    ManifestSaved,
    Polling,
    Retrying,
)
from fhirlake.bulk._exceptions import (
    AuthError,
    BulkError,
    BulkNetworkError,
    BulkProtocolError,
    BulkTimeoutError,
    CountMismatchError,
    DownloadError,
    ExportExpiredError,
    ExportFailedError,
    ExportStalledError,
    KickoffError,
    ResumeConflictError,
    SourceConfigError,
)
from fhirlake.bulk._export import Exporter, ExportOptions, ExportResult, export
from fhirlake.bulk._keys import SigningKey
from fhirlake.bulk._layout import ExportState, FileRecord, WatermarkStore, list_exports, read_export
from fhirlake.bulk._models import (
    CompletedExport,
    DownloadResult,
    ExportJob,
    ExportLevel,
    ExportRequest,
    Manifest,
    ManifestFile,
    OutcomeIssue,
    RetryPolicy,
)

__all__ = [
    "AsyncBulkClient",
    "AuthError",
    "BearerTokenAuth",
    "BulkClient",
    "BulkError",
    "BulkNetworkError",
    "BulkProtocolError",
    "BulkTimeoutError",
    "BytesReceived",
    "CompletedExport",
    "CountMismatchError",
    "DownloadError",
    "DownloadResult",
    "Event",
    "ExportAbandoned",
    "ExportExpiredError",
    "ExportFailedError",
    "ExportJob",
    "ExportLevel",
    "ExportOptions",
    "ExportRequest",
    "ExportResult",
    "ExportStalledError",
    "ExportState",
    "Exporter",
    "FileDone",
    "FileRecord",
    "JobDeleted",
    "KickedOff",
    "KickoffError",
    "Manifest",
    "ManifestFile",
    "ManifestSaved",
    "OutcomeIssue",
    "Polling",
    "ResumeConflictError",
    "RetryPolicy",
    "Retrying",
    "SigningKey",
    "SmartBackendAuth",
    "Source",
    "SourceAuth",
    "SourceConfigError",
    "WatermarkStore",
    "export",
    "list_exports",
    "load_sources",
    "read_export",
]
