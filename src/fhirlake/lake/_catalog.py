"""The DuckDB catalog: every gold and silver table of one snapshot as a view over its Parquet files.

``<lake>/catalog.duckdb`` describes the latest snapshot: schema ``gold`` (one view per
ViewDefinition, hidden merge columns left out, derived columns added), schema ``silver`` (one
view per resource type), and schema ``fhirlake`` (``snapshots``, ``tables``, ``files``, ``columns`` (each gold column's declared role),
``catalog``). Table and column comments come from the tables' Delta metadata, which holds the
views' descriptions. The views read each table's current files with ``read_parquet``, so
opening the catalog reads no data. The file is written beside its target and renamed over it:
a reader never sees half a catalog. ``as_of`` builds the same catalog in memory for an older
snapshot.

The catalog names files relative to the lake root (``gold/patient/part-0.parquet``), and every
connection that reads it first runs :func:`reader_settings`, which points DuckDB's
``file_search_path`` at the root it was opened from. So a lake is a folder you can copy, move
or mount elsewhere: the copy's catalog reads the copy's files, never the original's. A catalog
written before (absolute paths, ``format`` < 2) is rebuilt by the next write, and read-only
connections build it in memory meanwhile.

Derived columns are what a ViewDefinition cannot say in FHIRPath; they are computed by the
catalog view when the view has the columns they need:

* ``gold.encounter.length_of_stay_days``: ``period_end - period_start`` in days (fractional);
  NULL while the encounter is open.
* ``gold.patient.age``: completed years at death, else at the snapshot's reference time (the
  export's transactionTime); from the years alone when a date is partial; NULL for a patient
  recorded as deceased without a date.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import sqlglot
from deltalake import DeltaTable
from sqlglot import exp

from fhirlake.lake._delta import PARTITION, DeltaFolder
from fhirlake.lake._duck import in_utc, parquet, quote, render, run
from fhirlake.lake._log import Snapshot
from fhirlake.lake._silver import SILVER_DESCRIPTIONS
from fhirlake.lake._storage import Storage
from fhirlake.lake.errors import LakeError
from fhirlake.sof.roles import BOUNDS_KEY, ROLE_KEY, ColumnRole, parse_role

__all__ = [
    "CATALOG_FILE", "CATALOG_FORMAT", "CatalogTable", "Derived", "catalog_connection", "catalog_is_current",
    "catalog_tables", "open_catalog", "populate", "reader_settings", "write_catalog",
]

CATALOG_FILE = "catalog.duckdb"
CATALOG_FORMAT = 2  # 2: file paths relative to the lake root (1: absolute)
_NOT_SHOWN = {"_resource_key", PARTITION}
SOURCE = "_source"


@dataclass(frozen=True)
class Derived:
    """A column of a gold view computed in SQL from other columns of the same view."""

    table: str
    name: str
    needs: tuple[str, ...]
    template: str
    description: str
    role: ColumnRole

    def expression(self, reference: datetime) -> exp.Expr:
        select = sqlglot.parse_one(render(f"SELECT {self.template}", reference=reference.date().isoformat()), dialect="duckdb")
        value: exp.Expr = select.expressions[0]
        return value


DERIVED = (
    Derived(
        "encounter", "length_of_stay_days", ("period_start", "period_end"),
        "epoch(TRY_CAST(period_end AS TIMESTAMPTZ) - TRY_CAST(period_start AS TIMESTAMPTZ)) / 86400.0",
        "Length of stay in days (period end minus period start, fractional); NULL while the encounter is open. Derived.",
        ColumnRole("measure", (0.0, 365.0)),
    ),
    Derived(
        "patient", "age", ("birth_date", "deceased", "deceased_datetime"),
        """CASE
          WHEN birth_date IS NULL OR (deceased AND deceased_datetime IS NULL) THEN NULL
          WHEN length(birth_date) >= 10 AND length(COALESCE(deceased_datetime, :reference)) >= 10 THEN
            CAST(date_part('year', age(TRY_CAST(left(COALESCE(deceased_datetime, :reference), 10) AS TIMESTAMP),
                                       TRY_CAST(left(birth_date, 10) AS TIMESTAMP))) AS INTEGER)
          ELSE TRY_CAST(left(COALESCE(deceased_datetime, :reference), 4) AS INTEGER) - TRY_CAST(left(birth_date, 4) AS INTEGER)
        END""",
        "Age in completed years at death, else at the snapshot's reference time (the export's transactionTime); "
        "from the years alone when a date is partial. Derived.",
        ColumnRole("measure", (0.0, 120.0)),
    ),
)


@dataclass(frozen=True)
class CatalogTable:
    """One table as the catalog shows it."""

    schema: str
    name: str
    folder: str
    version: int
    files: tuple[str, ...]
    rows: int
    description: str
    arrow_schema: pa.Schema
    comments: Mapping[str, str]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def columns(self) -> list[str]:
        """The stored columns the view shows."""
        return [n for n in self.arrow_schema.names if n not in _NOT_SHOWN]

    def roles(self) -> dict[str, ColumnRole]:
        """The declared role of each shown column that has one (stored ones from their Delta
        metadata, derived ones from their definition); ``_source`` is a dimension."""
        roles = {SOURCE: ColumnRole("dimension")} if SOURCE in self.columns else {}
        for field in self.arrow_schema:
            metadata = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                        for k, v in (field.metadata or {}).items()}
            role = parse_role(metadata.get(ROLE_KEY), metadata.get(BOUNDS_KEY), pointer=f"{self.qualified}.{field.name}")
            if role is not None and field.name in self.columns:
                roles[field.name] = role
        return {**roles, **{d.name: d.role for d in self.derived()}}

    def derived(self) -> list[Derived]:
        present = set(self.columns)
        return [d for d in DERIVED if self.schema == "gold" and d.table == self.name and set(d.needs) <= present]


def catalog_tables(storage: Storage, tables: Mapping[str, DeltaTable]) -> list[CatalogTable]:
    """Describe the silver and gold tables of ``tables`` (folder → table at a version)."""
    described = []
    for folder, table in sorted(tables.items()):
        schema, _, name = folder.partition("/")
        if schema not in ("silver", "gold"):
            continue
        files = DeltaFolder.files(table)
        location = DeltaFolder(storage, folder)
        arrow_schema = pa.schema(table.schema().to_arrow())
        comments = {f.name: f.metadata["comment"] for f in table.schema().fields if f.metadata.get("comment")}
        if schema == "silver":
            comments = {**SILVER_DESCRIPTIONS, **comments}
            description = f"One row per {name} resource (its newest version), with its JSON. Merged by (source, resource_key)."
        else:
            description = table.metadata().description or f"Rows of the {name} view."
        described.append(CatalogTable(
            schema, name, folder, table.version(), tuple(location.relative_path(f) for f in files),
            sum(f.rows for f in files), description, arrow_schema, comments,
        ))
    return described


def populate(
    con: duckdb.DuckDBPyConnection, tables: Sequence[CatalogTable], snapshot: Snapshot, snapshots: Sequence[Snapshot]
) -> None:
    """Create the catalog's schemas, views, comments and ``fhirlake`` tables in ``con``."""
    statements = [f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}" for schema in ("gold", "silver", "fhirlake")]
    for table in tables:
        statements += _view_statements(con, table, snapshot.reference_time)
    run(con, "BEGIN TRANSACTION")  # one transaction: hundreds of statements, one commit
    run(con, ";\n".join(statements))
    _create_meta(con, tables, snapshot, snapshots)
    run(con, "COMMIT")


