"""``fhirlake demo``: the whole chain on synthetic hospitals, through Dagster, in a few minutes.

1. ``fhirlake synth`` makes two hospitals' data: ``site-a`` (English) and ``site-b`` (French);
2. each is served by an embedded FHIR Bulk Data server on 127.0.0.1 (one server per site, as
   two hospitals would have);
3. the Dagster code location (``pipelines/``) runs ``full_export`` in this process for each
   source partition: bronze export → pseudonymised → silver → one gold table per view →
   catalog, with every asset check;
4. a summary: tables and rows, a sample cohort count, the privacy report, and how to open the
   Dagster UI, the notebooks and the MCP server.

The demo never harms what it did not make. Its lake is its own folder, ``./.fhirlake-demo``
by default (``--lake`` to choose another), never the user's lake; a demo lake carries a marker
and is rebuilt by the next run only if everything in it is the demo's own (its two sources,
its folders): a folder holding anything else is left alone, untouched, with the reason.
``fhirlake.connect()`` opens the demo lake read-only when there is no other lake around.

One Ctrl-C stops the demo cleanly (the servers stop, forked workers stay quiet, the half-built
demo lake is left for the next run to rebuild). Each stage shows a spinner and its time on a
terminal, and one line per stage otherwise.

For the Dagster UI afterwards, the demo leaves what the code location needs under
``<lake>/_demo/``: each hospital's data as a ready batch of a *file source* in ``drop/`` (the
embedded servers stop with the demo), a sources file without Bulk servers, and, when
``FHIRLAKE_PSEUDONYM_KEY`` was not set, the random key it made (``pseudonym.key``, readable by
the owner only; synthetic data only), so the command it prints works as printed.
Dagster's run history goes to ``./.dagster_home`` (git-ignored).

This module imports Dagster and ``pipelines`` only when the demo runs: ``fhirlake`` stays
importable without them.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from fhirlake.errors import ConfigurationError

if TYPE_CHECKING:
    import dagster as dg
    from rich.console import Console

    from fhirlake.serving.answers import BreakdownAnswer

__all__ = [
    "DEMO_MARKER", "DemoResult", "build_demo_lake", "dagster_command", "dagster_environment", "demo_command",
    "prepare_lake",
]

DEMO_MARKER = ".fhirlake-demo"
DEFAULT_DEMO_LAKE = Path(".fhirlake-demo")
SITES = (("site-a", "en"), ("site-b", "fr"))
_KEY_ENV = "FHIRLAKE_PSEUDONYM_KEY"
_DEMO_INSTANCE = "dagster-demo.yaml"
_INTERRUPTED = "DagsterExecutionInterruptedError"  # how a run Dagster stopped on Ctrl-C reports it
_DIABETES = {"criteria": {"kind": "condition", "codes": ["44054006"]}}  # type 2 diabetes (SNOMED)
# What a demo run puts at the top of its lake: the only names a rebuild may delete.
_DEMO_ENTRIES = frozenset({DEMO_MARKER, "_demo", "bronze", "pseudonymised", "silver", "gold", "catalog.duckdb",
                           "catalog.duckdb.wal", "_fhirlake", "watermarks.json",
                           "watermarks.json.lock"})
_LAKE_TEMPORARIES = (".catalog-", ".tmp-")  # left by a run the demo interrupted


@dataclass
class DemoResult:
    """What a demo run made: the lake, per-source success, stage timings (seconds)."""

    lake: Path
    sources: dict[str, bool]
    errors: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)
    key_file: Path | None = None

    @property
    def success(self) -> bool:
        return all(self.sources.values())


# ----------------------------------------------------------------------------------- the lake


def prepare_lake(lake: Path) -> None:
    """Make ``lake`` an empty demo lake, deleting only what an earlier demo run made there.

    A missing or empty folder is used as it is. A folder without the demo's marker, or whose
    marker sits beside anything the demo does not make (another file or folder, a source other
    than the demo's sites), is refused with the reason and left exactly as it was.
    """
    if lake.exists() and any(lake.iterdir()):
        foreign = _not_made_by_the_demo(lake)
        if foreign:
            raise ConfigurationError(
                f"{lake}: {foreign}; the demo deletes nothing it did not make, so the folder is left alone: "
                "choose an empty or demo folder with --lake PATH")
        for entry in lake.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    lake.mkdir(parents=True, exist_ok=True)
    (lake / DEMO_MARKER).write_text(
        json.dumps({"made_by": "fhirlake demo", "sources": [site for site, _ in SITES]}) + "\n", encoding="utf-8")


def _not_made_by_the_demo(lake: Path) -> str | None:
    """Why ``lake`` is not entirely a demo lake, or None when the demo made all of it."""
    if not (lake / DEMO_MARKER).is_file():
        return "it holds a lake or files the demo did not create (no demo marker)"
    for entry in sorted(lake.iterdir()):
        if entry.name not in _DEMO_ENTRIES and not entry.name.startswith(_LAKE_TEMPORARIES):
            return f"{entry.name} was not made by the demo"
    sites = {site for site, _ in SITES}
    for layer in ("bronze", "pseudonymised"):
        for entry in sorted((lake / layer).iterdir()) if (lake / layer).is_dir() else ():
            if entry.name not in sites:
                return f"{layer}/{entry.name} is not one of the demo's sources"
    from fhirlake.lake._log import SnapshotLog
    from fhirlake.lake._storage import Storage

    for snapshot in SnapshotLog(Storage.open(lake)).snapshots():
        if snapshot.source is not None and snapshot.source not in sites:
            return f"snapshot {snapshot.id} ingested source {snapshot.source!r}, not one of the demo's"
    return None


# ----------------------------------------------------------------------------------- progress


class _Stages:
    """One spinner per stage on a terminal (quiet otherwise), then one line with its time."""

    def __init__(self, console: Console | None) -> None:
        self.console = console

    @contextmanager
    def stage(self, title: str) -> Iterator[Callable[[str], None]]:
        """Run a stage; the yielded function sets the line printed when it ends."""
        ending = [title]
        started = time.perf_counter()
        if self.console is None:
            yield lambda text: ending.__setitem__(0, text)
            return
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                            console=self.console, transient=True, disable=not self.console.is_terminal)
        with progress:
            progress.add_task(title, total=None)
            yield lambda text: ending.__setitem__(0, text)
        self.console.print(f"{ending[0]} ({time.perf_counter() - started:.1f} s)", highlight=False)


# ----------------------------------------------------------------------------------- interrupts


class _Interrupt:
    """SIGINT for the demo: the first Ctrl-C stops it (KeyboardInterrupt in the main process);
    forked workers ignore it, so their parent stops them without a traceback from each."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.received = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self.pid:
            return
        self.received = True
        raise KeyboardInterrupt

    def check(self, error: str | None = None) -> None:
        """Stop now if a Ctrl-C arrived, also one Dagster caught during a run (it then reports
        the run failed with ``error`` naming its interruption, and would go on to the next)."""
        if self.received or (error is not None and _INTERRUPTED in error):
            self.received = True
            raise KeyboardInterrupt


@contextmanager
def _interrupts() -> Iterator[_Interrupt]:
    handler = _Interrupt()
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield handler
    finally:
        signal.signal(signal.SIGINT, previous)


# ----------------------------------------------------------------------------------- the chain


@contextmanager
def _servers(hospitals: dict[str, Path]) -> Iterator[dict[str, str]]:
    from fhirlake.bulkserver import BackgroundServer, BulkServerConfig

    with ExitStack() as stack:
        yield {site: stack.enter_context(BackgroundServer(BulkServerConfig(data_dir=folder))).base_url
               for site, folder in hospitals.items()}


def dagster_environment(lake: Path, home: Path) -> dict[str, str]:
    """The environment under which ``dagster dev`` (from the project root) shows the demo lake,
    with each site as a file source whose batch waits in ``<lake>/_demo/drop/`` (the key aside)."""
    work = lake.resolve() / "_demo"
    return {"DAGSTER_HOME": str(home), "FHIRLAKE_LAKE": str(lake.resolve()),
            "FHIRLAKE_SOURCES": str(work / "dagster-sources.yaml"),
            "FHIRLAKE_FILE_SOURCES": ",".join(site for site, _ in SITES), "FHIRLAKE_DROP_DIR": str(work / "drop")}


def dagster_command(lake: Path, home: Path, *, key_file: Path | None) -> str:
    """The shell command that opens the Dagster UI on the demo lake, runnable as printed."""
    parts = [f"{name}={shlex.quote(value)}" for name, value in dagster_environment(lake, home).items()]
    if key_file is not None:
        parts.append(f'{_KEY_ENV}="$(cat {shlex.quote(str(key_file.resolve()))})"')
    return " ".join(parts) + " dagster dev"


def build_demo_lake(
    lake: Path, *, patients: int, seed: int, key: str, text: bool = True,
    instance: dg.DagsterInstance | None = None, console: Console | None = None, save_key: bool = False,
    interrupt: _Interrupt | None = None,
) -> DemoResult:
    """Generate the hospitals, serve them, run the chain through Dagster into ``lake``.

    ``lake`` must be missing, empty or a demo lake (see :func:`prepare_lake`). ``text=False``
    redacts free text instead of running Presidio (faster; for tests of the plumbing).
    ``save_key`` keeps ``key`` in ``<lake>/_demo/pseudonym.key`` for the Dagster UI.
    """
    from fhirlake.bulk import load_sources
    from fhirlake.synth import generate
    from fhirlake_pipelines.definitions import build_definitions
    from fhirlake_pipelines.defs.resources import PseudonymizerResource
    from fhirlake_pipelines.run import SourceRun, run_sources
    from fhirlake_pipelines.settings import PipelineSettings

    stages = _Stages(console)
    check = interrupt.check if interrupt is not None else (lambda error=None: None)
    prepare_lake(lake)
    work = lake / "_demo"
    work.mkdir()
    key_file = _save_key(work, key) if save_key else None
    (work / "dagster-sources.yaml").write_text("sources: {}  # the demo's sites are file sources\n", encoding="utf-8")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    hospitals = {site: work / "drop" / site / "synthetic-1" for site, _ in SITES}
    with stages.stage("[bold]1. synthetic hospitals[/bold]") as done:
        for index, (site, locale) in enumerate(SITES):
            count = patients // len(SITES) + (1 if index < patients % len(SITES) else 0)
            generate(hospitals[site], patients=max(count, 1), seed=seed + index, locale=locale, workers=1)
            check()
        done("[bold]1. synthetic hospitals[/bold]: "
             + ", ".join(f"{site} ({locale}, {hospitals[site]})" for site, locale in SITES))
    timings["synth"] = time.perf_counter() - started
    with _servers(hospitals) as urls:
        sources_file = work / "servers.yaml"  # the embedded servers: valid while the demo runs
        sources_file.write_text(json.dumps({"sources": {s: {"url": u} for s, u in urls.items()}}, indent=2),
                                encoding="utf-8")
        if console is not None:
            console.print("[bold]2. embedded Bulk Data servers[/bold]: "
                          + ", ".join(f"{s} {u}" for s, u in urls.items()), highlight=False)
        settings = PipelineSettings(lake=lake, sources_file=sources_file, sources=load_sources(sources_file),
                                    drop_dir=work / "runtime-drop")
        defs = build_definitions(settings, pseudonymizer=PseudonymizerResource(key=key, text=text))
        if console is not None:
            console.print("[bold]3. Dagster[/bold]: full_export per source (bronze → pseudonymised → silver → "
                          "gold views → catalog, with the asset checks)")
        outcome: dict[str, SourceRun] = {}
        for site in urls:
            begun = time.perf_counter()
            with stages.stage(f"   {site}: export, pseudonymise, lake") as done:
                outcome |= run_sources(defs, [site], full=True, instance=instance, log_level="CRITICAL")
                check(outcome[site].error)
                state = "[green]ok[/green]" if outcome[site].success else "[red]failed[/red]"
                done(f"   {site}: {state} (run {outcome[site].run_id[:8]})")
            timings[f"run {site}"] = time.perf_counter() - begun
        if any(run.success for run in outcome.values()):
            begun = time.perf_counter()
            with stages.stage("   optimize_lake (gold compacted, rows in code order)") as done:
                optimized = defs.resolve_job_def("optimize_lake").execute_in_process(
                    instance=instance, raise_on_error=False,
                    run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}})
                check()
                state = "[green]ok[/green]" if optimized.success else "[red]failed[/red]"
                done(f"   optimize_lake (gold compacted, rows in code order): {state}")
            timings["optimize"] = time.perf_counter() - begun
    sources_file.unlink()  # its servers are gone
    timings["total"] = time.perf_counter() - started
    errors = {s: r.error or f"failed checks: {', '.join(r.failed_checks)}" for s, r in outcome.items() if not r.success}
    return DemoResult(lake, {s: r.success for s, r in outcome.items()}, errors, timings, key_file)


