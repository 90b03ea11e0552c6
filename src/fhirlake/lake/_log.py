"""The lake log: one record per snapshot, in ``<lake>/_fhirlake/snapshots.json``.

A snapshot is the state of the whole lake after an ingest or a build: the Delta version of every
table, the export it came from, and the views the gold tables were built with. The file is
rewritten whole (temp file + rename), so it is always a complete, valid log.

>>> log.resolve("2025-07-01T00:00:00Z").tables["gold/patient"]   # doctest: +SKIP
3
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from fhirlake.lake._export import parse_time
from fhirlake.lake._storage import Storage
from fhirlake.lake.errors import LakeError, SnapshotNotFoundError

__all__ = ["Snapshot", "SnapshotLog"]

_FILE = ("_fhirlake", "snapshots.json")
_FORMAT = 1


@dataclass(frozen=True)
class Snapshot:
    """One snapshot: ``tables`` maps each table's folder (``gold/patient``) to its Delta version."""

    id: int
    time: datetime
    kind: str
    source: str | None
    export_id: str | None
    transaction_time: datetime | None
    tables: Mapping[str, int]
    views: Mapping[str, str] = field(default_factory=dict)
    summary: Mapping[str, Any] = field(default_factory=dict)

    @property
    def reference_time(self) -> datetime:
        """The time the data describes: the export's transactionTime, else when it was recorded."""
        return self.transaction_time or self.time

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["time"] = self.time.isoformat()
        data["transaction_time"] = self.transaction_time.isoformat() if self.transaction_time else None
        data["tables"], data["views"], data["summary"] = dict(self.tables), dict(self.views), dict(self.summary)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        transaction = data.get("transaction_time")
        return cls(
            id=int(data["id"]), time=parse_time(data["time"]), kind=str(data["kind"]),
            source=data.get("source"), export_id=data.get("export_id"),
            transaction_time=parse_time(transaction) if transaction else None,
            tables={str(k): int(v) for k, v in data.get("tables", {}).items()},
            views=dict(data.get("views", {})), summary=dict(data.get("summary", {})),
        )


class SnapshotLog:
    """Read and append the snapshot records of a lake."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def snapshots(self) -> list[Snapshot]:
        raw = self.storage.read_bytes(*_FILE)
        if raw is None:
            return []
        try:
            data = orjson.loads(raw)
            return [Snapshot.from_json(record) for record in data["snapshots"]]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise LakeError(f"{self.storage.uri(*_FILE)}: the lake log is damaged ({exc})") from exc

    def latest(self) -> Snapshot | None:
        snapshots = self.snapshots()
        return snapshots[-1] if snapshots else None

    def append(
        self, *, kind: str, tables: Mapping[str, int], views: Mapping[str, str], source: str | None = None,
        export_id: str | None = None, transaction_time: datetime | None = None, summary: Mapping[str, Any] | None = None,
    ) -> Snapshot:
        """Record a new snapshot (the next id) and return it."""
        snapshots = self.snapshots()
        snapshot = Snapshot(
            id=(snapshots[-1].id + 1) if snapshots else 1, time=datetime.now(UTC), kind=kind, source=source,
            export_id=export_id, transaction_time=transaction_time, tables=dict(tables), views=dict(views),
            summary=dict(summary or {}),
        )
        records = [s.to_json() for s in [*snapshots, snapshot]]
        self.storage.write_atomic(orjson.dumps({"format": _FORMAT, "snapshots": records}, option=orjson.OPT_INDENT_2), *_FILE)
        return snapshot

    def find_export(self, source: str, export_id: str) -> Snapshot | None:
        """The snapshot that recorded ``export_id`` of ``source``, if it was ingested."""
        return next((s for s in self.snapshots() if s.source == source and s.export_id == export_id), None)

    def resolve(self, as_of: int | str | datetime) -> Snapshot:
        """The snapshot named by an id, an export id, or a time (the last one recorded by then)."""
        snapshots = self.snapshots()
        if not snapshots:
            raise SnapshotNotFoundError(f"{self.storage.root} has no snapshots yet")
        if isinstance(as_of, int):
            found = next((s for s in snapshots if s.id == as_of), None)
            if found is None:
                raise SnapshotNotFoundError(f"no snapshot {as_of} (the lake has 1 to {snapshots[-1].id})")
            return found
        if isinstance(as_of, str):
            by_export = [s for s in snapshots if s.export_id == as_of]
            if by_export:
                return by_export[-1]
            if as_of.isdigit():
                return self.resolve(int(as_of))
            try:
                as_of = parse_time(as_of)
            except ValueError:
                raise SnapshotNotFoundError(f"{as_of!r} is no snapshot id, export id or ISO time of this lake") from None
        moment = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        earlier = [s for s in snapshots if s.time <= moment]
        if not earlier:
            raise SnapshotNotFoundError(f"the lake has no snapshot before {moment.isoformat()} (the first is {snapshots[0].time.isoformat()})")
        return earlier[-1]