def _view_statements(con: duckdb.DuckDBPyConnection, table: CatalogTable, reference: datetime) -> list[str]:
    """CREATE VIEW and COMMENT statements of one table."""
    shown = table.columns
    if table.files:
        source = parquet(table.files, {}, hive_partitioning=False)
    else:
        types = dict(zip(table.arrow_schema.names, con.from_arrow(table.arrow_schema.empty_table()).types, strict=True))
        source = parquet([], {name: str(types[name]) for name in shown})
    derived = table.derived()
    select = exp.select(
        *[exp.column(name, quoted=True) for name in shown],
        *[exp.alias_(d.expression(reference), d.name, quoted=True) for d in derived],
    ).from_(exp.alias_(source, "t", table=True) if isinstance(source, exp.Table) else source.as_("t"))
    qualified = f"{quote(table.schema)}.{quote(table.name)}"
    statements = [f"CREATE OR REPLACE VIEW {qualified} AS {select.sql(dialect='duckdb', copy=False)}",
                  f"COMMENT ON VIEW {qualified} IS {_literal(table.description)}"]
    comments = {**table.comments, **{d.name: d.description for d in derived}}
    statements += [f"COMMENT ON COLUMN {qualified}.{quote(name)} IS {_literal(comments[name])}"
                   for name in [*shown, *(d.name for d in derived)] if comments.get(name)]
    return statements


