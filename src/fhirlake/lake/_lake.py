"""The notebook API: ``lake = fhirlake.connect()``, then SQL, Arrow, polars, and the lake's state."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from fhirlake.batch import Batch
from fhirlake.lake._build import Engine
from fhirlake.lake._catalog import (
    catalog_connection,
    catalog_is_current,
    catalog_tables,
    open_catalog,
    populate,
)
from fhirlake.lake._delta import DeltaFolder
from fhirlake.lake._duck import in_utc, quote, run
from fhirlake.lake._ingest import BuildReport, IngestReport, LakeWriter, OptimizeReport
from fhirlake.lake._log import Snapshot, SnapshotLog
from fhirlake.lake._storage import Storage
from fhirlake.lake._vacuum import VacuumReport, vacuum
from fhirlake.lake.errors import LakeError, LakeNotFoundError, ReadOnlyLakeError, UnknownTableError

__all__ = ["Lake", "LakeStatus", "SourceStatus", "TableDescription", "connect"]

_SEARCH_PATH = "gold,silver,fhirlake,main"


def connect(
    lake: str | Path | None = None, *, as_of: int | str | datetime | None = None, read_only: bool = True,
    views: str | Path | None = None,
) -> Lake:
    """Open a lake: ``lake`` is a folder or URI.

    With no ``lake``, the lake is ``$FHIRLAKE_LAKE``; else ``./.fhirlake`` if it exists; else the
    nearest ``.fhirlake`` folder in a parent of the working directory, like git finding its
    repository (so a notebook whose working directory is ``notebooks/`` opens the project's
    lake); else, read-only, the nearest demo lake (``.fhirlake-demo``, made by ``fhirlake
    demo``); else ``./.fhirlake``, where a writable connection creates a new lake.

    ``as_of`` (a snapshot id, an export id, or an ISO time) opens the lake as it was then, for
    reproducible research. ``read_only=False`` allows :meth:`Lake.ingest` and :meth:`Lake.build`
    (and opens a lake that has no data yet). ``views`` is the ViewDefinition folder used by writes.

    >>> lake = connect()                                            # doctest: +SKIP
    >>> lake.sql("SELECT gender, count(*) FROM gold.patient GROUP BY ALL")  # doctest: +SKIP
    """
    storage = Storage.open(lake, reading=read_only)
    if as_of is not None and not read_only:
        raise LakeError("as_of opens a past snapshot, which is read-only; drop read_only=False")
    return Lake(storage, as_of=as_of, read_only=read_only, views=Path(views) if views is not None else None)


@dataclass(frozen=True)
class TableDescription:
    """A table of the catalog: what it holds, its columns (name, type, description), its size."""

    name: str
    description: str
    columns: pl.DataFrame
    rows: int
    version: int

    def __str__(self) -> str:
        lines = [f"{self.name} ({self.rows:,} rows, version {self.version}): {self.description}"]
        lines += [f"  {n:<28} {t:<26} {d or ''}" for n, t, d in self.columns.iter_rows()]
        return "\n".join(lines)


@dataclass(frozen=True)
class SourceStatus:
    """A source's last export and its watermark (the latest transactionTime ingested)."""

    source: str
    last_export: str | None
    last_snapshot: int
    watermark: datetime | None
    raw: bool = False  # some export of the source was ingested without pseudonymisation (allow_raw)


@dataclass(frozen=True)
class LakeStatus:
    """``fhirlake lake status``: the snapshot, every table (rows, version, files), every source."""

    root: str
    snapshot: Snapshot | None
    tables: pl.DataFrame
    sources: tuple[SourceStatus, ...]

    def lines(self) -> list[str]:
        if self.snapshot is None:
            return [f"{self.root}: empty lake (nothing ingested yet)"]
        head = self.snapshot
        out = [f"{self.root}: snapshot {head.id} ({head.kind}, {head.time:%Y-%m-%d %H:%M:%S} UTC)"]
        out += [f"  {name:<40} {rows:>12,} rows  v{version:<5} {files} files"
                for name, rows, version, files in self.tables.select("name", "rows", "version", "files").iter_rows()]
        for s in self.sources:
            mark = s.watermark.isoformat() if s.watermark else "none (no transactionTime)"
            out.append(f"  source {s.source}: last export {s.last_export!r} (snapshot {s.last_snapshot}), watermark {mark}"
                       + ("; RAW DATA: ingested without pseudonymisation (--allow-raw)" if s.raw else ""))
        return out


