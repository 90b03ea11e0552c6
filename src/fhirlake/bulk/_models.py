"""The values the Bulk Data client works with: requests, manifests, retry policy, results.

All are frozen dataclasses with no I/O, so the protocol core and both I/O shells share them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from fhirlake.bulk._exceptions import BulkProtocolError
from fhirlake.errors import ConfigurationError

__all__ = [
    "CompletedExport",
    "DownloadResult",
    "ExportJob",
    "ExportLevel",
    "ExportRequest",
    "Manifest",
    "ManifestFile",
    "OutcomeIssue",
    "RetryPolicy",
]

_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_GROUP_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
DEFAULT_OUTPUT_FORMAT = "application/fhir+ndjson"


class ExportLevel(StrEnum):
    """Which ``$export`` endpoint to call: ``[base]/$export``, ``Patient/$export`` or ``Group/[id]/$export``."""

    SYSTEM = "system"
    PATIENT = "patient"
    GROUP = "group"


@dataclass(frozen=True, kw_only=True)
class ExportRequest:
    """What to ask a Bulk Data server for; validated on construction.

    Example::

        ExportRequest(base_url="https://fhir.example.org/r4", level=ExportLevel.GROUP,
                      group_id="diabetes", types=("Patient", "Observation"),
                      since="2024-01-01T00:00:00Z")

    ``patients`` (FHIR references such as ``Patient/123``) needs ``method="POST"`` and a
    patient or group level, as the IG allows the ``patient`` parameter only in a POST body.
    """

    base_url: str
    level: ExportLevel = ExportLevel.SYSTEM
    group_id: str | None = None
    method: Literal["GET", "POST"] = "GET"
    output_format: str | None = None
    since: str | None = None
    types: tuple[str, ...] = ()
    elements: tuple[str, ...] = ()
    type_filters: tuple[str, ...] = ()
    include_associated_data: tuple[str, ...] = ()
    patients: tuple[str, ...] = ()
    lenient: bool = False

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"base URL {self.base_url!r} must start with http:// or https://"
            )
        if self.level is ExportLevel.GROUP and not self.group_id:
            raise ConfigurationError("a group-level export needs a group id")
        if self.level is not ExportLevel.GROUP and self.group_id:
            raise ConfigurationError(
                f"a group id is only allowed for a group-level export, not {self.level}"
            )
        if self.group_id is not None and not _GROUP_ID.match(self.group_id):
            raise ConfigurationError(f"group id {self.group_id!r} is not a valid FHIR id")
        if self.method not in ("GET", "POST"):
            raise ConfigurationError(f"method must be GET or POST, not {self.method!r}")
        for name in self.types:
            if not _TYPE_NAME.match(name):
                raise ConfigurationError(f"{name!r} is not a FHIR resource type name")
        if self.since is not None and not _INSTANT.match(self.since):
            raise ConfigurationError(
                f"_since {self.since!r} is not a FHIR instant (e.g. 2024-01-31T12:00:00Z)"
            )
        if self.patients:
            if self.method != "POST":
                raise ConfigurationError("the patient parameter is only allowed with POST")
            if self.level is ExportLevel.SYSTEM:
                raise ConfigurationError(
                    "the patient parameter is not allowed on a system-level export"
                )

    @property
    def endpoint(self) -> str:
        """The absolute kick-off URL, without query parameters."""
        base = self.base_url.rstrip("/")
        if self.level is ExportLevel.PATIENT:
            return f"{base}/Patient/$export"
        if self.level is ExportLevel.GROUP:
            return f"{base}/Group/{self.group_id}/$export"
        return f"{base}/$export"

    def to_json(self) -> dict[str, Any]:
        """A plain dict for the state journal (round-trips through :meth:`from_json`)."""
        return {
            "base_url": self.base_url,
            "level": str(self.level),
            "group_id": self.group_id,
            "method": self.method,
            "output_format": self.output_format,
            "since": self.since,
            "types": list(self.types),
            "elements": list(self.elements),
            "type_filters": list(self.type_filters),
            "include_associated_data": list(self.include_associated_data),
            "patients": list(self.patients),
            "lenient": self.lenient,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExportRequest:
        """Rebuild a request saved by :meth:`to_json`."""
        kwargs: dict[str, Any] = dict(data)
        for name in ("types", "elements", "type_filters", "include_associated_data", "patients"):
            kwargs[name] = tuple(kwargs.get(name) or ())
        kwargs["level"] = ExportLevel(str(kwargs["level"]))
        return cls(**kwargs)

    def fingerprint(self) -> str:
        """A stable hash of the request, used to match an unfinished export on resume."""
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ExportJob:
    """A kicked-off export: the polling URL the server gave in ``Content-Location``."""

    status_url: str


@dataclass(frozen=True)
class ManifestFile:
    """One entry of ``output[]``, ``error[]`` or ``deleted[]``: a resource type and its file URL."""

    type: str
    url: str
    count: int | None = None


@dataclass(frozen=True)
class Manifest:
    """A completion manifest. Unknown fields are ignored, as the IG requires of clients."""

    transaction_time: str
    request: str
    requires_access_token: bool
    output: tuple[ManifestFile, ...]
    error: tuple[ManifestFile, ...] = ()
    deleted: tuple[ManifestFile, ...] = ()

    @classmethod
    def from_json(cls, data: object, *, url: str | None = None) -> Manifest:
        """Parse a decoded manifest; a missing or ill-typed required field is a BulkProtocolError."""
        where = url or "manifest"
        if not isinstance(data, dict):
            raise BulkProtocolError(f"{where}: the manifest is not a JSON object", url=url)
        transaction_time = data.get("transactionTime")
        if not isinstance(transaction_time, str) or not transaction_time:
            raise BulkProtocolError(f"{where}: the manifest has no transactionTime", url=url)
        request = data.get("request", "")
        requires = data.get("requiresAccessToken", False)
        if not isinstance(requires, bool):
            raise BulkProtocolError(f"{where}: requiresAccessToken is not a boolean", url=url)
        return cls(
            transaction_time=transaction_time,
            request=request if isinstance(request, str) else "",
            requires_access_token=requires,
            output=_files(data, "output", where, url, required=True),
            error=_files(data, "error", where, url, required=False),
            deleted=_files(data, "deleted", where, url, required=False),
        )


def _files(
    data: Mapping[str, Any], key: str, where: str, url: str | None, *, required: bool
) -> tuple[ManifestFile, ...]:
    items = data.get(key)
    if items is None:
        if required:
            raise BulkProtocolError(f"{where}: the manifest has no {key}[] array", url=url)
        return ()
    if not isinstance(items, list):
        raise BulkProtocolError(f"{where}: {key} is not an array", url=url)
    files = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BulkProtocolError(f"{where}: {key}[{index}] is not an object", url=url)
        file_url, file_type, count = item.get("url"), item.get("type"), item.get("count")
        if not isinstance(file_url, str) or not file_url.startswith(("http://", "https://")):
            raise BulkProtocolError(f"{where}: {key}[{index}].url is not an absolute URL", url=url)
        if not isinstance(file_type, str) or not file_type:
            raise BulkProtocolError(f"{where}: {key}[{index}].type is missing", url=url)
        if count is not None and (
            not isinstance(count, int) or isinstance(count, bool) or count < 0
        ):
            raise BulkProtocolError(f"{where}: {key}[{index}].count is not a count", url=url)
        files.append(ManifestFile(type=file_type, url=file_url, count=count))
    return tuple(files)


@dataclass(frozen=True)
class CompletedExport:
    """What the status endpoint returned on completion: the manifest, its raw bytes, ``Expires``."""

    manifest: Manifest
    raw: bytes
    expires: str | None = None


@dataclass(frozen=True)
class DownloadResult:
    """A file written to disk: where, how many lines (resources) and bytes, and its SHA-256."""

    path: Path
    lines: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class OutcomeIssue:
    """One ``OperationOutcome.issue``, flattened for reporting."""

    severity: str
    code: str
    text: str

    def __str__(self) -> str:
        return (
            f"{self.severity}/{self.code}: {self.text}"
            if self.text
            else f"{self.severity}/{self.code}"
        )


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How long to wait and how often to retry.

    Waits the server asks for (``Retry-After``) are honoured up to ``max_retry_after``; when the
    server gives none, waits grow as ``backoff_base * backoff_factor**n`` up to ``backoff_cap``.
    ``max_attempts`` bounds consecutive failures (5xx, network errors) of one request;
    202 and 429 answers are not failures and are bounded only by ``deadline`` (seconds for the
    whole export, ``None`` for no limit) and by ``stall_timeout``: a job whose ``X-Progress``
    has not changed for that many seconds is stalled (``None``: never).
    """

    max_attempts: int = 8
    backoff_base: float = 1.0
    backoff_factor: float = 2.0
    backoff_cap: float = 60.0
    max_retry_after: float = 3600.0
    deadline: float | None = 24 * 3600.0
    stall_timeout: float | None = 3 * 3600.0
    count_mismatch_retries: int = 1

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("max_attempts must be at least 1")
        if self.backoff_base < 0 or self.backoff_cap < 0 or self.backoff_factor < 1:
            raise ConfigurationError(
                "backoff_base and backoff_cap must be >= 0 and backoff_factor >= 1"
            )
        if self.stall_timeout is not None and self.stall_timeout <= 0:
            raise ConfigurationError("stall_timeout must be positive (None: no stall detection)")

    def backoff(self, attempt: int) -> float:
        """The wait before retry number ``attempt`` (1-based) when the server said nothing."""
        exponent = max(0, attempt - 1)
        delay: float = self.backoff_base * self.backoff_factor**exponent
        return float(min(delay, self.backoff_cap))
