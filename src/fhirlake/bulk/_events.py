"""Progress events the client emits, for progress bars and logs.

A caller passes ``on_event`` (any callable taking one event); the CLI turns them into rich
progress bars. Events carry no secrets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fhirlake.bulk._models import Manifest

__all__ = [
    "BytesReceived",
    "Event",
    "EventHandler",
    "ExportAbandoned",
    "FileDone",
    "JobDeleted",
    "KickedOff",
    "ManifestSaved",
    "Polling",
    "Retrying",
]


@dataclass(frozen=True)
class KickedOff:
    """The server accepted the kick-off (``resumed``: an earlier run's job is being continued)."""

    status_url: str
    export_id: str
    resumed: bool = False


@dataclass(frozen=True)
class Polling:
    """The export is still running; the next poll is in ``delay`` seconds."""

    progress: str | None
    delay: float


@dataclass(frozen=True)
class Retrying:
    """A request failed (or was throttled) and will be tried again in ``delay`` seconds."""

    what: str
    reason: str
    delay: float
    attempt: int


@dataclass(frozen=True)
class ManifestSaved:
    """The manifest is on disk; ``to_download`` files remain, ``already_saved`` are kept."""

    manifest: Manifest
    to_download: int
    already_saved: int
    expected_resources: int | None


@dataclass(frozen=True)
class BytesReceived:
    """``delta`` decoded bytes of file ``name`` arrived (negative when a failed attempt is undone)."""

    name: str
    delta: int


@dataclass(frozen=True)
class FileDone:
    """A file is saved under its final name (``reused``: it was already there from a prior run)."""

    name: str
    kind: str
    type: str
    lines: int
    bytes: int
    reused: bool = False


@dataclass(frozen=True)
class JobDeleted:
    """The job was DELETEd on the server (``ok``: the server accepted it)."""

    status_url: str
    ok: bool
    reason: str


@dataclass(frozen=True)
class ExportAbandoned:
    """An export was given up (expired on the server, or replaced with ``new``)."""

    export_id: str
    reason: str


Event = (
    KickedOff
    | Polling
    | Retrying
    | ManifestSaved
    | BytesReceived
    | FileDone
    | JobDeleted
    | ExportAbandoned
)
EventHandler = Callable[[Event], None]


def ignore_event(event: Event) -> None:
    """The default handler: do nothing."""
