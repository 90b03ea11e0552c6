"""``fhirlake demo``: the whole chain on synthetic hospitals, through Dagster, in a few minutes.

1. ``fhirlake synth`` makes two hospitals' data: ``site-a`` (English) and ``site-b`` (French);
2. each is served by an embedded FHIR Bulk Data server on 127.0.0.1 (one server per site, as
   two hospitals would have);
3. the Dagster code location (``pipelines/``) runs ``full_export`` in this process for each
   source partition: bronze export → pseudonymised → silver → one gold table per view →
   catalog, with every asset check;
4. a summary: tables and rows, a sample cohort count, the privacy report, and how to open the
   Dagster UI, the notebooks and the MCP server.

The lake is built at the default lake root (``$FHIRLAKE_LAKE``, else ``./.fhirlake``) so that
``fhirlake.connect()`` opens it afterwards. A demo lake carries a marker file and is rebuilt on
every run; a folder without the marker is never touched (choose another with ``--lake``). The
hospitals' raw data is kept in ``<lake>/_demo/``; Dagster's run history goes to
``./.dagster_home`` (both git-ignored). Without ``FHIRLAKE_PSEUDONYM_KEY`` a random key is made
for this run only (never written anywhere).

This module imports Dagster and ``pipelines`` only when the demo runs: ``fhirlake`` stays
importable without them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import textwrap
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fhirlake.errors import ConfigurationError

if TYPE_CHECKING:
    import dagster as dg
    from rich.console import Console

    from fhirlake.serving.answers import BreakdownAnswer

__all__ = ["DEMO_MARKER", "DemoResult", "build_demo_lake", "demo_command"]

DEMO_MARKER = ".fhirlake-demo"
SITES = (("site-a", "en"), ("site-b", "fr"))
_KEY_ENV = "FHIRLAKE_PSEUDONYM_KEY"
_DIABETES = {"criteria": {"kind": "condition", "codes": ["44054006"]}}  # type 2 diabetes (SNOMED)


@dataclass
class DemoResult:
    """What a demo run made: the lake, per-source success, stage timings (seconds)."""

    lake: Path
    sources: dict[str, bool]
    errors: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return all(self.sources.values())


def prepare_lake(lake: Path) -> None:
    """Make ``lake`` an empty demo lake: refuse a non-empty folder that is not one."""
    if lake.exists() and any(lake.iterdir()):
        if not (lake / DEMO_MARKER).is_file():
            raise ConfigurationError(
                f"{lake} holds a lake (or other files) the demo did not create; it is left alone: "
                "choose an empty or demo folder with --lake PATH (or FHIRLAKE_LAKE)")
        shutil.rmtree(lake)
    lake.mkdir(parents=True, exist_ok=True)
    (lake / DEMO_MARKER).write_text("made by `fhirlake demo`; rebuilt by every demo run\n", encoding="utf-8")


@contextmanager
def _servers(hospitals: dict[str, Path]) -> Iterator[dict[str, str]]:
    from fhirlake.bulkserver import BackgroundServer, BulkServerConfig

    with ExitStack() as stack:
        yield {site: stack.enter_context(BackgroundServer(BulkServerConfig(data_dir=folder))).base_url
               for site, folder in hospitals.items()}


def build_demo_lake(
    lake: Path, *, patients: int, seed: int, key: str, text: bool = True,
    instance: dg.DagsterInstance | None = None, console: Console | None = None,
) -> DemoResult:
    """Generate the hospitals, serve them, run the chain through Dagster into ``lake``.

    ``lake`` must be empty or a demo lake (see :func:`prepare_lake`). ``text=False`` redacts
    free text instead of running Presidio (faster; for tests of the plumbing).
    """
    from pipelines.definitions import build_definitions
    from pipelines.resources import PseudonymizerResource
    from pipelines.run import SourceRun, run_sources
    from pipelines.settings import PipelineSettings

    from fhirlake.bulk import load_sources
    from fhirlake.synth import generate

    say = console.print if console is not None else (lambda *_a, **_k: None)
    prepare_lake(lake)
    work = lake / "_demo"
    timings: dict[str, float] = {}
    started = time.perf_counter()
    hospitals = {}
    for index, (site, locale) in enumerate(SITES):
        count = patients // len(SITES) + (1 if index < patients % len(SITES) else 0)
        hospitals[site] = work / "hospitals" / site
        generate(hospitals[site], patients=max(count, 1), seed=seed + index, locale=locale, workers=1)
    timings["synth"] = time.perf_counter() - started
    say(f"[bold]1. synthetic hospitals[/bold] ({timings['synth']:.1f} s): "
        + ", ".join(f"{site} ({locale}, {hospitals[site]})" for site, locale in SITES), highlight=False)
    with _servers(hospitals) as urls:
        sources_file = work / "sources.yaml"
        sources_file.write_text(json.dumps({"sources": {s: {"url": u} for s, u in urls.items()}}, indent=2),
                                encoding="utf-8")
        say("[bold]2. embedded Bulk Data servers[/bold]: " + ", ".join(f"{s} {u}" for s, u in urls.items()),
            highlight=False)
        settings = PipelineSettings(lake=lake, sources_file=sources_file, sources=load_sources(sources_file),
                                    drop_dir=work / "drop")
        defs = build_definitions(settings, pseudonymizer=PseudonymizerResource(key=key, text=text))
        say("[bold]3. Dagster[/bold]: full_export per source (bronze → pseudonymised → silver → "
            "13 gold views → catalog, with the asset checks)…")
        outcome: dict[str, SourceRun] = {}
        for site in urls:
            begun = time.perf_counter()
            outcome |= run_sources(defs, [site], full=True, instance=instance)
            timings[f"run {site}"] = time.perf_counter() - begun
            state = "[green]ok[/green]" if outcome[site].success else "[red]failed[/red]"
            say(f"   {site}: {state} in {timings[f'run {site}']:.1f} s (run {outcome[site].run_id[:8]})")
        if any(run.success for run in outcome.values()):
            begun = time.perf_counter()
            optimized = defs.resolve_job_def("optimize_lake").execute_in_process(
                instance=instance, raise_on_error=False, run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
            timings["optimize"] = time.perf_counter() - begun
            state = "[green]ok[/green]" if optimized.success else "[red]failed[/red]"
            say(f"   optimize_lake (gold compacted, rows in code order): {state} in {timings['optimize']:.1f} s", highlight=False)
    timings["total"] = time.perf_counter() - started
    errors = {s: r.error or f"failed checks: {', '.join(r.failed_checks)}" for s, r in outcome.items() if not r.success}
    return DemoResult(lake, {s: r.success for s, r in outcome.items()}, errors, timings)


def print_summary(console: Console, result: DemoResult, *, dagster_home: Path | None) -> None:
    """Tables and rows, a cohort count, the privacy report, and where to go next."""
    from rich.table import Table

    import fhirlake
    from fhirlake.serving import K_DEFAULT

    with fhirlake.connect(result.lake) as lake:
        tables = lake.tables()
    table = Table("table", "rows", "description", title="4. the lake (gold and silver)", title_justify="left")
    for name, layer, rows, *_rest, description in tables.iter_rows():
        if layer == "gold":
            table.add_row(str(name), f"{rows:,}", textwrap.shorten(str(description), 70, placeholder=" …"))
    silver = tables.filter(tables["layer"] == "silver")
    table.add_row("silver.*", f"{int(silver['rows'].sum()):,}", f"{silver.height} resource types")
    console.print(table)
    answer = sample_cohort(result.lake)
    by_source = ", ".join(f"{cell.dimensions['source']}: {cell.patients.shown}" for cell in answer.cells)
    console.print(f"[bold]5. sample cohort[/bold], as the MCP server answers it: patients with type 2 diabetes "
                  f"(SNOMED 44054006): {answer.total.shown}" + (f" ({by_source})" if by_source else "")
                  + f"; counts under {K_DEFAULT} show as <{K_DEFAULT}", highlight=False)
    console.print("[bold]6. privacy report[/bold] (per source, from <lake>/pseudonymised/<source>/<export>/):")
    for report_path in sorted(result.lake.glob("pseudonymised/*/*/privacy-report.json")):
        report = json.loads(report_path.read_text(encoding="utf-8"))
        records, text_stats = report["records"], report["text"]
        console.print(
            f"   {report_path.parts[-3]}: {report['patients']} patients, {records['in']:,} records in, "
            f"{records['out']:,} out, {records['quarantined']} quarantined; "
            + (f"{sum(text_stats['entities_replaced'].values()):,} names/identifiers replaced in free text; "
               if text_stats["enabled"] else "free text redacted whole (--no-text); ")
            + f"key id {report['key_id']}", highlight=False)
    env = f"FHIRLAKE_LAKE={result.lake} " if result.lake.resolve() != _default_lake().resolve() else ""
    console.print("[bold]next[/bold]:")
    if dagster_home is not None:
        console.print(f"   Dagster UI (the demo's runs):  DAGSTER_HOME={dagster_home} "
                      f"FHIRLAKE_SOURCES={result.lake / '_demo' / 'sources.yaml'} {env}dagster dev  "
                      "→ http://127.0.0.1:3000", highlight=False, soft_wrap=True)
    console.print(f"   notebooks:  {env}jupyter lab notebooks/   (pip install -e '.\\[notebooks]')", highlight=False)
    console.print(f"   MCP server: {env}python -m fhirlake mcp", highlight=False)
    console.print(f"   SQL:        {env}python -m fhirlake sql \"SELECT gender, count(*) FROM gold.patient GROUP BY ALL\"",
                  highlight=False, soft_wrap=True)


def sample_cohort(lake: Path) -> BreakdownAnswer:
    """Patients with type 2 diabetes by source, through the MCP server's own service (suppressed, scoped)."""
    from fhirlake.cohorts import CohortDefinition
    from fhirlake.serving import CohortService, DataScope, GoldReader, Trace

    reader = GoldReader(lake)
    try:
        cohort = CohortDefinition.model_validate(_DIABETES)
        return CohortService(reader).breakdown("demo", cohort, ["source"], DataScope(), Trace())
    finally:
        reader.close()


