"""The read-only gold reader: one locked-down DuckDB connection to the lake's catalog.

The connection is in memory with the lake's ``catalog.duckdb`` attached read-only; then file
access is narrowed to the gold folder (``allowed_directories``), external access is disabled
and the configuration locked, so no query can read another file, reach the network, attach a
database, install an extension or change a setting back. The catalog file is replaced (renamed
over) when the pipeline publishes a snapshot; the reader notices (by the file's identity) and
reopens, so answers stay fresh while the pipeline keeps writing.

:meth:`GoldReader.run` is the only way to query: it takes a sqlglot tree and a scope and sends
the tree through :func:`~fhirlake.serving.scoping.scope_query` first.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from sqlglot import exp

from fhirlake.lake._catalog import CATALOG_FILE, reader_settings
from fhirlake.lake._storage import Storage
from fhirlake.serving.catalog import ColumnInfo, GoldCatalog, ViewInfo
from fhirlake.serving.errors import QueryRefused, QueryTimeout, ServingError
from fhirlake.serving.scope import DataScope
from fhirlake.serving.scoping import scope_query
from fhirlake.sof.roles import ColumnRole, parse_role

__all__ = ["GoldReader", "QueryResult"]

_ATTACHED = "lake"
# errors that describe the query and the schema, never a row: their text may reach the client
_DESCRIBES_THE_QUERY = (duckdb.ParserException, duckdb.SyntaxException, duckdb.BinderException, duckdb.CatalogException)


@dataclass(frozen=True)
class QueryResult:
    """Rows of one query, and the SQL that was run (after scoping)."""

    table: pa.Table
    sql: str


@dataclass
class _Slot:
    """One connection of the pool, and the catalog file it was opened on."""

    con: duckdb.DuckDBPyConnection
    identity: tuple[int, int]


class GoldReader:
    """Read-only, scoped access to the gold views of a local lake, over a pool of connections.

    Each of ``connections`` slots is its own locked-down in-memory DuckDB with the catalog
    attached, capped at ``threads`` threads and ``memory_limit``: a slow or heavy query holds
    one slot, and the others keep answering. A query waits at most ``timeout_seconds`` for a
    slot and runs at most ``timeout_seconds`` before it is interrupted.
    """

    def __init__(self, lake: str | Path | None = None, *, timeout_seconds: float = 10.0, threads: int = 1,
                 connections: int = 4, memory_limit: str = "768MB") -> None:
        storage = Storage.open(lake)
        if not storage.local:
            raise ServingError(f"{storage.root}: the MCP server serves a lake on a local disk only")
        if connections < 1 or threads < 1:
            raise ServingError("the reader needs at least one connection and one thread")
        self.root = Path(storage.path())
        self.timeout_seconds = timeout_seconds
        self._threads = threads
        self._memory_limit = memory_limit
        self._lock = threading.RLock()
        self._identity: tuple[int, int] | None = None
        self._catalog: GoldCatalog | None = None
        self._idle: queue.LifoQueue[_Slot | None] = queue.LifoQueue()
        self._slots: list[_Slot] = []
        self._closed = False
        for _ in range(connections):
            self._idle.put(None)  # opened on first use
        self._refresh()

    # ------------------------------------------------------------------------------ opening

    @property
    def catalog_file(self) -> Path:
        return self.root / CATALOG_FILE

    def _file_identity(self) -> tuple[int, int]:
        try:
            stat = os.stat(self.catalog_file)
        except FileNotFoundError as exc:
            raise ServingError(f"no lake at {self.root}: ingest an export first (fhirlake lake ingest)") from exc
        return stat.st_ino, stat.st_mtime_ns

    def _refresh(self) -> tuple[int, int]:
        """Read the catalog again when its file was replaced by a new snapshot; its identity."""
        with self._lock:
            identity = self._file_identity()
            if identity != self._identity or self._catalog is None:
                con = self._open()
                try:
                    self._catalog = _read_catalog(con)
                finally:
                    con.close()
                self._identity = identity
            return identity

    def _open(self) -> duckdb.DuckDBPyConnection:
        catalog = str(self.catalog_file)
        con = duckdb.connect(":memory:", config={"threads": self._threads})
        literal = exp.Literal.string
        statements = [
            "SET TimeZone = 'UTC'",
            "SET enable_progress_bar = false",
            "SET parquet_metadata_cache = true",  # gold files never change in place: read each footer once
            f"SET memory_limit = {literal(self._memory_limit).sql()}",
            "SET max_temp_directory_size = '0B'",  # a query over its memory fails instead of spilling to disk
            f"ATTACH {literal(catalog).sql()} AS {_ATTACHED} (READ_ONLY)",
            f"USE {_ATTACHED}",
            "SET search_path = 'gold'",
            *reader_settings(self.root, folders=("gold",)),  # relative file paths resolve in this lake, wherever it is
            f"SET allowed_paths = [{literal(catalog).sql()}, {literal(catalog + '.wal').sql()}]",
            "SET enable_external_access = false",
            "SET autoinstall_known_extensions = false",
            "SET autoload_known_extensions = false",
            "SET lock_configuration = true",
        ]
        try:
            for statement in statements:
                con.execute(statement)
        except duckdb.Error as exc:
            con.close()
            raise ServingError(f"{catalog}: cannot open the catalog read-only: {str(exc).splitlines()[0]}") from exc
        return con

    # ------------------------------------------------------------------------------ reading

    @property
    def catalog(self) -> GoldCatalog:
        self._refresh()
        assert self._catalog is not None
        return self._catalog

    def run(
        self, tree: exp.Query, scope: DataScope, *, restriction: exp.Query | None = None, max_rows: int | None = None
    ) -> QueryResult:
        """Scope ``tree`` (the one enforcement point), run it on a free connection, return its
        rows (at most ``max_rows``)."""
        identity = self._refresh()
        catalog = self._catalog
        assert catalog is not None
        scoped = scope_query(tree, scope, catalog, restriction)
        sql = scoped.sql(dialect="duckdb", comments=False, copy=False)  # scoped is already a new tree
        with self._slot(identity) as con, self._deadline(con):
            binding = True  # until DuckDB has bound the query: then errors may quote row values
            try:
                relation = con.sql(sql)
                binding = False
                table = relation.to_arrow_table() if max_rows is None else relation.limit(max_rows).to_arrow_table()
            except duckdb.InterruptException as exc:
                raise QueryTimeout(f"the query ran past the {self.timeout_seconds:g} s limit") from exc
            except duckdb.OutOfMemoryException as exc:
                raise QueryRefused(f"the query needed more than the {self._memory_limit} a query may use: "
                                   "ask a narrower question") from exc
            except duckdb.Error as exc:
                raise _refusal(exc, binding=binding) from exc
        return QueryResult(table, sql)

    @contextmanager
    def _slot(self, identity: tuple[int, int]) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection of the pool, opened on the current catalog, for one query."""
        try:
            slot = self._idle.get(timeout=self.timeout_seconds)
        except queue.Empty as exc:
            raise QueryTimeout(f"the server is busy: no connection was free within {self.timeout_seconds:g} s") from exc
        try:
            if self._closed:
                raise ServingError("the reader is closed")
            if slot is None or slot.identity != identity:
                if slot is not None:
                    slot.con.close()
                slot = _Slot(self._open(), identity)
            yield slot.con
        finally:
            self._idle.put(slot)

    @contextmanager
    def _deadline(self, con: duckdb.DuckDBPyConnection) -> Iterator[None]:
        timer = threading.Timer(self.timeout_seconds, con.interrupt)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                slot = self._idle.get_nowait()
            except queue.Empty:
                return
            if slot is not None:
                slot.con.close()