class Lake:
    """An open lake: a DuckDB catalog of one snapshot, and (unless read-only) the writer."""

    def __init__(self, storage: Storage, *, as_of: int | str | datetime | None, read_only: bool, views: Path | None) -> None:
        self.storage = storage
        self.read_only = read_only
        self.views = views
        self.log = SnapshotLog(storage)
        self.snapshot: Snapshot | None
        self._con: duckdb.DuckDBPyConnection
        self._open(as_of)

    # ------------------------------------------------------------------------------- queries

    def sql(self, query: str) -> pl.DataFrame:
        """Run SQL on the catalog; the result as a polars DataFrame."""
        return _frame(self.arrow(query))

    def arrow(self, query: str) -> pa.Table:
        """Run SQL on the catalog; the result as a pyarrow Table."""
        try:
            return self._con.sql(query).to_arrow_table()
        except duckdb.Error as exc:
            raise LakeError(str(exc).splitlines()[0]) from exc

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection to the catalog (read-only), for what the helpers do not cover."""
        return self._con

    def tables(self) -> pl.DataFrame:
        """Every table: name (``gold.patient``), layer, rows, version, files, description."""
        return self.sql("SELECT name, layer, rows, version, files, description FROM fhirlake.tables ORDER BY layer, name")

    def describe(self, name: str) -> TableDescription:
        """A table's description and columns (with types and descriptions)."""
        schema, table = self._resolve(name)
        columns = self._con.sql(
            "SELECT column_name AS column, data_type AS type, comment AS description FROM duckdb_columns() "
            "WHERE schema_name = ? AND lower(table_name) = lower(?) ORDER BY column_index", params=[schema, table]).to_arrow_table()
        info = run(self._con, "SELECT t.description, t.rows, t.version FROM fhirlake.tables t WHERE lower(t.name) = lower(?)",
                   [f"{schema}.{table}"])[0]
        return TableDescription(f"{schema}.{table}", str(info[0]), _frame(columns), int(str(info[1])), int(str(info[2])))

    def table(self, name: str) -> pl.LazyFrame:
        """A table's stored columns as a polars LazyFrame over its Parquet files (no derived columns)."""
        schema, table = self._resolve(name)
        qualified = f"{schema}.{table}"
        files = [str(r[0]) for r in run(self._con,
            "SELECT file FROM fhirlake.files WHERE lower(name) = lower(?) ORDER BY file", [qualified])]
        shown = [str(r[0]) for r in run(self._con,
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND lower(table_name) = lower(?) ORDER BY column_index",
            [schema, table])]
        if not files:
            return _frame(self.arrow(f"SELECT * FROM {quote(schema)}.{quote(table)} LIMIT 0")).lazy()
        frame = pl.scan_parquet([self._located(f) for f in files], hive_partitioning=False)
        return frame.select([c for c in shown if c in frame.collect_schema().names()])

    def _located(self, file: str) -> str:
        """A catalog file path (relative to the lake root) as a path or URI polars can read."""
        return file if "://" in file or file.startswith("/") else self.storage.uri(file)

    def _resolve(self, name: str) -> tuple[str, str]:
        """``gold.patient``, ``silver.Observation``, or a bare name (gold first, then silver)."""
        schema, _, table = name.rpartition(".")
        candidates = [schema] if schema else ["gold", "silver"]
        for candidate in candidates:
            found = run(self._con, "SELECT view_name FROM duckdb_views() WHERE schema_name = ? AND lower(view_name) = lower(?)",
                        [candidate, table])
            if found:
                return candidate, str(found[0][0])
        known = ", ".join(str(r[0]) for r in run(self._con, "SELECT name FROM fhirlake.tables ORDER BY name"))
        raise UnknownTableError(f"no table {name!r} in the lake (tables: {known or 'none'})")

    # ------------------------------------------------------------------------------- writes

    def ingest(
        self, folder: str | Path | Batch, *, source: str, export_id: str | None = None,
        deleted: Iterable[str] | None = None, allow_raw: bool = False, progress: Callable[[str], None] | None = None,
    ) -> IngestReport:
        """Merge a pseudonymised batch (:class:`fhirlake.batch.Batch`, or its folder) into the
        lake; then this Lake shows it.

        Changed resources (new, or with a later ``meta.lastUpdated``) replace their silver row
        and gold rows; ``deleted`` (``"Type/id"``) and the manifest's ``deleted[]`` remove them.
        Replaying an export changes nothing. A batch ``fhirlake pseudonymize`` did not make is
        refused (:class:`RawInputError`) unless ``allow_raw``; ``status()`` then names the source
        as holding raw data.
        """
        report = self._writer().ingest(folder, source=source, export_id=export_id, deleted=deleted,
                                       allow_raw=allow_raw, progress=progress)
        self._reopen()
        return report

    def build(
        self, views: Sequence[str] | None = None, *, force: bool = False, engine: Engine = "duckdb",
        spark: Any = None, master: str | None = None,
    ) -> BuildReport:
        """Rebuild gold tables from silver: those whose view changed, or ``views`` with ``force``.

        ``engine="spark"`` computes the rows on Spark (``spark``, a SparkSession, else one on
        ``master`` such as ``local[4]`` or ``spark://host:7077``); the tables are the same.
        """
        report = self._writer().build(only=views, force=force, engine=engine, spark=spark, master=master)
        self._reopen()
        return report

    def optimize(self, views: Sequence[str] | None = None, *, force: bool = False,
                 progress: Callable[[str], None] | None = None) -> OptimizeReport:
        """Compact gold tables (few files per partition, rows in code order): faster queries, same rows."""
        report = self._writer().optimize(only=views, force=force, progress=progress)
        self._reopen()
        return report

    def vacuum(self, *, dry_run: bool = False) -> VacuumReport:
        """Remove the files no snapshot reads (left by interrupted runs; see :mod:`._vacuum`)."""
        if self.read_only:
            raise ReadOnlyLakeError("this lake was opened read-only: use fhirlake.connect(read_only=False) to vacuum")
        return vacuum(self.storage, dry_run=dry_run)

    def status(self) -> LakeStatus:
        """Tables (rows, versions), and the last export and watermark of each source."""
        snapshots = self.log.snapshots()
        sources: dict[str, SourceStatus] = {}
        for s in snapshots:
            if s.source is None or (self.snapshot is not None and s.id > self.snapshot.id):
                continue
            before = sources.get(s.source)
            marks = [m for m in (before.watermark if before else None, s.transaction_time) if m is not None]
            raw = bool(s.summary.get("raw")) or (before is not None and before.raw)
            sources[s.source] = SourceStatus(s.source, s.export_id, s.id, max(marks) if marks else None, raw)
        tables = self.sql("SELECT name, layer, rows, version, files FROM fhirlake.tables ORDER BY layer DESC, name") \
            if self.snapshot is not None else pl.DataFrame()
        return LakeStatus(self.storage.root, self.snapshot, tables, tuple(sources.values()))

    def _writer(self) -> LakeWriter:
        if self.read_only:
            raise ReadOnlyLakeError("this lake was opened read-only: use fhirlake.connect(read_only=False) to write")
        return LakeWriter(self.storage, views=self.views)

    # ------------------------------------------------------------------------------- opening

    def _open(self, as_of: int | str | datetime | None) -> None:
        if as_of is not None:
            self.snapshot = self.log.resolve(as_of)
            self._con = _memory_catalog(self.storage, self.snapshot, self.log.snapshots())
        else:
            con = open_catalog(self.storage)
            if con is None:
                if self.read_only:
                    raise LakeNotFoundError(
                        f"no lake at {self.storage.root}: ingest an export first (fhirlake lake ingest FOLDER --source NAME)")
                con = in_utc(duckdb.connect(":memory:"))
                run(con, "CREATE SCHEMA gold; CREATE SCHEMA silver; CREATE SCHEMA fhirlake")
                self.snapshot = None
            elif not catalog_is_current(con, None) and (latest := self.log.latest()) is not None:
                # written by an older fhirlake (absolute paths, maybe of another place): rebuilt
                # in memory, so nothing is read from where the lake was before it moved
                con.close()
                self.snapshot = latest
                con = _memory_catalog(self.storage, latest, self.log.snapshots())
            else:
                rows = run(con, "SELECT snapshot_id FROM fhirlake.catalog")
                self.snapshot = self.log.resolve(int(str(rows[0][0]))) if rows else None
            self._con = con
        run(self._con, f"SET search_path = '{_SEARCH_PATH}'")

    def _reopen(self) -> None:
        self._con.close()
        self._open(None)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        at = f"snapshot {self.snapshot.id}" if self.snapshot else "empty"
        return f"<fhirlake Lake {self.storage.root} ({at}{', read-only' if self.read_only else ''})>"


def _frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _memory_catalog(storage: Storage, snapshot: Snapshot, snapshots: Sequence[Snapshot]) -> duckdb.DuckDBPyConnection:
    """The catalog of an older snapshot, built in memory from the tables at its versions."""
    tables = {}
    for name, version in snapshot.tables.items():
        table = DeltaFolder(storage, name).open(version)
        if table is None:
            raise LakeError(f"{storage.uri(name)}: version {version} of snapshot {snapshot.id} cannot be read")
        tables[name] = table
    con = catalog_connection(storage)
    populate(con, catalog_tables(storage, tables), snapshot, snapshots)
    return con
