"""Build a gold table on Spark: executors compute the view's rows and write the Parquet files.

Spark reads the silver table's files (the Delta version the run sees), each task turns its
share of silver rows into the view's rows and writes them as Parquet into the gold table's
folder with the lake's own writer (:func:`fhirlake.lake._delta.write_files`: the same
``_year=…`` layout, row groups and compression as a DuckDB build), and returns only the
written files' names, sizes and row counts. The driver then commits those files in one Delta
transaction through deltalake (:func:`fhirlake.lake._build.rebuild_gold`). No delta-spark
jars are needed: files a failed or speculative task attempt wrote are never committed (they
are what ``fhirlake lake vacuum`` removes), so the table stays ACID.

Every task casts its rows to the schema DuckDB gives the view (computed once on the driver
over no rows), so a Spark build and a DuckDB build leave the same Delta table, row for row.

Until the Spark dialect of the view compiler exists, a task evaluates the view's compiled
DuckDB query over its Arrow batches with an in-process DuckDB (one thread per task, so the
parallelism is Spark's); :func:`_view_rows` is the one place that will hand the view to
Spark SQL instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.fs as pafs

from fhirlake.lake._build import ALL_SILVER_ROWS, GoldRows
from fhirlake.lake._delta import DataFile, DeltaFolder, write_files
from fhirlake.lake._duck import delta_safe
from fhirlake.lake._gold import ROWS_PER_GROUP, GoldView
from fhirlake.lake._silver import STORED_COLUMNS
from fhirlake.lake._storage import Storage

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SparkGoldBuilder"]

#: What each task sends back to the driver: one row per Parquet file it wrote.
_WRITTEN = "path string, size long, rows long, partition int"
_WRITTEN_SCHEMA = pa.schema([("path", pa.string()), ("size", pa.int64()), ("rows", pa.int64()), ("partition", pa.int32())])


@dataclass(frozen=True)
class SparkGoldBuilder:
    """Rebuilds gold tables of one lake on one Spark session."""

    spark: SparkSession
    storage: Storage

    @classmethod
    def start(cls, storage: Storage, *, spark: Any = None, master: str | None = None) -> SparkGoldBuilder:
        """On ``spark`` (a SparkSession), else this process's session on ``master``."""
        if spark is None:
            from fhirlake.spark import spark_session

            spark = spark_session(master, app_name="fhirlake-lake-build")
        return cls(spark, storage)

    @property
    def jobs(self) -> int:
        """Tables built at once: as many as the cluster has cores (``defaultParallelism``), at most 4."""
        return max(1, min(4, int(self.spark.sparkContext.defaultParallelism)))

    def rebuild(self, view: GoldView, silver: Sequence[str]) -> GoldRows:
        """The view's rows over the ``silver`` files, written as files of its table (not committed)."""
        schema = _gold_schema(view)
        folder = DeltaFolder(self.storage, view.table)
        if not silver:
            return GoldRows(view.with_comments(schema), [])
        resources = self.spark.read.parquet(*[_spark_path(uri) for uri in silver]).select(*STORED_COLUMNS)
        written = _view_rows(view, resources, schema, folder.uri).collect()
        files = [DataFile(r["path"], int(r["size"]), int(r["rows"]), r["partition"]) for r in written]
        return GoldRows(view.with_comments(schema), files)


def _gold_schema(view: GoldView) -> pa.Schema:
    """The Arrow schema of the view's gold rows as DuckDB types them (``_year`` last)."""
    import duckdb

    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        columns = ", ".join(f'CAST(NULL AS {kind}) AS "{name}"' for name, kind in STORED_COLUMNS.items())
        con.execute(f"CREATE TEMP VIEW silver_rows AS SELECT {columns} WHERE false")
        con.execute(ALL_SILVER_ROWS)
        schema: pa.Schema = delta_safe(con, view.query_sql).to_arrow_reader(ROWS_PER_GROUP).schema
        return schema


def _view_rows(view: GoldView, resources: DataFrame, schema: pa.Schema, table_uri: str) -> DataFrame:
    """One row per file written by the tasks that compute ``view`` over ``resources``."""
    return resources.mapInArrow(_duckdb_task(view.query_sql, schema, table_uri), _WRITTEN)


def _duckdb_task(query: str, schema: pa.Schema, table_uri: str) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A Spark task: silver batches in, the view's rows written as Parquet, file entries out."""

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import duckdb

        with duckdb.connect(config={"threads": 1}) as con:
            con.execute("SET TimeZone = 'UTC'")

            def rows() -> Iterator[pa.RecordBatch]:
                for batch in batches:
                    con.register("silver_rows", pa.Table.from_batches([batch]))
                    con.execute(ALL_SILVER_ROWS)
                    for out in delta_safe(con, query).to_arrow_reader(ROWS_PER_GROUP):
                        yield from pa.Table.from_batches([out]).cast(schema).to_batches()
                    con.unregister("silver_rows")

            files = _write_task_files(pa.RecordBatchReader.from_batches(schema, rows()), table_uri)
        yield pa.record_batch([pa.array([getattr(f, n) for f in files], t) for n, t in zip(
            _WRITTEN_SCHEMA.names, _WRITTEN_SCHEMA.types, strict=True)], schema=_WRITTEN_SCHEMA)

    return task


def _write_task_files(reader: pa.RecordBatchReader, table_uri: str) -> list[DataFile]:
    """Write a task's rows into the table's folder, through the file system of its URI."""
    fs, base = pafs.FileSystem.from_uri(table_uri if "://" in table_uri else f"file://{table_uri}")
    return write_files(reader, fs, base, rows_per_group=ROWS_PER_GROUP)


def _spark_path(uri: str) -> str:
    """A lake URI as Spark's Hadoop file systems name it (``file:`` for a local path)."""
    return uri if "://" in uri else f"file://{uri}"
