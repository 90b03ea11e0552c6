"""``fhirlake demo``: the main job on an embedded default, from nothing to printed tables.

It generates a small synthetic Bulk Data export (``fhirlake synth``), flattens it through
every ViewDefinition of ``sql_on_fhir_views/`` into Parquet, and prints each table. Everything
goes under one work folder (``.fhirlake/demo`` by default) and is rebuilt on every run.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import click
from rich.console import Console

from fhirlake.sof import load_view, run_view
from fhirlake.sof.cli import print_table
from fhirlake.sof.library import view_files

__all__ = ["demo_command", "run_demo"]

_SHOWN = ("patient", "condition", "observation")  # the tables printed in full after the counts


def run_demo(workdir: Path, *, patients: int, seed: int, console: Console, rows_shown: int = 5) -> dict[str, int]:
    """Generate data, flatten it through the view library, print the tables; return row counts."""
    from fhirlake.synth import generate  # imported here: the demo is the only caller

    export = workdir / "export"
    gold = workdir / "gold"
    if workdir.exists():
        shutil.rmtree(workdir)
    started = time.perf_counter()
    report = generate(export, patients=patients, seed=seed)
    resources = sum(report.counts.values())
    console.print(f"[bold]1. synthetic export[/bold]: {patients} patients, {resources:,} resources in {export}")
    counts: dict[str, int] = {}
    console.print(f"[bold]2. flatten[/bold]: {len(view_files())} views from sql_on_fhir_views/ into {gold}")
    for path in view_files():
        view = load_view(path)
        result = run_view(view, export, output=gold / f"{path.stem}.parquet")
        counts[path.stem] = result.rows
    import pyarrow.parquet as pq

    console.print("  " + ", ".join(f"{name}: {rows:,} rows" for name, rows in counts.items()))
    for name in _SHOWN:
        if name in counts:
            print_table(console, name, pq.read_table(gold / f"{name}.parquet"), rows_shown)
    console.print(f"done in {time.perf_counter() - started:.1f} s")
    return counts


@click.command("demo")
@click.option("--patients", default=200, show_default=True, help="How many synthetic patients.")
@click.option("--seed", default=1, show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), default=Path(".fhirlake/demo"), show_default=True)
def demo_command(patients: int, seed: int, workdir: Path) -> None:
    """Run the main job on built-in synthetic data and print the resulting tables."""
    run_demo(workdir, patients=patients, seed=seed, console=Console())
