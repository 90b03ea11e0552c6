"""Write the lake: ingest an export (incremental merge) or rebuild gold tables from silver.

An ingest runs, under the lake's write lock:

1. stage the export's NDJSON (read once) and plan the changes against silver (keys only);
2. commit each gold table that the changes touch: its files that hold a changed or deleted key
   are rewritten without those keys' rows, and the views' rows of the changed resources are
   added, in one Delta version per table;
3. commit each silver table the same way (the staged files become silver files as they are
   when every staged row is a new version), then the deletions' tombstones;
4. record the snapshot in the lake log, then write the catalog.

A crash anywhere leaves every table at a committed version and the catalog at the previous
snapshot. Replaying the export redoes exactly what is unfinished: silver has not moved for
the types not yet committed, so the plan is the same, and gold merges replace rows by key.
A gold table committed by a run that never recorded its snapshot, for another export than the
one being ingested, is rebuilt from silver first.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
from deltalake import DeltaTable

from fhirlake.batch import Batch
from fhirlake.lake._build import (
    EXPORT_KEY,
    SNAPSHOT_KEY,
    SOURCE_KEY,
    BuildReport,
    Engine,
    GoldRebuild,
    ViewCounts,
    gold_rebuilder,
    refresh_gold,
    removed_views,
)
from fhirlake.lake._catalog import catalog_is_current, catalog_tables, open_catalog, write_catalog
from fhirlake.lake._delta import DataFile, DeltaFolder
from fhirlake.lake._duck import (
    connect_worker,
    delta_safe,
    files_view,
    run,
    without_progress_bar,
)
from fhirlake.lake._export import ExportFolder, admit, bundles_as_ndjson, read_export
from fhirlake.lake._gold import (
    HIDDEN_COLUMNS,
    ROWS_PER_GROUP,
    VIEW_HASH_KEY,
    GoldView,
    load_gold_views,
)
from fhirlake.lake._log import Snapshot, SnapshotLog
from fhirlake.lake._optimize import CompactCounts, OptimizeReport, compact_gold
from fhirlake.lake._silver import (
    PLAN_TABLES,
    SILVER_COLUMNS,
    SILVER_DESCRIPTIONS,
    TOMBSTONE_COLUMNS,
    Plan,
    Staged,
    plan_type,
    register_deleted,
    stage_type,
    staged_view,
)
from fhirlake.lake._silver import (
    ROWS_PER_GROUP as SILVER_ROWS_PER_GROUP,
)
from fhirlake.lake._storage import Storage
from fhirlake.lake.errors import LakeError

__all__ = ["BuildReport", "CompactCounts", "IngestReport", "LakeWriter", "OptimizeReport", "TypeCounts", "ViewCounts"]

TOMBSTONES = "_fhirlake/tombstones"
KILL_ENV = "FHIRLAKE_TEST_KILL_AT"

SILVER_SCHEMA = pa.schema([
    pa.field(name, pa.timestamp("us", tz="UTC") if duck == "TIMESTAMPTZ" else pa.int32() if duck == "INTEGER" else pa.string(),
             metadata={"comment": SILVER_DESCRIPTIONS.get(name, HIDDEN_COLUMNS.get(name, ""))})
    for name, duck in SILVER_COLUMNS.items()
])
TOMBSTONE_SCHEMA = pa.schema([
    pa.field(name, pa.timestamp("us", tz="UTC") if duck == "TIMESTAMPTZ" else pa.string()) for name, duck in TOMBSTONE_COLUMNS.items()
])

# Merge steps read temp views: staged_rows (a type's staged files), candidate_rows (the files
# that may hold a removed key), rewrite_rows (the files to rewrite), and changed_rows (the rows
# of the changed resources, silver-shaped with _year), which the gold views run over.
_REMOVAL_GOLD = """
CREATE OR REPLACE TEMP TABLE removal AS
SELECT resource_key, old_year AS year FROM changes WHERE resource_type = $type AND existed
UNION SELECT resource_key, new_year FROM changes WHERE resource_type = $type
UNION SELECT resource_key, old_year FROM deletes WHERE resource_type = $type
"""
_REMOVAL_SILVER = """
CREATE OR REPLACE TEMP TABLE removal AS
SELECT resource_key, old_year AS year FROM changes WHERE resource_type = $type AND existed
UNION SELECT resource_key, old_year FROM deletes WHERE resource_type = $type
"""
_HOLDERS_GOLD = """
SELECT DISTINCT filename FROM candidate_rows
WHERE _source = $source AND _resource_key IN (SELECT resource_key FROM removal)
"""
_HOLDERS_SILVER = """
SELECT DISTINCT filename FROM candidate_rows
WHERE source = $source AND resource_key IN (SELECT resource_key FROM removal)
"""
_KEEP_GOLD = """
SELECT g.* EXCLUDE (filename), CAST(y.year AS INTEGER) AS _year
FROM rewrite_rows AS g JOIN file_years AS y ON y.file = g.filename
WHERE NOT (g._source = $source AND g._resource_key IN (SELECT resource_key FROM removal))
"""
_KEEP_SILVER = """
SELECT s.* EXCLUDE (filename), CAST(year(s.last_updated) AS INTEGER) AS _year FROM rewrite_rows AS s
WHERE NOT (s.source = $source AND s.resource_key IN (SELECT resource_key FROM removal))
"""
_CHANGED_ROWS = """
CREATE OR REPLACE TEMP VIEW changed_rows AS
SELECT s.* EXCLUDE (filename, file_row_number), c.new_year AS _year
FROM staged_rows AS s
JOIN staged_files AS f ON f.file = s.filename
JOIN changes AS c ON c.file_index = f.file_index AND c.line = s.file_row_number
"""
_ALL_STAGED_ROWS = """
CREATE OR REPLACE TEMP VIEW changed_rows AS
SELECT s.* EXCLUDE (filename, file_row_number), CAST(year(s.last_updated) AS INTEGER) AS _year FROM staged_rows AS s
"""
_NEW_TOMBSTONES = """
SELECT CAST($source AS VARCHAR) AS source, d.resource_type, d.resource_key, CAST($deleted_at AS TIMESTAMPTZ) AS deleted_at,
       CAST($export_id AS VARCHAR) AS export_id
