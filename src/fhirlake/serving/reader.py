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
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from sqlglot import exp

from fhirlake.lake._catalog import CATALOG_FILE
from fhirlake.lake._storage import Storage
from fhirlake.serving.catalog import ColumnInfo, GoldCatalog, ViewInfo
from fhirlake.serving.errors import QueryRefused, QueryTimeout, ServingError
from fhirlake.serving.scope import DataScope
from fhirlake.serving.scoping import scope_query

__all__ = ["GoldReader", "QueryResult"]

_ATTACHED = "lake"
# errors that describe the query and the schema, never a row: their text may reach the client
_DESCRIBES_THE_QUERY = (duckdb.ParserException, duckdb.SyntaxException, duckdb.BinderException, duckdb.CatalogException)


@dataclass(frozen=True)
class QueryResult:
    """Rows of one query, and the SQL that was run (after scoping)."""

    table: pa.Table
    sql: str


class GoldReader:
    """Read-only, scoped access to the gold views of a local lake."""

    def __init__(self, lake: str | Path | None = None, *, timeout_seconds: float = 10.0, threads: int = 2) -> None:
        storage = Storage.open(lake)
        if not storage.local:
            raise ServingError(f"{storage.root}: the MCP server serves a lake on a local disk only")
        self.root = Path(storage.path())
        self.timeout_seconds = timeout_seconds
        self._threads = threads
        self._lock = threading.RLock()
        self._identity: tuple[int, int] | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._catalog: GoldCatalog | None = None
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

    def _refresh(self) -> None:
        """Reopen when the catalog file was replaced by a new snapshot."""
        identity = self._file_identity()
        if identity == self._identity and self._con is not None:
            return
        con = self._open()
        catalog = _read_catalog(con)
        old, self._con, self._catalog, self._identity = self._con, con, catalog, identity
        if old is not None:
            old.close()

    def _open(self) -> duckdb.DuckDBPyConnection:
        catalog = str(self.catalog_file)
        con = duckdb.connect(":memory:", config={"threads": self._threads})
        literal = exp.Literal.string
        statements = [
            "SET TimeZone = 'UTC'",
            "SET enable_progress_bar = false",
            "SET parquet_metadata_cache = true",  # gold files never change in place: read each footer once
            f"ATTACH {literal(catalog).sql()} AS {_ATTACHED} (READ_ONLY)",
            f"USE {_ATTACHED}",
            "SET search_path = 'gold'",
            f"SET allowed_directories = [{literal(str(self.root / 'gold') + os.sep).sql()}]",
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
        with self._lock:
            self._refresh()
            assert self._catalog is not None
            return self._catalog

    def run(
        self, tree: exp.Query, scope: DataScope, *, restriction: exp.Query | None = None, max_rows: int | None = None
    ) -> QueryResult:
        """Scope ``tree`` (the one enforcement point), run it, return its rows (at most ``max_rows``)."""
        with self._lock:
            self._refresh()
            assert self._catalog is not None and self._con is not None
            scoped = scope_query(tree, scope, self._catalog, restriction)
            sql = scoped.sql(dialect="duckdb", comments=False, copy=False)  # scoped is already a new tree
            with self._deadline(self._con):
                binding = True  # until DuckDB has bound the query: then errors may quote row values
                try:
                    relation = self._con.sql(sql)
                    binding = False
                    table = relation.to_arrow_table() if max_rows is None else relation.limit(max_rows).to_arrow_table()
                except duckdb.InterruptException as exc:
                    raise QueryTimeout(f"the query ran past the {self.timeout_seconds:g} s limit") from exc
                except duckdb.Error as exc:
                    raise _refusal(exc, binding=binding) from exc
            return QueryResult(table, sql)

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
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None


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
    rows = con.execute(
        "SELECT table_name, column_name, data_type, coalesce(comment, '') FROM duckdb_columns() "
        "WHERE database_name = ? AND schema_name = 'gold' ORDER BY table_name, column_index", [_ATTACHED]).fetchall()
    for table, column, dtype, comment in rows:
        views.setdefault(str(table), []).append(ColumnInfo(str(column), str(dtype), str(comment)))
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
