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

The view runs as Spark SQL (the compiler's Spark dialect, :mod:`fhirlake.sof.spark_engine`),
or, with ``spark.fhirlake.views=duckdb``, as the compiled DuckDB query inside each task
(:func:`_view_rows`); both give the DuckDB build's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.fs as pafs

from fhirlake.lake._build import ALL_SILVER_ROWS, GoldRows
from fhirlake.lake._delta import PARTITION, DataFile, DeltaFolder, write_files
from fhirlake.lake._duck import delta_safe
from fhirlake.lake._gold import CARRY, ROWS_PER_GROUP, GoldView
from fhirlake.lake._silver import STORED_COLUMNS
from fhirlake.lake._storage import Storage

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["VIEWS_SETTING", "SparkGoldBuilder"]

#: The Spark setting that chooses how tasks evaluate views: ``sql`` (default) or ``duckdb``.
VIEWS_SETTING = "spark.fhirlake.views"
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
    """One row per file written by the tasks that compute ``view`` over ``resources``.

    By default the view is the compiled tree spelled in Spark SQL
    (:func:`fhirlake.sof.spark_view_dataframe`), and each task only writes its rows; with
    ``spark.fhirlake.views=duckdb`` each task evaluates the view's DuckDB query over its
    silver batches instead (one DuckDB thread per task; about twice as fast per core here,
    at the cost of DuckDB on every executor).
    """
    if resources.sparkSession.conf.get(VIEWS_SETTING, "sql") == "duckdb":
        return resources.mapInArrow(_duckdb_task(view.query_sql, schema, table_uri), _WRITTEN)
    from pyspark.sql import functions as F

    from fhirlake.sof import spark_view_dataframe

    silver = resources.withColumn(PARTITION, F.year(F.col("last_updated")).cast("int"))
    rows = spark_view_dataframe(view.compiled, silver, carry=CARRY)
    return rows.mapInArrow(_write_task(schema, table_uri), _WRITTEN)


def _write_task(schema: pa.Schema, table_uri: str) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A Spark task: the view's rows in, cast to the gold schema and written as Parquet, file entries out."""

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        def rows() -> Iterator[pa.RecordBatch]:
            for batch in batches:
                yield from pa.Table.from_batches([batch]).cast(schema).to_batches()

        yield _entries(_write_task_files(pa.RecordBatchReader.from_batches(schema, rows()), table_uri))

    return task


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
        yield _entries(files)

    return task


def _entries(files: list[DataFile]) -> pa.RecordBatch:
    columns = [pa.array([getattr(f, name) for f in files], kind) for name, kind in zip(
        _WRITTEN_SCHEMA.names, _WRITTEN_SCHEMA.types, strict=True)]
    return pa.record_batch(columns, schema=_WRITTEN_SCHEMA)


def _write_task_files(reader: pa.RecordBatchReader, table_uri: str) -> list[DataFile]:
    """Write a task's rows into the table's folder, through the file system of its URI."""
    fs, base = pafs.FileSystem.from_uri(table_uri if "://" in table_uri else f"file://{table_uri}")
    return write_files(reader, fs, base, rows_per_group=ROWS_PER_GROUP)


def _spark_path(uri: str) -> str:
    """A lake URI as Spark's Hadoop file systems name it (``file:`` for a local path)."""
    return uri if "://" in uri else f"file://{uri}"
