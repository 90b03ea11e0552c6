"""Run a view: resources in, a table out (an Arrow table or a Parquet file).

The fast path is one DuckDB statement: ``read_json`` over the NDJSON files with exactly the
columns the view reads (see :mod:`fhirlake.sof.schema` and :mod:`fhirlake.sof.engines.duckdb`),
the compiled query, and ``COPY ... TO`` Parquet. It never holds the input in Python. Other
engines (``engine="spark"``: :mod:`fhirlake.sof.spark_engine`) run the same compiled view.

Bad input loses nothing and is named precisely. By default the first unusable line stops the
run with its file and line (found by re-reading the files only after DuckDB has failed). With
``skip_invalid=True`` each line is checked first; unusable lines go to a quarantine NDJSON
file with their reason, and the counts always add up: ``resources_in == resources_out +
quarantined``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import duckdb
import orjson
import pyarrow as pa
from sqlglot import exp

from fhirlake.errors import InputDataError
from fhirlake.sof.compiler import CompiledView, compile_view
from fhirlake.sof.compiler.view import WRONG_TYPE_MESSAGE
from fhirlake.sof.engines import dialect
from fhirlake.sof.engines.duckdb import DIALECT as DUCKDB
from fhirlake.sof.engines.duckdb import parse_json, read_ndjson
from fhirlake.sof.errors import ViewEvaluationError
from fhirlake.sof.inputs import find_files, scan_lines
from fhirlake.sof.model import ViewDefinition, load_view, parse_view

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["RunResult", "diagnose", "run_view", "view_query"]

ViewLike: TypeAlias = ViewDefinition | CompiledView | Mapping[str, Any] | str | Path
# On Spark, also a Spark DataFrame of resource JSON (pyspark is only imported for type checking).
Source: TypeAlias = "str | Path | Sequence[str | Path] | pa.Table | duckdb.DuckDBPyRelation | DataFrame"

# DuckDB's default largest JSON object is 16 MB; a larger one (a big Bundle-like resource) makes
# the run retry with this. Not the default: a large buffer per thread slows every read down.
_LARGE_OBJECT_SIZE = 512 * 1024 * 1024


@dataclass(frozen=True)
class RunResult:
    """What a run produced. ``table`` is set when no output file was asked for.

    ``resources_in`` / ``resources_out`` / ``quarantined`` are counted when lines were checked
    (``skip_invalid``); otherwise they are None.
    """

    rows: int
    table: pa.Table | None = None
    output: Path | None = None
    resources_in: int | None = None
    resources_out: int | None = None
    quarantined: int | None = None
    quarantine: Path | None = None


def as_compiled(view: ViewLike) -> CompiledView:
    """Accept a compiled view, a parsed one, a dict, or a path to a JSON file."""
    if isinstance(view, CompiledView):
        return view
    if isinstance(view, ViewDefinition):
        return compile_view(view)
    if isinstance(view, str | Path):
        return compile_view(load_view(view))
    return compile_view(parse_view(view))


def run_view(
    view: ViewLike,
    source: Source,
    *,
    output: str | Path | None = None,
    skip_invalid: bool = False,
    quarantine: str | Path | None = None,
    connection: duckdb.DuckDBPyConnection | None = None,
    resource_column: str = "resource",
    engine: str = "duckdb",
    master: str | None = None,
) -> RunResult:
    """Run ``view`` over ``source`` and return the rows (or write them to ``output`` Parquet).

    ``source`` is a folder (a Bulk Data export), an NDJSON file or a list of them, or a
    pyarrow Table / DuckDB relation with a ``resource_column`` of resource JSON text. For a
    relation, rows of other resource types are skipped, as the specification says; in files,
    they are an error (or quarantined with ``skip_invalid``).

    ``engine="spark"`` runs the same compiled view on Spark (the ``spark`` extra; ``master``
    as for :func:`fhirlake.spark.spark_session`, default ``local[1]``). There ``source`` may
    also be a silver Delta table folder or a Spark DataFrame, and ``output`` is written as a
    folder of Parquet files, Spark's way; ``skip_invalid`` and ``connection`` are DuckDB's.

    >>> result = run_view(view_json, "export/")                    # doctest: +SKIP
    >>> run_view(view_json, "export/", output="patient.parquet")   # doctest: +SKIP
    >>> run_view(view_json, "lake/silver/Patient", engine="spark", master="local[2]")  # doctest: +SKIP
    """
    compiled = as_compiled(view)
    if engine != "duckdb":
        return _run_elsewhere(compiled, source, engine, output=output, master=master, skip_invalid=skip_invalid,
                              resource_column=resource_column)
    con = connection if connection is not None else duckdb.connect()
    try:
        if isinstance(source, pa.Table | duckdb.DuckDBPyRelation):
            query = compiled.query(_relation_source(compiled, con, source, resource_column))
            try:
                return _execute(con, query, output)
            except duckdb.Error as exc:
                raise _evaluation_error(exc) from exc
        if not isinstance(source, str | Path | Sequence):
            raise TypeError(f"run_view on duckdb reads files, a pyarrow Table or a DuckDB relation, not {type(source).__name__}"
                            " (a Spark DataFrame needs engine='spark')")
        files = find_files(source, compiled.view.resource)
        if not files:  # a Bulk export leaves out the types it has no resources of
            result = _execute(con, compiled.query(_empty_source(compiled)), output)
            return replace(result, resources_in=0, resources_out=0, quarantined=0) if skip_invalid else result
        if skip_invalid:
            return _run_checked(con, compiled, files, output, quarantine)
        try:
            return _execute_files(con, compiled, files, output, strict=True)
        except duckdb.Error as exc:
            raise diagnose(str(exc), files, compiled.view.resource) from exc
    finally:
        if connection is None:
            con.close()


def resources_table(resources: Iterable[Mapping[str, Any]], column: str = "resource") -> pa.Table:
    """A pyarrow Table with one column of resource JSON text, for :func:`run_view`."""
    return pa.table({column: pa.array([orjson.dumps(r).decode() for r in resources], pa.string())})


def view_query(
    view: ViewLike, source: exp.Expression, *, resource_column: str = "resource", carry: Mapping[str, str] | None = None
) -> exp.Select:
    """The view's SELECT over ``source``, any table expression with resource JSON text in ``resource_column``.

    ``source`` is a sqlglot table expression: a table name or a table function such as
    ``read_parquet([...])``. Rows of other resource types are skipped. ``carry`` maps output
    column names to columns of ``source`` copied unchanged into each output row, after the
    view's columns (a key to merge the rows by, for instance).

    >>> query = view_query(view, exp.to_table("silver"), carry={"_key": "resource_key"})  # doctest: +SKIP
    """
    compiled = as_compiled(view)
    carried = {name: f"__carried_{index}" for index, name in enumerate(carry or {})}
    projections: list[exp.Expr] = [exp.Unnest(expressions=[parse_json(exp.column(resource_column, quoted=True), compiled.read_structure)])]
    projections += [exp.alias_(exp.column(column, quoted=True), carried[name], quoted=True) for name, column in (carry or {}).items()]
    table = source if isinstance(source, exp.Table | exp.Subquery) else exp.Table(this=source)
    inner = exp.select(*projections).from_(table)
    return compiled.carrying(carried).query(inner.subquery())


def read_json_source(compiled: CompiledView, files: Sequence[Path], *, large_objects: bool = False) -> exp.Expression:
    """DuckDB's ``read_json`` of ``files`` with exactly the columns the view reads."""
    return read_ndjson(files, compiled.read_columns, max_object_size=_LARGE_OBJECT_SIZE if large_objects else None)


