"""DuckDB for the lake: connections, and SQL built as sqlglot trees from readable templates.

A template is DuckDB SQL with ``:name`` placeholders; :func:`render` parses it once and puts
values in as tree nodes (a string becomes a quoted literal, a list an array, a sqlglot table
expression a FROM item), so no value is ever pasted into SQL text.

``$FHIRLAKE_MEMORY_LIMIT`` (default ``600MB``) and ``$FHIRLAKE_THREADS`` (default: the CPUs)
bound a writer's DuckDB, which spills to the run's scratch folder beyond that.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import sqlglot
from sqlglot import exp

__all__ = ["connect_worker", "delta_safe", "files_view", "in_utc", "parquet", "quote", "render", "run", "tree", "without_progress_bar"]

_MEMORY_LIMIT = "600MB"

# DuckDB types a Delta table cannot hold, and what they are stored as.
_DELTA_SAFE = {
    '"NULL"': "VARCHAR", "NULL": "VARCHAR", "TIME": "VARCHAR", "TIME WITH TIME ZONE": "VARCHAR",
    "INTERVAL": "VARCHAR", "UUID": "VARCHAR", "JSON": "VARCHAR", "UTINYINT": "SMALLINT", "USMALLINT": "INTEGER",
    "UINTEGER": "BIGINT", "UBIGINT": "DECIMAL(20, 0)", "HUGEINT": "DECIMAL(38, 0)", "UHUGEINT": "DECIMAL(38, 0)",
    "TIMESTAMP": "TIMESTAMPTZ", "TIMESTAMP_NS": "TIMESTAMPTZ", "TIMESTAMP_MS": "TIMESTAMPTZ", "TIMESTAMP_S": "TIMESTAMPTZ",
}


def connect_worker(temp_dir: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for one ingest or build, in UTC."""
    threads = int(os.environ.get("FHIRLAKE_THREADS", "0") or 0) or (os.cpu_count() or 1)
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": os.environ.get("FHIRLAKE_MEMORY_LIMIT", _MEMORY_LIMIT), "threads": threads,
        "temp_directory": str(temp_dir)}
    return without_progress_bar(in_utc(duckdb.connect(":memory:", config=config)))


def without_progress_bar(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """``con``, printing no progress bar. Inside Jupyter without ipywidgets DuckDB starts with it
    off and refuses to change the setting at all, so it is only switched off when it is on."""
    if run(con, "SELECT current_setting('enable_progress_bar')")[0][0]:
        run(con, "SET enable_progress_bar = false")
    return con


def run(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] | Mapping[str, object] | None = None
) -> list[tuple[object, ...]]:
    """Execute ``sql`` and fetch every row (DuckDB refuses new work while a result is unread)."""
    return con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()


def in_utc(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """``con``, showing and computing TIMESTAMPTZ values in UTC (years of ``_year`` included)."""
    run(con, "SET TimeZone = 'UTC'")
    return con


@functools.lru_cache(maxsize=256)
def _parsed(template: str) -> exp.Expr:
    return sqlglot.parse_one(template, dialect="duckdb")


def tree(template: str, **values: object) -> exp.Expr:
    """``template`` with each ``:name`` replaced by ``values[name]``, as a sqlglot tree."""
    return exp.replace_placeholders(_parsed(template), **values)


def render(template: str, **values: object) -> str:
    """``template`` with each ``:name`` replaced by ``values[name]``, as DuckDB SQL."""
    return tree(template, **values).sql(dialect="duckdb", copy=False)


def quote(name: str) -> str:
    """``name`` as a quoted DuckDB identifier."""
    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")


def parquet(files: Sequence[str], columns: Mapping[str, str], **options: bool) -> exp.Expr:
    """``read_parquet([...files], option := value ...)``, or a relation of ``columns`` with no rows
    when there are no files (read_parquet needs at least one)."""
    if not files:
        nulls = [exp.alias_(exp.Cast(this=exp.null(), to=exp.DataType.build(t, dialect="duckdb")), n, quoted=True)
                 for n, t in columns.items()]
        return exp.Subquery(this=exp.select(*nulls).where(exp.false()))
    arguments: list[exp.Expr] = [exp.Array(expressions=[exp.Literal.string(f) for f in files])]
    arguments += [exp.PropertyEQ(this=exp.to_identifier(key), expression=exp.true() if value else exp.false())
                  for key, value in options.items()]
    return exp.Table(this=exp.Anonymous(this="read_parquet", expressions=arguments))


def files_view(con: duckdb.DuckDBPyConnection, name: str, files: Sequence[str], columns: Mapping[str, str], **options: bool) -> None:
    """A temp view ``name`` over the Parquet ``files`` (no rows, ``columns``, when there are none)."""
    select = exp.select(exp.Star()).from_(parquet(files, columns, hive_partitioning=False, **options))
    run(con, f"CREATE OR REPLACE TEMP VIEW {quote(name)} AS {select.sql(dialect='duckdb', copy=False)}")


def delta_safe(
    con: duckdb.DuckDBPyConnection, query: str, params: Mapping[str, object] | None = None
) -> duckdb.DuckDBPyRelation:
    """``query`` as a relation whose columns of types Delta cannot hold are cast to ones it can."""
    relation = con.sql(query, params=params)
    replaced = []
    for name, dtype in zip(relation.columns, relation.types, strict=True):
        text = str(dtype)
        depth = 0
        while text.endswith("[]"):
            text, depth = text[:-2], depth + 1
        if text in _DELTA_SAFE:
            target = exp.DataType.build(_DELTA_SAFE[text] + "[]" * depth, dialect="duckdb")
            replaced.append(exp.alias_(exp.Cast(this=exp.column(name, quoted=True), to=target), name, quoted=True))
    if not replaced:
        return relation
    star = exp.Star(**{"replace": replaced})
    inner = exp.Subquery(this=sqlglot.parse_one(query, dialect="duckdb"), alias=exp.TableAlias(this=exp.to_identifier("q")))
    return con.sql(exp.select(star).from_(inner).sql(dialect="duckdb", copy=False), params=params)