def _create_meta(
    con: duckdb.DuckDBPyConnection, tables: Sequence[CatalogTable], snapshot: Snapshot, snapshots: Sequence[Snapshot]
) -> None:
    known = [s for s in snapshots if s.id <= snapshot.id]
    meta = {
        "snapshots": pa.table({
            "id": pa.array([s.id for s in known], pa.int64()),
            "time": pa.array([s.time for s in known], pa.timestamp("us", tz="UTC")),
            "kind": pa.array([s.kind for s in known], pa.string()),
            "source": pa.array([s.source for s in known], pa.string()),
            "export_id": pa.array([s.export_id for s in known], pa.string()),
            "transaction_time": pa.array([s.transaction_time for s in known], pa.timestamp("us", tz="UTC")),
        }),
        "tables": pa.table({
            "name": pa.array([t.qualified for t in tables], pa.string()),
            "layer": pa.array([t.schema for t in tables], pa.string()),
            "folder": pa.array([t.folder for t in tables], pa.string()),
            "version": pa.array([t.version for t in tables], pa.int64()),
            "rows": pa.array([t.rows for t in tables], pa.int64()),
            "files": pa.array([len(t.files) for t in tables], pa.int64()),
            "description": pa.array([t.description for t in tables], pa.string()),
        }),
        "files": pa.table({
            "name": pa.array([t.qualified for t in tables for _ in t.files], pa.string()),
            "file": pa.array([f for t in tables for f in t.files], pa.string()),
        }),
        "columns": pa.table({
            "name": pa.array([t.qualified for t in tables for _ in t.roles()], pa.string()),
            "column": pa.array([c for t in tables for c in t.roles()], pa.string()),
            "role": pa.array([r.role for t in tables for r in t.roles().values()], pa.string()),
            "bounds": pa.array([r.bounds_text for t in tables for r in t.roles().values()], pa.string()),
        }),
        "catalog": pa.table({
            "format": pa.array([CATALOG_FORMAT], pa.int64()),
            "snapshot_id": pa.array([snapshot.id], pa.int64()),
            "reference_time": pa.array([snapshot.reference_time], pa.timestamp("us", tz="UTC")),
            "built_at": pa.array([datetime.now(UTC)], pa.timestamp("us", tz="UTC")),
        }),
    }
    for name, data in meta.items():
        con.register("__fhirlake_meta", data)
        run(con, f"CREATE OR REPLACE TABLE fhirlake.{quote(name)} AS SELECT * FROM __fhirlake_meta")
        con.unregister("__fhirlake_meta")


def _literal(text: str) -> str:
    return exp.Literal.string(text).sql(dialect="duckdb")