def _execute_files(
    con: duckdb.DuckDBPyConnection, compiled: CompiledView, files: Sequence[Path], output: str | Path | None, *, strict: bool
) -> RunResult:
    """Run over NDJSON files; retry with a larger object limit when a resource exceeds 16 MB."""
    try:
        return _execute(con, compiled.query(read_json_source(compiled, files), strict=strict), output)
    except duckdb.Error as exc:
        if "maximum_object_size" not in str(exc):
            raise
    return _execute(con, compiled.query(read_json_source(compiled, files, large_objects=True), strict=strict), output)


def _relation_source(
    compiled: CompiledView, con: duckdb.DuckDBPyConnection, source: pa.Table | duckdb.DuckDBPyRelation, column: str
) -> exp.Expression:
    """Resource JSON text in ``column`` of a relation, parsed into the view's columns."""
    name = "__fhirlake_input"
    if isinstance(source, duckdb.DuckDBPyRelation):
        source = source.to_arrow_table()  # it may belong to another connection
    con.register(name, source)
    text = exp.column(column, quoted=True)
    resource_type = exp.JSONExtractScalar(this=text, expression=exp.Literal.string("$.resourceType"))
    inner = (
        exp.select(exp.Unnest(expressions=[parse_json(text, compiled.read_structure)]))
        .from_(name)
        .where(exp.EQ(this=resource_type, expression=exp.Literal.string(compiled.view.resource)))
    )
    return inner.subquery()


