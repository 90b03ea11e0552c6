"""``fhirlake view``: run, validate and show the SQL of ViewDefinitions.

The compiler and the runner (sqlglot, DuckDB, pyarrow) are imported inside each command, so
``fhirlake view --help`` starts at once; pyspark only when ``--engine spark`` is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import pyarrow as pa
    from rich.console import Console

__all__ = ["print_table", "view_group"]


@click.group("view")
def view_group() -> None:
    """Run SQL-on-FHIR v2 ViewDefinitions (a file, or a name from sql_on_fhir_views/)."""


@view_group.command("run")
@click.argument("view")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "output", type=click.Path(path_type=Path),
              help="Write the rows to this Parquet file (on Spark: a folder of Parquet files).")
@click.option("--skip-invalid", is_flag=True, help="Quarantine unusable lines instead of stopping at the first (DuckDB).")
@click.option("--quarantine", type=click.Path(path_type=Path), help="Where quarantined lines go (NDJSON).")
@click.option("--limit", default=20, show_default=True, help="Rows to print when not writing a file.")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
              help="Run on DuckDB, or on Spark (the spark extra and Java 17).")
@click.option("--master", help="Spark master URL with --engine spark (local[N], spark://host:7077, yarn...); default local[1].")
def run_command(
    view: str, source: Path, output: Path | None, skip_invalid: bool, quarantine: Path | None, limit: int,
    engine: str, master: str | None,
) -> None:
    """Run VIEW over SOURCE (a Bulk Data export folder or NDJSON files; on Spark, also a silver
    Delta table folder such as LAKE/silver/Patient)."""
    from rich.console import Console

    from fhirlake.sof.library import resolve_view
    from fhirlake.sof.runner import run_view

    if engine != "spark" and master is not None:
        raise click.UsageError("--master needs --engine spark")
    if engine == "spark" and (skip_invalid or quarantine is not None):
        raise click.UsageError("--skip-invalid and --quarantine are only available on the duckdb engine")
    _, definition = resolve_view(view)
    result = run_view(definition, source, output=output, skip_invalid=skip_invalid, quarantine=quarantine,
                      engine=engine, master=master)
    console = Console()
    if result.table is not None:
        print_table(console, definition.name or view, result.table, limit)
    else:
        console.print(f"wrote {result.rows} rows to {result.output}")
    if result.resources_in is not None:
        console.print(
            f"resources in: {result.resources_in}  out: {result.resources_out}  "
            f"quarantined: {result.quarantined}" + (f" ({result.quarantine})" if result.quarantined else "")
        )


@view_group.command("validate")
@click.argument("views", nargs=-1)
def validate_command(views: tuple[str, ...]) -> None:
    """Parse and compile VIEWS (default: every view of the library); report the first error."""
    from fhirlake.sof.compiler import compile_view
    from fhirlake.sof.library import resolve_view, view_files

    paths = list(views) or [str(p) for p in view_files()]
    for name in paths:
        path, definition = resolve_view(name)
        compiled = compile_view(definition)
        click.echo(f"ok  {path}  ({definition.resource}, {len(compiled.columns)} columns)")


@view_group.command("sql")
@click.argument("view")
@click.option("--source", type=click.Path(exists=True, path_type=Path), help="Show the SQL reading these NDJSON files (DuckDB).")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
              help="The engine whose SQL to print.")
def sql_command(view: str, source: Path | None, engine: str) -> None:
    """Print the SQL that VIEW compiles to for an engine (DuckDB by default), formatted."""
    from fhirlake.sof.compiler import compile_view
    from fhirlake.sof.inputs import find_files
    from fhirlake.sof.library import resolve_view
    from fhirlake.sof.runner import read_json_source

    if source is not None and engine != "duckdb":
        raise click.UsageError("--source shows DuckDB's read_json; on Spark the view reads a relation of resources")
    _, definition = resolve_view(view)
    compiled = compile_view(definition)
    relation = read_json_source(compiled, find_files(source, definition.resource)) if source else None
    click.echo(compiled.sql(relation, engine=engine))


@view_group.command("dictionary")
@click.option("--out", "output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the Markdown here (docs/data-dictionary.md) instead of printing it.")
@click.option("--check", is_flag=True, help="Exit 1 if --out differs from a fresh generation (for CI).")
def dictionary_command(output: Path | None, check: bool) -> None:
    """The data dictionary of the view library (every gold table and column), as Markdown."""
    # Imported here: the dictionary includes what the lake adds (_source, derived columns).
    from fhirlake.lake.dictionary import REGENERATE, data_dictionary

    text = data_dictionary()
    if output is None:
        if check:
            raise click.UsageError("--check compares with a file: give --out PATH")
        click.echo(text, nl=False)
    elif check:
        current = output.read_text(encoding="utf-8") if output.is_file() else ""
        if current != text:
            click.echo(f"{output} is out of date; regenerate it with: {REGENERATE}", err=True)
            raise SystemExit(1)
        click.echo(f"{output} is current")
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")


def print_table(console: Console, title: str, table: pa.Table, limit: int) -> None:
    """Print the first ``limit`` rows of an Arrow table, as polars shows a DataFrame."""
    import polars as pl

    frame = pl.from_arrow(table.slice(0, limit))
    assert isinstance(frame, pl.DataFrame)
    console.print(f"[bold]{title}[/bold] ({table.num_rows:,} rows)")
    with pl.Config(tbl_rows=limit, tbl_cols=12, fmt_str_lengths=14, tbl_width_chars=max(console.width, 200),
                   tbl_hide_dataframe_shape=True):
        console.print(str(frame), markup=False, highlight=False, soft_wrap=True)