FROM deleted_now AS d
WHERE NOT EXISTS (SELECT 1 FROM tombstone_rows AS t WHERE t.source = $source AND t.resource_type = d.resource_type
                  AND t.resource_key = d.resource_key AND t.deleted_at >= CAST($deleted_at AS TIMESTAMPTZ))
"""


T = TypeVar("T")
R = TypeVar("R")


def _workers() -> int:
    """Threads for the per-table steps: ``$FHIRLAKE_WORKERS``, default 3 (the steps wait on I/O too)."""
    return max(1, int(os.environ.get("FHIRLAKE_WORKERS", "3") or 3))


def _checkpoint(step: str) -> None:
    """Crash tests' hook: when ``$FHIRLAKE_TEST_KILL_AT`` names this step, the process dies here."""
    if os.environ.get(KILL_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class TypeCounts:
    """What an export did to one resource type's silver table (in resources)."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0


@dataclass(frozen=True)
class IngestReport:
    """The outcome of :meth:`Lake.ingest`. ``snapshot_id`` is None when nothing was recorded."""

    source: str
    export_id: str
    snapshot_id: int | None
    already_ingested: bool
    types: Mapping[str, TypeCounts] = field(default_factory=dict)
    gold: Mapping[str, ViewCounts] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return any(c.inserted or c.updated or c.deleted for c in self.types.values()) or any(
            v.rows_added or v.rows_removed or v.rebuilt for v in self.gold.values())

    def lines(self) -> list[str]:
        """The report as text lines (what the CLI prints)."""
        if self.already_ingested:
            return [f"export {self.export_id!r} of {self.source!r} is already in snapshot {self.snapshot_id}: nothing to do"]
        out = [f"snapshot {self.snapshot_id}: export {self.export_id!r} of {self.source!r} in {self.seconds:.1f} s"]
        out += [f"  silver.{t}: +{c.inserted} new, {c.updated} updated, {c.deleted} deleted, {c.unchanged} unchanged"
                for t, c in sorted(self.types.items())]
        out += [f"  gold.{n}: {'rebuilt, ' if v.rebuilt else ''}-{v.rows_removed} +{v.rows_added} rows"
                for n, v in sorted(self.gold.items()) if v.rows_added or v.rows_removed or v.rebuilt]
        return out


class LakeWriter:
    """Everything that changes a lake. One writer at a time (the lake's lock)."""

    def __init__(self, storage: Storage, *, views: Path | None = None) -> None:
        self.storage = storage
        self.views_folder = views
        self.log = SnapshotLog(storage)

    # ----------------------------------------------------------------------------------- ingest

    def ingest(
        self, folder: str | Path | Batch, *, source: str, export_id: str | None = None,
        deleted: Iterable[str] | None = None, allow_raw: bool = False, progress: Callable[[str], None] | None = None,
    ) -> IngestReport:
        """Merge one batch into the lake; see the module docstring.

        A batch that is not, byte for byte, what ``fhirlake pseudonymize`` wrote (its privacy
        report lists each file's SHA-256) is refused unless ``allow_raw``; when allowed, it is
        held to its manifest's counts, and the snapshot records it (``lake status`` says so).
        A batch a blocking check failed on is refused either way. ``progress`` is told each
        step as it ends (a status line on a terminal).
        """
        started = time.perf_counter()
        export = read_export(folder, export_id=export_id, deleted=deleted)
        raw = admit(export, allow_raw=allow_raw) is not None
        with bundles_as_ndjson(export) as readable:
            return self._merge_export(readable, source, raw=raw, tell=progress or (lambda step: None),
                                      started=started)

    def _merge_export(self, export: ExportFolder, source: str, *, raw: bool, tell: Callable[[str], None],
                      started: float) -> IngestReport:
        with self.storage.lock():
            self.storage.clean_work()
            recorded = self.log.find_export(source, export.export_id)
            if recorded is not None:
                self._ensure_catalog()
                return IngestReport(source, export.export_id, recorded.id, already_ingested=True)
            views = load_gold_views(self.views_folder)
            with self._merge(export, source) as merge:
                gold = merge.refresh_gold(views)
                plans = merge.plan()
                _checkpoint("planned")
                tell(f"planned: {sum(p.touches for p in plans.values())} types changed")
                # Every gold table first, then silver: until silver moves, a replay plans the same changes.
                touched = [v for v in views if v.resource in plans and plans[v.resource].touches]

                def merge_view(view: GoldView) -> tuple[str, ViewCounts]:
                    counts = merge.merge_gold(view, plans[view.resource], gold.get(view.name))
                    _checkpoint(f"gold:{view.name}")
                    tell(f"gold.{view.name} merged")
                    return view.name, counts

                gold |= dict(merge.parallel(merge_view, touched))

                def merge_type(plan: Plan) -> None:
                    merge.merge_silver(plan)
                    _checkpoint(f"silver:{plan.resource_type}")
                    tell(f"silver.{plan.resource_type} merged")

                merge.parallel(merge_type, [p for p in plans.values() if p.touches])
                merge.add_tombstones()
                _checkpoint("tombstones")
            types = {t: TypeCounts(p.inserted, p.updated, p.unchanged, p.deleted) for t, p in plans.items()}
            summary = {"types": {t: vars(c) for t, c in types.items()},
                       "gold": {n: vars(c) for n, c in gold.items()}, "raw": raw}
            snapshot = self._record(views, merge.tables, kind="ingest", source=source, export=export, summary=summary)
        return IngestReport(source, export.export_id, snapshot.id, False, types, gold, time.perf_counter() - started)

    # ------------------------------------------------------------------------------------ build

    def build(self, *, only: Sequence[str] | None = None, force: bool = False, engine: Engine = "duckdb",
              spark: Any = None, master: str | None = None) -> BuildReport:
        """Rebuild from silver the gold tables whose view changed (all of ``only`` with ``force``),
        on ``engine`` (``spark``: on ``spark``, a SparkSession, else one on ``master``)."""
        started = time.perf_counter()
        with self.storage.lock():
            self.storage.clean_work()
            views, chosen = self._views(only)
            with self._merge() as merge:
                rebuild = gold_rebuilder(merge, engine, spark=spark, master=master)
                rebuilt = merge.refresh_gold(chosen, force=force, rebuild=rebuild)
            latest = self.log.latest()
            dropped = removed_views(latest, views)
            if rebuilt or dropped or latest is None or open_catalog(self.storage) is None:
                snapshot: Snapshot | None = self._record(
                    views, merge.tables, kind="build", summary={"rebuilt": sorted(rebuilt), "dropped": list(dropped)})
            else:
                snapshot = latest
        return BuildReport(snapshot.id if snapshot else None, rebuilt, time.perf_counter() - started, dropped, engine)

    # --------------------------------------------------------------------------------- optimize

    def optimize(self, *, only: Sequence[str] | None = None, force: bool = False,
                 progress: Callable[[str], None] | None = None) -> OptimizeReport:
        """Compact gold tables: each partition's files rewritten as one (or a few) files, rows in code order.

        Ingests add files per export and partition; a query pays a cost per file, and rows in
        arrival order make every row group span every code. A partition is rewritten when it has
        several files, or, once per table, when the table was never optimised (``force``: all of
        them). Rows are only moved: the counts are checked, and the rewrite is one Delta version
        per table and one snapshot; earlier snapshots still read their own files. ``progress``
        is told each table as it is done.
        """
        tell = progress or (lambda step: None)
        started = time.perf_counter()
        with self.storage.lock():
            self.storage.clean_work()
            views, chosen = self._views(only)
            compacted: dict[str, CompactCounts] = {}
            with self._merge() as merge:  # one table at a time: each sort has the memory limit to itself
                for view in chosen:
                    counts = compact_gold(merge, view, force=force)
                    if counts is not None:
                        compacted[view.name] = counts
                    tell(f"gold.{view.name} " + ("compacted" if counts is not None else "already compact"))
            latest = self.log.latest()
            # the data's reference time stays: derived columns (age, ...) must not move when rows are only moved
            snapshot = self._record(views, merge.tables, kind="optimize", summary={"compacted": {n: vars(c) for n, c in compacted.items()}},
                                    reference=latest.reference_time if latest else None) if compacted else None
        return OptimizeReport(snapshot.id if snapshot else None, compacted, time.perf_counter() - started)

    # ------------------------------------------------------------------------------ bookkeeping

    @contextmanager
    def _merge(self, export: ExportFolder | None = None, source: str | None = None) -> Iterator[_Merge]:
        """One run's merge steps, over a scratch folder and a DuckDB of their own, closed at the end."""
        with self.storage.work_dir() as work, closing(connect_worker(work / "duckdb")) as con:
            merge = _Merge(self, con, work, export, source)
            try:
                yield merge
            finally:
                merge.close()

    def _views(self, only: Sequence[str] | None) -> tuple[list[GoldView], list[GoldView]]:
        """Every view of the library, and those of ``only`` (all when None); an unknown name is an error."""
        views = load_gold_views(self.views_folder)
        unknown = sorted(set(only or ()) - {v.name for v in views})
        if unknown:
            raise LakeError(f"no view {', '.join(unknown)} in {self.views_folder or 'the view library'}")
        return views, [v for v in views if not only or v.name in only]

    def current_tables(self, views: Sequence[GoldView], opened: Mapping[str, DeltaTable | None] | None = None) -> dict[str, DeltaTable]:
        """Every table of the lake at its current version: silver, the views' gold, tombstones
        (``opened`` holds tables a run has open at their current version already)."""
        names = [f"silver/{t}" for t in self._folders("silver")] + [v.table for v in views] + [TOMBSTONES]
        tables = {}
        for name in names:
            table = opened[name] if opened and name in opened else DeltaFolder(self.storage, name).open()
            if table is not None:
                tables[name] = table
        return tables

    def _folders(self, layer: str) -> list[str]:
        selector = pafs.FileSelector(self.storage.path(layer), allow_not_found=True)
        return sorted(info.base_name for info in self.storage.fs.get_file_info(selector) if info.type == pafs.FileType.Directory)

    def _record(
        self, views: Sequence[GoldView], opened: Mapping[str, DeltaTable | None], *, kind: str, source: str | None = None,
        export: ExportFolder | None = None, summary: Mapping[str, object], reference: datetime | None = None,
    ) -> Snapshot:
        tables = self.current_tables(views, opened)
        snapshot = self.log.append(
            kind=kind, tables={name: table.version() for name, table in tables.items()},
            views={v.name: v.sha for v in views}, source=source, export_id=export.export_id if export else None,
            transaction_time=export.transaction_time if export else reference, summary=summary,
        )
        _checkpoint("snapshot")
        write_catalog(self.storage, catalog_tables(self.storage, tables), snapshot, self.log.snapshots())
        return snapshot

    def _ensure_catalog(self) -> None:
        """Write the catalog of the latest snapshot if the one on disk is older (a run died in
        between) or of an older format (absolute paths: the lake may have moved since)."""
        latest = self.log.latest()
        if latest is None:
            return
        con = open_catalog(self.storage)
        if con is not None:
            with closing(con):
                if catalog_is_current(con, latest.id):
                    return
        tables = {}
        for name, version in latest.tables.items():
            table = DeltaFolder(self.storage, name).open(version)
            if table is not None:
                tables[name] = table
        write_catalog(self.storage, catalog_tables(self.storage, tables), latest, self.log.snapshots())


class _Merge:
    """One run's merge steps, sharing its DuckDB connection, scratch folder and open tables."""

    def __init__(self, writer: LakeWriter, con: duckdb.DuckDBPyConnection, work: Path,
                 export: ExportFolder | None, source: str | None) -> None:
        self.storage = writer.storage
        self.con = con
        self.work = work
        self.export = export
        self.source = source or ""
        latest = writer.log.latest()
        self.recorded = latest.id if latest else 0
        self.metadata = {SNAPSHOT_KEY: str(self.recorded + 1)}
        if export is not None:
            self.metadata |= {EXPORT_KEY: export.export_id, SOURCE_KEY: self.source}
        self.plans: dict[str, Plan] = {}
        self.tables: dict[str, DeltaTable | None] = {}
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []

    def table(self, name: str) -> DeltaTable | None:
        """The current version of a table (opened once per run, followed through its commits)."""
        if name not in self.tables:
            self.tables[name] = DeltaFolder(self.storage, name).open()
        return self.tables[name]

    def commit(self, folder: DeltaFolder, schema: pa.Schema | None, **arguments: Any) -> None:
        self.tables[folder.name] = folder.commit(self.table(folder.name), schema, **arguments)

    def _uris(self, name: str) -> list[str]:
        folder = DeltaFolder(self.storage, name)
        return [folder.file_uri(f) for f in folder.files(self.table(name))]

    # -- planning

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's connection to the run's database (temp views are per connection)."""
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self.con.cursor()
            run(without_progress_bar(cursor), "SET TimeZone = 'UTC'")
            self._local.cursor = cursor
            self._cursors.append(cursor)
        return cursor

    def parallel(self, step: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``step`` over ``items`` on a few threads (DuckDB and Parquet writing release the GIL)."""
        if len(items) <= 1:
            return [step(item) for item in items]
        with ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="fhirlake-lake") as pool:
            return list(pool.map(step, items))

    def close(self) -> None:
        for cursor in self._cursors:
            cursor.close()

    def plan(self) -> dict[str, Plan]:
        """Stage every type of the export and compute its changes."""
        export = self.export
        assert export is not None
        run(self.con, PLAN_TABLES)
        register_deleted(self.con, export.deleted)
        fallback = export.transaction_time or datetime.now(UTC)
        tombstones = self._uris(TOMBSTONES)

        def stage(resource_type: str) -> Staged:
            return stage_type(
                self.cursor(), export.files.get(resource_type, ()), resource_type, folder=self.work / "stage" / resource_type,
                source=self.source, export_id=export.export_id, fallback=fallback,
            )

        # One type at a time: staging parses JSON on every core already, and holds a row group per partition.
        staged = {resource_type: stage(resource_type) for resource_type in export.types}
        firsts = dict(zip(export.types, itertools.accumulate((len(staged[t].files) for t in export.types), initial=0), strict=False))

        def plan(resource_type: str) -> Plan:
            return plan_type(
                self.cursor(), staged[resource_type], resource_type, source=self.source,
                silver=self._uris(f"silver/{resource_type}"), tombstones=tombstones,
                before=export.transaction_time, first_file=firsts[resource_type],
            )

        self.plans = dict(zip(export.types, self.parallel(plan, export.types), strict=True))
        return self.plans

    # -- gold

    def refresh_gold(self, views: Sequence[GoldView], *, force: bool = False,
                     rebuild: GoldRebuild | None = None) -> dict[str, ViewCounts]:
        """Rebuild the gold tables that need it from silver (:func:`._build.refresh_gold`)."""
        return refresh_gold(self, views, force=force, rebuild=rebuild)

    def merge_gold(self, view: GoldView, plan: Plan, earlier: ViewCounts | None) -> ViewCounts:
        """Replace the rows of the changed and deleted resources of ``plan`` in one version."""
        folder = DeltaFolder(self.storage, view.table)
        run(self.cursor(), _REMOVAL_GOLD, {"type": plan.resource_type})
        rewrite = self._holders(folder, _HOLDERS_GOLD)
        kept: list[DataFile] = []
        if rewrite:
            years = pa.table({"file": [folder.file_uri(f) for f in rewrite], "year": [f.partition for f in rewrite]})
            self.cursor().register("file_years", years)
            files_view(self.cursor(), "rewrite_rows", [folder.file_uri(f) for f in rewrite], {}, filename=True)
            kept = self.write(folder, _KEEP_GOLD, ROWS_PER_GROUP, {"source": self.source})
            self.cursor().unregister("file_years")
        added: list[DataFile] = []
        if plan.changed:
            self._changed_rows(plan)
            added = self.write(folder, view.query_sql, ROWS_PER_GROUP)
        base = earlier or ViewCounts()
        if not rewrite and not added:
            return base
        metadata = {**self.metadata, VIEW_HASH_KEY: view.sha, "fhirlake.operation": "merge"}
        self.commit(folder, None, add=[*kept, *added], remove=rewrite, metadata=metadata)
        removed = sum(f.rows for f in rewrite) - sum(f.rows for f in kept)
        return ViewCounts(base.rows_removed + removed, base.rows_added + sum(f.rows for f in added), len(rewrite), base.rebuilt)

    def _changed_rows(self, plan: Plan) -> None:
        """The ``changed_rows`` temp view: the staged rows of the plan's changed resources."""
        staged_view(self.cursor(), plan.staged)
        run(self.cursor(), _ALL_STAGED_ROWS if plan.all_staged_rows_changed else _CHANGED_ROWS)

    # -- silver

    def merge_silver(self, plan: Plan) -> None:
        """Remove the updated and deleted resources' old rows and add the new versions, in one version."""
        folder = DeltaFolder(self.storage, f"silver/{plan.resource_type}")
        run(self.cursor(), _REMOVAL_SILVER, {"type": plan.resource_type})
        rewrite = self._holders(folder, _HOLDERS_SILVER)
        kept: list[DataFile] = []
        if rewrite:
            files_view(self.cursor(), "rewrite_rows", [folder.file_uri(f) for f in rewrite], {}, filename=True)
            kept = self.write(folder, _KEEP_SILVER, SILVER_ROWS_PER_GROUP, {"source": self.source})
        added = self._new_silver_files(folder, plan) if plan.changed else []
        if rewrite or added:
            self.commit(folder, SILVER_SCHEMA, add=[*kept, *added], remove=rewrite,
                         metadata={**self.metadata, "fhirlake.operation": "merge"})

    def _new_silver_files(self, folder: DeltaFolder, plan: Plan) -> list[DataFile]:
        if plan.all_staged_rows_changed:  # the staged files are exactly the new rows: move them in
            for file in plan.staged.files:
                self.storage.put(plan.staged.folder / file.path, *folder.name.split("/"), *file.path.split("/"))
            return list(plan.staged.files)
        self._changed_rows(plan)
        return self.write(folder, "SELECT * FROM changed_rows", SILVER_ROWS_PER_GROUP)

    def add_tombstones(self) -> None:
        """Record the export's deletions, so an older export replayed cannot bring them back."""
        assert self.export is not None
        if not self.export.deleted:
            return
        folder = DeltaFolder(self.storage, TOMBSTONES)
        files_view(self.cursor(), "tombstone_rows", self._uris(TOMBSTONES), TOMBSTONE_COLUMNS)
        deleted_at = (self.export.transaction_time or datetime.now(UTC)).isoformat()
        parameters = {"source": self.source, "deleted_at": deleted_at, "export_id": self.export.export_id}
        added = self.write(folder, _NEW_TOMBSTONES, 65536, parameters)
        if added:
            self.commit(folder, TOMBSTONE_SCHEMA, add=added, metadata={**self.metadata, "fhirlake.operation": "delete"})

    # -- shared

    def _holders(self, folder: DeltaFolder, template: str) -> list[DataFile]:
        """The files of the removal keys' partitions that hold at least one of those keys."""
        years = {int(str(r[0])) for r in run(self.cursor(), "SELECT DISTINCT year FROM removal WHERE year IS NOT NULL")}
        candidates = {folder.file_uri(f): f for f in folder.files(self.table(folder.name)) if f.partition in years}
        if not candidates:
            return []
        files_view(self.cursor(), "candidate_rows", list(candidates), {}, filename=True)
        found = {str(r[0]) for r in run(self.cursor(), template, {"source": self.source})}
        return [f for uri, f in candidates.items() if uri in found]

    def write(self, folder: DeltaFolder, query: str, rows_per_group: int, params: Mapping[str, object] | None = None) -> list[DataFile]:
        reader = delta_safe(self.cursor(), query, params).to_arrow_reader(rows_per_group)
        return folder.write(reader, rows_per_group=rows_per_group)