def _execute(con: duckdb.DuckDBPyConnection, query: exp.Select, output: str | Path | None) -> RunResult:
    text = query.sql(dialect=DUCKDB)
    if output is None:
        table = con.sql(text).to_arrow_table()
        return RunResult(rows=table.num_rows, table=table)
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written next to the target, then renamed: a reader never sees half a file.
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        copy = exp.Copy(
            this=exp.Subquery(this=query),
            kind=False,
            files=[exp.Literal.string(temp_name)],
            params=[exp.CopyParameter(this=exp.var("FORMAT"), expression=exp.var("PARQUET")),
                    exp.CopyParameter(this=exp.var("COMPRESSION"), expression=exp.var("ZSTD"))],
        )
        written = con.execute(copy.sql(dialect=DUCKDB)).fetchall()
        rows = int(written[0][0]) if written else 0
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return RunResult(rows=rows, output=target)


def _run_checked(
    con: duckdb.DuckDBPyConnection, compiled: CompiledView, files: Sequence[Path],
    output: str | Path | None, quarantine: str | Path | None,
) -> RunResult:
    """Check every line first; run the view over the good ones, quarantine the others."""
    if quarantine is None:
        base = Path(output) if output is not None else Path(tempfile.gettempdir()) / compiled.view.resource
        quarantine = base.with_name(base.name + ".quarantine.ndjson")
    quarantine_path = Path(quarantine)
    resources_in = resources_out = quarantined = 0
    with tempfile.TemporaryDirectory(prefix="fhirlake-") as workdir:
        good = Path(workdir) / f"{compiled.view.resource}.ndjson"
        with good.open("wb") as good_file, quarantine_path.open("wb") as bad_file:
            for path, number, line, problem in scan_lines(files, compiled.view.resource):
                resources_in += 1
                if problem is None:
                    resources_out += 1
                    good_file.write(line + b"\n")
                else:
                    quarantined += 1
                    record = {"file": str(path), "line": number, "reason": problem, "text": line.decode("utf-8", "replace")}
                    bad_file.write(orjson.dumps(record) + b"\n")
        try:
            if resources_out:
                result = _execute_files(con, compiled, [good], output, strict=False)
            else:
                result = _execute(con, compiled.query(_empty_source(compiled)), output)
        except duckdb.Error as exc:
            raise _evaluation_error(exc) from exc
    return RunResult(
        rows=result.rows, table=result.table, output=result.output, resources_in=resources_in,
        resources_out=resources_out, quarantined=quarantined, quarantine=quarantine_path,
    )


def _empty_source(compiled: CompiledView) -> exp.Expression:
    """A relation with the view's read columns and no rows."""
    columns = [exp.alias_(exp.Cast(this=exp.null(), to=exp.DataType.build(t, dialect="duckdb")), n, quoted=True)
               for n, t in compiled.read_columns.items()]
    return exp.select(*columns).where(exp.false()).subquery()


def diagnose(message: str, files: Sequence[Path], resource_type: str) -> Exception:
    """After an engine failed with ``message``: find the first unusable line and name it, else
    explain the error."""
    for path, number, _line, problem in scan_lines(files, resource_type):
        if problem is not None:
            return InputDataError(str(path), number, problem)
    if WRONG_TYPE_MESSAGE in message:  # cannot happen once every line passed the scan
        return InputDataError(str(files[0]), 0, "a resource of another type")
    return _evaluation_error(message)


def _run_elsewhere(
    compiled: CompiledView, source: Source, engine: str, *, output: str | Path | None, master: str | None,
    skip_invalid: bool, resource_column: str,
) -> RunResult:
    """Run on another engine than DuckDB (only Spark today)."""
    dialect(engine)  # an unknown engine is a ValueError naming the known ones
    if skip_invalid:
        raise ValueError("skip_invalid is only available on the duckdb engine")
    from fhirlake.sof.spark_engine import run_view_spark

    return run_view_spark(compiled, source, output=output, master=master, resource_column=resource_column)


def _evaluation_error(exc: duckdb.Error | str) -> ViewEvaluationError:
    message = str(exc).split("\n")[0]
    for prefix in ("Invalid Input Error: ", "Conversion Error: "):
        message = message.replace(prefix, "")
    return ViewEvaluationError(message)