def _default_lake() -> Path:
    return Path(os.environ.get("FHIRLAKE_LAKE") or ".fhirlake")


def _dagster_instance(home: Path) -> dg.DagsterInstance:
    """A persistent instance in ``home`` with the project's dagster.yaml (SQLite storage)."""
    import dagster as dg
    from pipelines.settings import PROJECT_ROOT

    home.mkdir(parents=True, exist_ok=True)
    config = PROJECT_ROOT / "dagster.yaml"
    if config.is_file() and not (home / "dagster.yaml").exists():
        shutil.copyfile(config, home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


@click.command("demo")
@click.option("--patients", default=100, show_default=True, help="Synthetic patients (split over the two sites).")
@click.option("--seed", default=1, show_default=True)
@click.option("--lake", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Lake root [default: $FHIRLAKE_LAKE, else ./.fhirlake]; must be empty or a demo lake.")
@click.option("--no-text", is_flag=True, help="Redact free text instead of running Presidio (faster).")
def demo_command(patients: int, seed: int, lake: Path | None, no_text: bool) -> None:
    """Run the whole chain (synth → Bulk export → pseudonymise → lake) through Dagster and summarise it."""
    from rich.console import Console

    console = Console(soft_wrap=True)
    root = lake or _default_lake()
    prepare_lake(root)  # refuse early, before any work
    key = os.environ.get(_KEY_ENV, "").strip()
    if not key:
        key = secrets.token_hex(32)
        console.print(f"{_KEY_ENV} is not set: using a random key for this demo run only (not saved; "
                      "pseudonyms will differ from run to run)")
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").resolve()
    result = build_demo_lake(root, patients=patients, seed=seed, key=key, text=not no_text,
                             instance=_dagster_instance(home), console=console)
    if not result.success:
        for source, error in result.errors.items():
            console.print(f"[red]{source}[/red]: {error}", highlight=False)
        raise ConfigurationError(f"the demo chain failed for {', '.join(result.errors)}; see the Dagster run logs "
                                 f"(DAGSTER_HOME={home} dagster dev)")
    print_summary(console, result, dagster_home=home)
    console.print(f"done in {result.timings['total']:.0f} s")


