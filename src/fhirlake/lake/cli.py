"""``fhirlake lake ingest|build|optimize|vacuum|status`` and ``fhirlake sql``.

The lake is ``--lake`` (or ``$FHIRLAKE_LAKE``, else ``./.fhirlake``)::

    fhirlake lake ingest exports/2025-07-01 --source hospital-a
    fhirlake lake status
    fhirlake lake build                       # after adding or changing a view
    fhirlake lake build --force --engine spark --master spark://head:7077
    fhirlake sql "SELECT gender, count(*) FROM gold.patient GROUP BY ALL"

The lake engine (DuckDB, deltalake, polars) is imported when a command runs, not for ``--help``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from fhirlake.lake._build import Engine
    from fhirlake.lake._lake import Lake

__all__ = ["lake_group", "sql_command"]

_LAKE = click.option("--lake", "root", envvar="FHIRLAKE_LAKE", default=None, metavar="PATH|URI",
                     help="The lake root (default: $FHIRLAKE_LAKE, else ./.fhirlake).")
_VIEWS = click.option("--views", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
                      help="The ViewDefinition folder (default: sql_on_fhir_views/).")


def connect(root: str | None, *, as_of: str | None = None, read_only: bool = True, views: Path | None = None) -> Lake:
    """:func:`fhirlake.lake.connect`, imported on first use."""
    from fhirlake.lake._lake import connect as connect_lake

    return connect_lake(root, as_of=as_of, read_only=read_only, views=views)


@click.group("lake")
def lake_group() -> None:
    """The lakehouse: ingest exports into silver and gold Delta tables, show its state."""


@lake_group.command("ingest")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--source", required=True, help="Name of the source (hospital, server) the export comes from.")
@click.option("--export-id", default=None, help="Id of the export (default: the folder's name).")
@click.option("--deleted", multiple=True, metavar="TYPE/ID", help="A deleted resource, besides the manifest's deleted[].")
@click.option("--allow-raw", is_flag=True,
              help="Ingest a batch that fhirlake pseudonymize did not make (real identifiers reach the lake; "
                   "lake status will say so).")
@_LAKE
@_VIEWS
def ingest_command(folder: Path, source: str, export_id: str | None, deleted: tuple[str, ...], allow_raw: bool,
                   root: str | None, views: Path | None) -> None:
    """Merge a pseudonymised batch FOLDER (the output of fhirlake pseudonymize) into the lake.

    Exits non-zero, with a one-line reason, on a file whose name is not a resource type, an
    empty file the manifest counts, or a batch that was not pseudonymised (unless --allow-raw).
    """
    from fhirlake.progress import status

    with connect(root, read_only=False, views=views) as lake, status("ingest") as say:
        report = lake.ingest(folder, source=source, export_id=export_id, deleted=deleted, allow_raw=allow_raw,
                             progress=say)
    click.echo("\n".join(report.lines()))


@lake_group.command("build")
@click.option("--view", "names", multiple=True, help="Only this view (repeatable).")
@click.option("--force", is_flag=True, help="Rebuild even when the view has not changed.")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
              help="Compute the rows in this process (DuckDB) or on Spark (needs the spark extra and Java 17).")
@click.option("--master", default=None, metavar="URL",
              help="With --engine spark: the Spark master (local[N], spark://host:7077, yarn; default local[1]).")
@_LAKE
@_VIEWS
def build_command(names: tuple[str, ...], force: bool, engine: Engine, master: str | None, root: str | None,
                  views: Path | None) -> None:
    """Rebuild gold tables from silver (those whose view changed, or all with --force)."""
    if master and engine != "spark":
        raise click.UsageError("--master needs --engine spark")
    with connect(root, read_only=False, views=views) as lake:
        report = lake.build(list(names) or None, force=force, engine=engine, master=master)
    click.echo("\n".join(report.lines()))


@lake_group.command("optimize")
@click.option("--view", "names", multiple=True, help="Only this view's table (repeatable).")
@click.option("--force", is_flag=True, help="Rewrite every partition, not only those with several files.")
@_LAKE
@_VIEWS
def optimize_command(names: tuple[str, ...], force: bool, root: str | None, views: Path | None) -> None:
    """Compact gold tables: few files per partition, rows in code order (faster queries, same rows)."""
    with connect(root, read_only=False, views=views) as lake:
        from fhirlake.progress import status

        with status("optimize") as say:
            report = lake.optimize(list(names) or None, force=force, progress=say)
        click.echo("\n".join(report.lines()))


@lake_group.command("vacuum")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@_LAKE
def vacuum_command(dry_run: bool, root: str | None) -> None:
    """Remove files no snapshot reads: left by interrupted runs (earlier snapshots keep theirs)."""
    with connect(root, read_only=False) as lake:
        click.echo("\n".join(lake.vacuum(dry_run=dry_run).lines()))


@lake_group.command("status")
@_LAKE
def status_command(root: str | None) -> None:
    """Tables (rows, versions, files), and the last export and watermark of each source."""
    with connect(root) as lake:
        click.echo("\n".join(lake.status().lines()))


@click.command("sql")
@click.argument("query")
@click.option("--as-of", default=None, help="A snapshot id, export id or ISO time: query the lake as it was then.")
@click.option("--max-rows", default=50, show_default=True, help="Rows to print.")
@_LAKE
def sql_command(query: str, as_of: str | None, max_rows: int, root: str | None) -> None:
    """Run a SQL QUERY on the lake's catalog (gold.*, silver.*, fhirlake.*) and print the result.

    Exact answers for a trusted user: every query is written to the lake's audit log (who, the
    SQL, the rows returned; never a value)."""
    import polars as pl

    from fhirlake.audit.trail import audit_trusted_sql

    with connect(root, as_of=as_of) as lake:
        local = lake.storage.local
        try:
            frame = lake.sql(query)
        except Exception as exc:
            if local:
                audit_trusted_sql(lake.storage.root, query, rows=None, error=type(exc).__name__)
            raise
        if local:
            audit_trusted_sql(lake.storage.root, query, rows=frame.height, error=None)
    with pl.Config(tbl_rows=max_rows, tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=200):
        click.echo(frame)