def _refusal(exc: duckdb.Error, *, binding: bool) -> QueryRefused:
    """The refusal for a failed query, quoting DuckDB's text only when it cannot hold row values.

    Parser, binder and catalog errors raised while binding describe the query and the schema,
    and help the client fix its SQL. Any other error (a conversion, invalid input, out of
    range, anything raised while running) can quote the value that failed, e.g. "Could not
    convert string '<patient id>' to INT32": its text goes neither to the client nor to the
    audit or the log, only its kind does.
    """
    if binding and isinstance(exc, _DESCRIBES_THE_QUERY):
        return QueryRefused(f"the query failed: {_first_line(exc)}")
    kind = type(exc).__name__.removesuffix("Exception").removesuffix("Error") or "runtime"
    return QueryRefused(f"the query failed while running (a DuckDB {kind} error); "
                        "its text is withheld because it can quote row values")


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text.replace(f"{_ATTACHED}.", "")


def _read_catalog(con: duckdb.DuckDBPyConnection) -> GoldCatalog:
    views: dict[str, list[ColumnInfo]] = {}
    roles = _read_roles(con)
    rows = con.execute(
        "SELECT table_name, column_name, data_type, coalesce(comment, '') FROM duckdb_columns() "
        "WHERE database_name = ? AND schema_name = 'gold' ORDER BY table_name, column_index", [_ATTACHED]).fetchall()
    for table, column, dtype, comment in rows:
        views.setdefault(str(table), []).append(ColumnInfo(str(column), str(dtype), str(comment),
                                                           roles.get((str(table), str(column)))))
    descriptions = dict(con.execute(
        "SELECT view_name, coalesce(comment, '') FROM duckdb_views() WHERE database_name = ? AND schema_name = 'gold'",
        [_ATTACHED]).fetchall())
    meta = con.execute("SELECT snapshot_id, reference_time, built_at FROM fhirlake.catalog").fetchall()
    snapshot_id, reference, built = meta[0] if meta else (None, None, None)
    return GoldCatalog(
        views={name: ViewInfo(name, str(descriptions.get(name, "")), tuple(columns)) for name, columns in views.items()},
        snapshot_id=int(snapshot_id) if snapshot_id is not None else None,
        reference_time=reference if isinstance(reference, datetime) else None,
        built_at=built if isinstance(built, datetime) else None,
    )


def _read_roles(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], ColumnRole]:
    """Each gold column's declared role, from the catalog's ``fhirlake.columns`` (none in a
    catalog written before roles were declared: then no column can be used in SQL)."""
    present = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'fhirlake' "
                          "AND table_name = 'columns'", [_ATTACHED]).fetchone()
    if not present or not present[0]:
        return {}
    roles = {}
    for name, column, role, bounds in con.execute("SELECT name, \"column\", role, bounds FROM fhirlake.columns").fetchall():
        schema, _, table = str(name).partition(".")
        parsed = parse_role(role, bounds, pointer=f"{name}.{column}")
        if schema == "gold" and parsed is not None:
            roles[(table, str(column))] = parsed
    return roles
