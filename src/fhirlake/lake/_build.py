"""Build gold from silver: which gold tables need a rebuild, and the engine that rebuilds them.

A gold table is rebuilt whole, in one Delta version, when it is missing, was built by another
definition of its view, or was left by an unfinished run of another export. The rows come
from one of two engines, chosen by :func:`gold_rebuilder`:

* ``duckdb`` (the default): the view's DuckDB query over the silver files, in this process;
* ``spark``: the same rows computed by Spark tasks, which write the Parquet files themselves
  (:mod:`fhirlake.lake._spark_build`).

Either way the files land in the table's folder and are committed by deltalake in one
transaction (:meth:`DeltaFolder.commit`), so every engine leaves the same Delta table, readable
by DuckDB, Spark and deltalake alike, and recorded in the lake's snapshot log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
from deltalake import DeltaTable

from fhirlake.lake._delta import DataFile, DeltaFolder
from fhirlake.lake._duck import delta_safe, files_view, run
from fhirlake.lake._gold import ROWS_PER_GROUP, VIEW_HASH_KEY, GoldView
from fhirlake.lake._log import Snapshot
from fhirlake.lake._silver import STORED_COLUMNS
from fhirlake.lake.errors import LakeError

if TYPE_CHECKING:
    from fhirlake.lake._ingest import _Merge

__all__ = [
    "ENGINES", "ENGINE_KEY", "SNAPSHOT_KEY", "BuildReport", "Engine", "GoldRows", "ViewCounts", "gold_rebuilder", "refresh_gold",
    "removed_views",
]

SNAPSHOT_KEY, EXPORT_KEY, SOURCE_KEY = "fhirlake.snapshot", "fhirlake.export", "fhirlake.source"
ENGINE_KEY = "fhirlake.engine"  # in a rebuild's commit: which engine computed the rows
Engine = Literal["duckdb", "spark"]
ENGINES: tuple[Engine, ...] = ("duckdb", "spark")

#: Silver rows with their partition, as every gold query reads them (``changed_rows``).
ALL_SILVER_ROWS = """
CREATE OR REPLACE TEMP VIEW changed_rows AS
SELECT s.*, CAST(year(s.last_updated) AS INTEGER) AS _year FROM silver_rows AS s
"""


@dataclass(frozen=True)
class ViewCounts:
    """What an ingest or build did to one gold table (in rows)."""

    rows_removed: int = 0
    rows_added: int = 0
    files_rewritten: int = 0
    rebuilt: bool = False


@dataclass(frozen=True)
class BuildReport:
    """The outcome of :meth:`Lake.build`: the gold tables rebuilt, those dropped because their
    view was removed from the library, and the snapshot recorded."""

    snapshot_id: int | None
    rebuilt: Mapping[str, ViewCounts]
    seconds: float
    dropped: tuple[str, ...] = ()
    engine: Engine = "duckdb"

    def lines(self) -> list[str]:
        """What ``fhirlake lake build`` prints."""
        rebuilt = ", ".join(sorted(self.rebuilt)) or "nothing (every gold table matches its view)"
        on = f" on {self.engine}" if self.engine != "duckdb" else ""
        out = [f"snapshot {self.snapshot_id}: rebuilt {rebuilt}{on} in {self.seconds:.1f} s"]
        out += [f"dropped gold.{name}: its view is no longer in the library (earlier snapshots keep it; "
                "`fhirlake lake vacuum` frees its files once none needs them)" for name in self.dropped]
        return out


@dataclass(frozen=True)
class GoldRows:
    """A gold table's new files, written into its folder but not committed, and their schema
    (the view's columns then the hidden ones, ``_year`` last, with their comments)."""

    schema: pa.Schema
    files: list[DataFile]


@dataclass(frozen=True)
class GoldRebuild:
    """How an engine rebuilds gold tables: ``rows`` writes a view's rows over the given silver
    files (their URIs) as files of its table; ``jobs`` tables are built at once (Spark: a small
    table's job leaves cores idle that the next table's job takes; DuckDB: one, as each
    query uses every core already)."""

    rows: Callable[[GoldView, Sequence[str]], GoldRows]
    jobs: int = 1
    engine: Engine = "duckdb"


def removed_views(latest: Snapshot | None, views: Sequence[GoldView]) -> tuple[str, ...]:
    """Gold tables of the latest snapshot whose view is no longer in the library: a new
    snapshot leaves them out, so the catalog stops serving stale rows."""
    if latest is None:
        return ()
    current = {v.table for v in views}
    return tuple(sorted(name.removeprefix("gold/") for name in latest.tables
                        if name.startswith("gold/") and name not in current))


def gold_rebuilder(merge: _Merge, engine: Engine = "duckdb", *, spark: Any = None, master: str | None = None) -> GoldRebuild:
    """The function that computes and writes a gold table's rows on ``engine``.

    ``spark`` is a SparkSession to use (a Dagster resource's); without one, ``master`` (or
    ``local[1]``) starts or reuses this process's session. pyspark is imported only here.
    """
    if engine == "duckdb":
        return GoldRebuild(lambda view, silver: _duckdb_rows(merge, view, silver))
    if engine == "spark":
        from fhirlake.lake._spark_build import SparkGoldBuilder

        builder = SparkGoldBuilder.start(merge.storage, spark=spark, master=master)
        return GoldRebuild(builder.rebuild, jobs=builder.jobs, engine="spark")
    raise LakeError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")


def _duckdb_rows(merge: _Merge, view: GoldView, silver: Sequence[str]) -> GoldRows:
    files_view(merge.cursor(), "silver_rows", silver, STORED_COLUMNS)
    run(merge.cursor(), ALL_SILVER_ROWS)
    reader = delta_safe(merge.cursor(), view.query_sql).to_arrow_reader(ROWS_PER_GROUP)
    schema = view.with_comments(reader.schema)
    return GoldRows(schema, DeltaFolder(merge.storage, view.table).write(reader, rows_per_group=ROWS_PER_GROUP))


def refresh_gold(
    merge: _Merge, views: Sequence[GoldView], *, force: bool = False, rebuild: GoldRebuild | None = None
) -> dict[str, ViewCounts]:
    """Rebuild from silver each gold table that is missing, built by another view definition,
    or left by an unfinished run of another export (every one of ``views`` with ``force``)."""
    chosen = rebuild or gold_rebuilder(merge)
    stale = [view for view in views if force or not view.built_by_this_view(table := merge.table(view.table))
             or _unfinished_elsewhere(merge, table)]
    if chosen.jobs <= 1 or len(stale) <= 1:
        return {view.name: rebuild_gold(merge, view, chosen) for view in stale}
    with ThreadPoolExecutor(max_workers=chosen.jobs, thread_name_prefix="fhirlake-gold") as pool:
        counts = list(pool.map(lambda view: rebuild_gold(merge, view, chosen), stale))
    return {view.name: count for view, count in zip(stale, counts, strict=True)}


def rebuild_gold(merge: _Merge, view: GoldView, rebuild: GoldRebuild) -> ViewCounts:
    """The whole gold table from silver, in one version."""
    folder = DeltaFolder(merge.storage, view.table)
    before = folder.files(merge.table(view.table))
    rows = rebuild.rows(view, merge._uris(f"silver/{view.resource}"))
    metadata = {**merge.metadata, VIEW_HASH_KEY: view.sha, "fhirlake.operation": "rebuild", ENGINE_KEY: rebuild.engine}
    merge.commit(folder, rows.schema, add=rows.files, metadata=metadata, overwrite=True, description=view.description)
    return ViewCounts(rows_removed=sum(f.rows for f in before), rows_added=sum(f.rows for f in rows.files), rebuilt=True)


def _unfinished_elsewhere(merge: _Merge, table: DeltaTable | None) -> bool:
    if table is None:
        return False
    last = table.history(1)[0]
    unfinished = int(last.get(SNAPSHOT_KEY, 0) or 0) > merge.recorded
    same_export = merge.export is not None and (last.get(EXPORT_KEY), last.get(SOURCE_KEY)) == (
        merge.export.export_id, merge.source)
    return unfinished and not same_export
