"""Run views on Apache Spark: the same compiled tree, spelled in Spark SQL, over DataFrames.

The read schema is the one the DuckDB path uses (:attr:`CompiledView.read_structure`, built from
the paths the view reads), turned into a Spark ``StructType`` and given to ``from_json``: Spark
parses only those fields, and the compiled query (:mod:`fhirlake.sof.engines.spark`)
runs over them. Sources are NDJSON files (read as text lines), a silver Delta table (its live
Parquet files, listed by ``deltalake``, so no delta-spark jars are needed), a pyarrow Table, or
any Spark DataFrame with a column of resource JSON.

Imported only when Spark is asked for (``engine="spark"``); it needs the ``spark`` extra.

>>> from fhirlake.sof import spark_view_dataframe                     # doctest: +SKIP
>>> rows = spark_view_dataframe("patient", silver_df, carry={"_key": "resource_key"})  # doctest: +SKIP
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from fhirlake.sof.compiler import CompiledView
from fhirlake.sof.engines import dialect
from fhirlake.sof.engines.spark import spark_schema
from fhirlake.sof.errors import ViewEvaluationError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fhirlake.sof.runner import RunResult, ViewLike

__all__ = ["read_delta", "read_ndjson", "run_view_spark", "spark_sql", "spark_view_dataframe"]

_HIDDEN = "__carried_{}"
# Spark's message for raise_error: "[USER_RAISED_EXCEPTION] <message> SQLSTATE: P0001".
_USER_ERROR = re.compile(r"\[USER_RAISED_EXCEPTION\]\s*(.*?)\s*(?:SQLSTATE: \w+)?$", re.MULTILINE)


def spark_view_dataframe(
    view: ViewLike,
    resources: DataFrame,
    *,
    resource_column: str = "resource",
    carry: Mapping[str, str] | None = None,
    strict: bool = False,
) -> DataFrame:
    """The rows of ``view`` over ``resources``, a Spark DataFrame with resource JSON text in
    ``resource_column``: a lazy DataFrame with the view's columns in order.

    ``view`` is anything :func:`fhirlake.sof.run_view` accepts (a compiled or parsed view, a
    dict, a path). Rows of other resource types are skipped (with ``strict``, they stop the
    query instead). ``carry`` maps output column names to columns of ``resources`` copied
    unchanged into each output row, after the view's columns (a key to merge rows by): the
    same contract as :func:`fhirlake.sof.runner.view_query` on DuckDB.

    The resource JSON is parsed with ``from_json`` and a schema holding only what the view
    reads; the query is the view's compiled tree spelled in Spark SQL (see :func:`spark_sql`).

    >>> silver = spark.read.parquet(*files)                                      # doctest: +SKIP
    >>> gold = spark_view_dataframe("patient", silver, carry={"_key": "resource_key"})  # doctest: +SKIP
    """
    from pyspark.sql import functions as F

    from fhirlake.sof.runner import as_compiled

    compiled = as_compiled(view)
    carried = {name: _HIDDEN.format(index) for index, name in enumerate(carry or {})}
    parsed = F.from_json(F.col(resource_column), spark_schema(compiled.read_structure)).alias("__resource")
    hidden = [F.col(column).alias(carried[name]) for name, column in (carry or {}).items()]
    source = resources.select(parsed, *hidden).select("__resource.*", *carried.values())
    with _temporary_view(source) as name:
        # The returned DataFrame is analysed here: it no longer needs the temporary view.
        return source.sparkSession.sql(spark_sql(compiled.carrying(carried), exp.to_table(name), strict=strict))


def spark_sql(compiled: CompiledView, source: exp.Expression, *, strict: bool = False) -> str:
    """The view's query over ``source`` (a relation with the resource's elements as columns),
    as Spark SQL text."""
    return compiled.query(source, strict=strict).sql(dialect=dialect("spark"))


@contextmanager
def _temporary_view(frame: DataFrame) -> Iterator[str]:
    name = f"__fhirlake_{uuid.uuid4().hex}"
    frame.createOrReplaceTempView(name)
    try:
        yield name
    finally:
        frame.sparkSession.catalog.dropTempView(name)


def read_ndjson(spark: SparkSession, files: Sequence[Path], *, column: str = "resource") -> DataFrame:
    """NDJSON files (plain or .gz) as a DataFrame of one ``column`` of resource JSON text, blank
    lines left out."""
    from pyspark.sql import functions as F

    lines = spark.read.text([str(f) for f in files]).withColumnRenamed("value", column)
    return lines.where(F.length(F.trim(F.col(column))) > 0)


def read_delta(spark: SparkSession, table: str | Path, *, version: int | None = None) -> DataFrame:
    """A version of a Delta table (default: the current one) as a DataFrame, read without
    delta-spark: ``deltalake`` lists the version's live Parquet files and Spark reads them. For a
    silver table, ``resource`` holds the JSON.

    Partition values live in the files' paths and are not columns here; a view needs none. A
    table with deletion vectors is refused (its files hold deleted rows): read it with delta-spark.
    """
    from deltalake import DeltaTable

    delta = DeltaTable(str(table), version=version)
    if "deletionVectors" in (delta.protocol().reader_features or []):
        raise ViewEvaluationError(f"the Delta table {table} uses deletion vectors: read it with delta-spark")
    files = delta.file_uris()
    if not files:  # no data file: no rows, with the table's columns
        return spark.createDataFrame(delta.to_pyarrow_table())
    return spark.read.parquet(*files)


def is_delta_table(path: str | Path) -> bool:
    """True when ``path`` is a Delta table: a folder with a ``_delta_log``, or a URI deltalake
    recognises as one (``s3://...``)."""
    if "://" in str(path):
        from deltalake import DeltaTable

        return bool(DeltaTable.is_deltatable(str(path)))
    return (Path(path) / "_delta_log").is_dir()


def run_view_spark(
    compiled: CompiledView,
    source: Any,
    *,
    output: str | Path | None = None,
    master: str | None = None,
    resource_column: str = "resource",
) -> RunResult:
    """:func:`fhirlake.sof.run_view` with ``engine="spark"`` (see there)."""
    from fhirlake.sof.inputs import find_files
    from fhirlake.sof.runner import RunResult, diagnose
    from fhirlake.spark import spark_session

    spark = spark_session(master)
    files: list[Path] = []
    strict = False
    if isinstance(source, pa.Table):
        resources = spark.createDataFrame(source)
    elif _is_dataframe(source):
        resources = source
    elif isinstance(source, str | Path) and is_delta_table(source):
        resources = read_delta(spark, source)
    else:
        files = find_files(source, compiled.view.resource)
        strict = True  # in files, a resource of another type is an error, as on DuckDB
        resources = read_ndjson(spark, files, column=resource_column) if files else _no_resources(spark, resource_column)
    rows = spark_view_dataframe(compiled, resources, resource_column=resource_column, strict=strict)
    try:
        return _collect(rows, output, RunResult)
    except Exception as error:
        if not _is_spark_error(error):
            raise
        if files:
            raise diagnose(_spark_message(error), files, compiled.view.resource) from error
        raise ViewEvaluationError(_spark_message(error)) from error


def _collect(rows: DataFrame, output: str | Path | None, result: type[RunResult]) -> RunResult:
    if output is None:
        table = rows.toArrow()
        return result(rows=table.num_rows, table=table)
    target = Path(output)
    rows.write.mode("overwrite").option("compression", "zstd").parquet(str(target))
    written = rows.sparkSession.read.parquet(str(target)).count()
    return result(rows=written, output=target)


def _no_resources(spark: SparkSession, column: str) -> DataFrame:
    from pyspark.sql.types import StringType, StructField, StructType

    return spark.createDataFrame([], StructType([StructField(column, StringType())]))


def _is_dataframe(value: object) -> bool:
    try:
        from pyspark.sql import DataFrame
    except ImportError:  # pragma: no cover - the spark extra is missing
        return False
    return isinstance(value, DataFrame)


def _is_spark_error(error: BaseException) -> bool:
    from py4j.protocol import Py4JJavaError  # type: ignore[import-untyped]
    from pyspark.errors import PySparkException

    return isinstance(error, PySparkException | Py4JJavaError)


def _spark_message(error: BaseException) -> str:
    """The useful line of a Spark error: the message of raise_error when that was the cause."""
    text = str(error)
    found = _USER_ERROR.search(text)
    if found:
        return found.group(1).strip().strip("'\"")
    return text.strip().split("\n")[0]