def reader_settings(root: str | Path, *, folders: Sequence[str] = ()) -> list[str]:
    """The SET statements a connection runs before it reads the catalog of the lake at ``root``.

    ``file_search_path`` makes the catalog's relative file paths resolve under ``root`` (a
    folder or an object-store URI), wherever the lake has been copied, moved or mounted. With
    ``folders`` (e.g. ``("gold",)``), ``allowed_directories`` lists each folder both as given
    and under ``root``: when external access is disabled, DuckDB checks a relative path as
    written and again once resolved, so both forms must be allowed (the resolved one keeps the
    reader inside the lake). Run them before ``enable_external_access = false`` and
    ``lock_configuration = true``.

    >>> reader_settings("/data/lake", folders=("gold",))  # doctest: +NORMALIZE_WHITESPACE
    ["SET file_search_path = '/data/lake'",
     "SET allowed_directories = ['gold/', '/data/lake/gold/']"]
    """
    text = str(root).rstrip("/\\") or "/"
    if "," in text:  # file_search_path is a comma-separated list
        raise LakeError(f"{text}: a lake root may not contain a comma (DuckDB's file_search_path splits on it)")
    statements = [f"SET file_search_path = {_literal(text)}"]
    if folders:
        allowed = [f"{name}/" for name in folders] + [f"{text}/{name}/" for name in folders]
        statements.append(f"SET allowed_directories = [{', '.join(_literal(a) for a in allowed)}]")
    return statements


def catalog_connection(storage: Storage, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection (in UTC) that resolves the catalog's relative paths under ``storage``."""
    con = in_utc(duckdb.connect(database))
    for statement in reader_settings(storage.uri()):
        run(con, statement)
    return con


def catalog_is_current(con: duckdb.DuckDBPyConnection, snapshot_id: int | None) -> bool:
    """Whether the attached catalog is of this format and (when given) of ``snapshot_id``."""
    try:
        rows = run(con, "SELECT * FROM fhirlake.catalog")
        names = [d[0] for d in con.execute("SELECT * FROM fhirlake.catalog LIMIT 0").description]
    except duckdb.Error:
        return False
    if not rows or "format" not in names:
        return False
    row = dict(zip(names, rows[0], strict=True))
    return row["format"] == CATALOG_FORMAT and (snapshot_id is None or row["snapshot_id"] == snapshot_id)


def write_catalog(storage: Storage, tables: Sequence[CatalogTable], snapshot: Snapshot, snapshots: Sequence[Snapshot]) -> None:
    """Write ``catalog.duckdb`` for ``snapshot``: a new file, then renamed over the old one."""
    folder = Path(storage.path()) if storage.local else Path(tempfile.mkdtemp(prefix="fhirlake-catalog-"))
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".catalog-{uuid.uuid4().hex}.duckdb"
    try:
        con = catalog_connection(storage, str(temp))
        try:
            populate(con, tables, snapshot, snapshots)
            run(con, "CHECKPOINT")
        finally:
            con.close()
        if storage.local:
            os.replace(temp, folder / CATALOG_FILE)
        else:
            storage.write_atomic(temp.read_bytes(), CATALOG_FILE)
    finally:
        temp.unlink(missing_ok=True)
        Path(f"{temp}.wal").unlink(missing_ok=True)


def open_catalog(storage: Storage) -> duckdb.DuckDBPyConnection | None:
    """The catalog of the latest snapshot, read-only, or None when the lake has none yet."""
    if storage.local:
        path = Path(storage.path(CATALOG_FILE))
        if not path.is_file():
            return None
    else:
        data = storage.read_bytes(CATALOG_FILE)
        if data is None:
            return None
        handle, name = tempfile.mkstemp(prefix="fhirlake-catalog-", suffix=".duckdb")
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        path = Path(name)
    # Attached to a fresh in-memory database rather than opened with connect(path): DuckDB caches
    # the databases it opens by path, and would hand back the catalog a rename has replaced.
    con = catalog_connection(storage)
    run(con, f"ATTACH {_literal(str(path))} AS lake (READ_ONLY)")
    run(con, "USE lake")
    return con