def _save_key(work: Path, key: str) -> Path:
    """The demo's random key, for the Dagster UI's runs: readable by its owner only."""
    path = work / "pseudonym.key"
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(key + "\n")
    return path


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
    env = f"FHIRLAKE_LAKE={shlex.quote(str(result.lake.resolve()))} "
    console.print("[bold]next[/bold]:")
    if dagster_home is not None:
        console.print("   Dagster UI (the demo's runs; each site is a file source with a batch ready), "
                      "from the project root:", highlight=False)
        console.print(f"      {dagster_command(result.lake, dagster_home, key_file=result.key_file)}"
                      + ("" if result.key_file is not None else f"   (with your {_KEY_ENV} set)")
                      + "  → http://127.0.0.1:3000", highlight=False, soft_wrap=True)
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


def _dagster_instance(home: Path) -> dg.DagsterInstance:
    """A persistent instance in ``home`` with the project's dagster.yaml (SQLite storage).

    The demo's own runs do not capture step output: Dagster would tail it through helper
    processes that each print a traceback on Ctrl-C. ``dagster dev`` on the same home reads
    ``dagster.yaml`` and captures as usual; the demo reads ``dagster-demo.yaml`` beside it.
    """
    import dagster as dg
    import yaml

    from fhirlake_pipelines.settings import PROJECT_ROOT

    home.mkdir(parents=True, exist_ok=True)
    config = PROJECT_ROOT / "dagster.yaml"
    if config.is_file() and not (home / "dagster.yaml").exists():
        shutil.copyfile(config, home / "dagster.yaml")
    settings = yaml.safe_load((home / "dagster.yaml").read_text(encoding="utf-8")) if (home / "dagster.yaml").is_file() else {}
    settings = settings or {}
    settings["compute_logs"] = {"module": "dagster._core.storage.noop_compute_log_manager",
                                "class": "NoOpComputeLogManager"}
    (home / _DEMO_INSTANCE).write_text(
        "# written by `fhirlake demo` for its own runs: dagster.yaml without step-output capture\n"
        + yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return dg.DagsterInstance.from_config(str(home), config_filename=_DEMO_INSTANCE)


@click.command("demo")
@click.option("--patients", default=100, show_default=True, help="Synthetic patients (split over the two sites).")
@click.option("--seed", default=1, show_default=True)
@click.option("--lake", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_DEMO_LAKE,
              show_default=True, help="The demo's own lake folder; must be missing, empty or an earlier demo's.")
@click.option("--no-text", is_flag=True, help="Redact free text instead of running Presidio (faster).")
def demo_command(patients: int, seed: int, lake: Path, no_text: bool) -> None:
    """Run the whole chain (synth → Bulk export → pseudonymise → lake) through Dagster and summarise it."""
    from rich.console import Console

    console = Console(soft_wrap=True)
    reason = _not_made_by_the_demo(lake) if lake.exists() and any(lake.iterdir()) else None
    if reason:  # refuse early, before any work
        raise ConfigurationError(f"{lake}: {reason}; the demo deletes nothing it did not make, so the folder is "
                                 "left alone: choose an empty or demo folder with --lake PATH")
    key = os.environ.get(_KEY_ENV, "").strip()
    save_key = not key
    if save_key:
        key = secrets.token_hex(32)
        console.print(f"{_KEY_ENV} is not set: using a random key for this demo lake "
                      f"(kept in {lake / '_demo' / 'pseudonym.key'} for the Dagster UI; synthetic data only)")
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").resolve()
    with _interrupts() as interrupt:
        try:
            result = build_demo_lake(lake, patients=patients, seed=seed, key=key, text=not no_text,
                                     instance=_dagster_instance(home), console=console, save_key=save_key,
                                     interrupt=interrupt)
        except KeyboardInterrupt:
            console.print(f"[yellow]stopped[/yellow] (Ctrl-C): the half-built demo lake in {lake} is left as it "
                          "is; `fhirlake demo` rebuilds it")
            raise SystemExit(130) from None
    if not result.success:
        for source, error in result.errors.items():
            console.print(f"[red]{source}[/red]: {error}", highlight=False)
        raise ConfigurationError(f"the demo chain failed for {', '.join(result.errors)}; see the Dagster run logs "
                                 f"(DAGSTER_HOME={home} dagster dev)")
    print_summary(console, result, dagster_home=home)
    console.print(f"done in {result.timings['total']:.0f} s")
