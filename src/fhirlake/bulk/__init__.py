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

from typing import TYPE_CHECKING

from fhirlake._lazy import lazy_attribute

if TYPE_CHECKING:
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
    from fhirlake.bulk._layout import (
        ExportState,
        FileRecord,
        WatermarkStore,
        list_exports,
        read_export,
    )
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

_EXPORTS = {
    "BearerTokenAuth": "fhirlake.bulk._auth",
    "SmartBackendAuth": "fhirlake.bulk._auth",
    "AsyncBulkClient": "fhirlake.bulk._client",
    "BulkClient": "fhirlake.bulk._client",
    "Source": "fhirlake.bulk._config",
    "SourceAuth": "fhirlake.bulk._config",
    "load_sources": "fhirlake.bulk._config",
    "BytesReceived": "fhirlake.bulk._events",
    "Event": "fhirlake.bulk._events",
    "ExportAbandoned": "fhirlake.bulk._events",
    "FileDone": "fhirlake.bulk._events",
    "JobDeleted": "fhirlake.bulk._events",
    "KickedOff": "fhirlake.bulk._events",
    "ManifestSaved": "fhirlake.bulk._events",
    "Polling": "fhirlake.bulk._events",
    "Retrying": "fhirlake.bulk._events",
    "AuthError": "fhirlake.bulk._exceptions",
    "BulkError": "fhirlake.bulk._exceptions",
    "BulkNetworkError": "fhirlake.bulk._exceptions",
    "BulkProtocolError": "fhirlake.bulk._exceptions",
    "BulkTimeoutError": "fhirlake.bulk._exceptions",
    "CountMismatchError": "fhirlake.bulk._exceptions",
    "DownloadError": "fhirlake.bulk._exceptions",
    "ExportExpiredError": "fhirlake.bulk._exceptions",
    "ExportFailedError": "fhirlake.bulk._exceptions",
    "ExportStalledError": "fhirlake.bulk._exceptions",
    "KickoffError": "fhirlake.bulk._exceptions",
    "ResumeConflictError": "fhirlake.bulk._exceptions",
    "SourceConfigError": "fhirlake.bulk._exceptions",
    "Exporter": "fhirlake.bulk._export",
    "ExportOptions": "fhirlake.bulk._export",
    "ExportResult": "fhirlake.bulk._export",
    "export": "fhirlake.bulk._export",
    "SigningKey": "fhirlake.bulk._keys",
    "ExportState": "fhirlake.bulk._layout",
    "FileRecord": "fhirlake.bulk._layout",
    "WatermarkStore": "fhirlake.bulk._layout",
    "list_exports": "fhirlake.bulk._layout",
    "read_export": "fhirlake.bulk._layout",
    "CompletedExport": "fhirlake.bulk._models",
    "DownloadResult": "fhirlake.bulk._models",
    "ExportJob": "fhirlake.bulk._models",
    "ExportLevel": "fhirlake.bulk._models",
    "ExportRequest": "fhirlake.bulk._models",
    "Manifest": "fhirlake.bulk._models",
    "ManifestFile": "fhirlake.bulk._models",
    "OutcomeIssue": "fhirlake.bulk._models",
    "RetryPolicy": "fhirlake.bulk._models",
}


def __getattr__(name: str) -> object:
    return lazy_attribute(__name__, _EXPORTS, name)


def __dir__() -> list[str]:
    return sorted(__all__)


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
