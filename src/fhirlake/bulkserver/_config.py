"""Configuration of the embedded Bulk Data server: what to serve, how, and which faults to inject."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fhirlake.errors import ConfigurationError

__all__ = ["BulkServerConfig", "ClientRegistration", "Faults", "ServerAuth"]


@dataclass(frozen=True, kw_only=True)
class Faults:
    """Misbehaviour to inject, the kinds real servers show; all off by default.

    Counts are per job (status) or per file of a job (downloads): ``file_500=2`` answers the
    first two requests of every file with a transient 500, the third succeeds.
    """

    kickoff_429: int = 0
    """The first N kick-offs (server-wide) are answered 429 with Retry-After."""
    status_429: int = 0
    """The first N polls of each job are answered 429."""
    status_500: int = 0
    """The next N polls of each job are answered 500 with a ``transient`` OperationOutcome."""
    file_500: int = 0
    """The first N requests of each file are answered 500."""
    file_429: int = 0
    """The next N requests of each file are answered 429."""
    file_drop: int = 0
    """The next N requests of each file send part of the body, then drop the connection."""
    gone_jobs: int = 0
    """The files of the first N jobs answer 410 Gone (an expired export)."""
    error_entries: int = 0
    """Each manifest lists an ``error[]`` file with this many OperationOutcomes."""
    stall_jobs: int = 0
    """The first N jobs stop progressing: their status stays 202 at the same X-Progress forever."""
    aux_count_offset: int = 0
    """The ``count`` of each ``error[]`` and ``deleted[]`` entry is its lines plus this (some
    servers count the resources an error or a deletion concerns, not the lines of the file)."""
    kickoff_status: int = 0
    """Every kick-off is answered with this HTTP status (e.g. 413) and an HTML page, as a proxy
    in front of the FHIR server would (0: off)."""
    file_status: int = 0
    """Every file request is answered with this HTTP status (e.g. 403) and a plain-text body."""
    slow_seconds: float = 0.0
    """Every kick-off, poll and download waits this long before answering."""
    bytes_per_second: int | None = None
    """Throttle each file body to this rate."""

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value is not None and value < 0:
                raise ConfigurationError(f"fault {name} must not be negative (got {value})")


@dataclass(frozen=True, kw_only=True)
class ClientRegistration:
    """A SMART Backend Services client known to the server: its id and its public JWKS.

    ``jwks_url`` is the URL registered for the JWKS; an assertion whose header has a ``jku``
    must name exactly it (the keys themselves are always taken from ``jwks``).
    """

    client_id: str
    jwks: Mapping[str, Any]
    jwks_url: str | None = None


@dataclass(frozen=True, kw_only=True)
class ServerAuth:
    """SMART Backend Services on the embedded server.

    ``well_known=False`` hides ``.well-known/smart-configuration`` so that clients must fall back
    to the CapabilityStatement ``oauth-uris`` extension.
    """

    clients: tuple[ClientRegistration, ...]
    token_ttl: int = 300
    well_known: bool = True

    def __post_init__(self) -> None:
        if not self.clients:
            raise ConfigurationError("server auth needs at least one registered client")
        if self.token_ttl < 1:
            raise ConfigurationError("token_ttl must be at least 1 second")


@dataclass(frozen=True, kw_only=True)
class BulkServerConfig:
    """What the embedded server serves and how.

    ``data_dir`` holds ``<Type>.ndjson`` or ``<Type>.ndjson.gz`` files (also ``<Type>.<part>.ndjson``)
    and optionally ``deleted.ndjson`` (lines ``{"type": "Patient", "id": "…", "deleted": "<instant>"}``).
    A resource without ``meta.lastUpdated`` counts as updated when its file was last modified.
    ``job_seconds`` is how long each export pretends to run; ``retry_after`` the Retry-After sent
    while it runs, written as ``retry_after_style`` (delay seconds, an HTTP-date, an epoch time in seconds,
    or one in milliseconds as some servers send).
    """

    data_dir: Path
    base_path: str = "/fhir"
    job_seconds: float = 0.0
    retry_after: int = 1
    retry_after_style: Literal["seconds", "http-date", "epoch", "epoch-ms"] = "seconds"
    lines_per_file: int | None = None
    gzip: bool = True
    expires_seconds: int = 3600
    auth: ServerAuth | None = None
    faults: Faults = field(default_factory=Faults)
    work_dir: Path | None = None

    def __post_init__(self) -> None:
        if not self.data_dir.is_dir():
            raise ConfigurationError(f"{self.data_dir}: not a folder of NDJSON files")
        if not self.base_path.startswith("/") or (
            self.base_path.endswith("/") and self.base_path != "/"
        ):
            raise ConfigurationError(
                f"base path {self.base_path!r} must start with '/' and not end with one"
            )
        if self.lines_per_file is not None and self.lines_per_file < 1:
            raise ConfigurationError("lines_per_file must be at least 1")
        if self.retry_after < 0 or self.job_seconds < 0:
            raise ConfigurationError("retry_after and job_seconds must not be negative")
