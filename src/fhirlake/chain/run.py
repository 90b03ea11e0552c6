"""The whole chain for one source, in this process: export → pseudonymise → scan → ingest.

What ``fhirlake run`` does, and what the Dagster graph does asset by asset, with the same
blocking checks (:mod:`fhirlake.chain.checks`). Every step is resumable: an interrupted export
resumes, a batch already pseudonymised is not redone, one already in the lake is recognised by
the lake's log. A batch that fails a check is marked blocked and kept out of the lake; the error
says why and what to do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from fhirlake.bulk import Source
from fhirlake.chain import checks, stages
from fhirlake.errors import FhirlakeError
from fhirlake.lake import IngestReport
from fhirlake.pseudonymize import Policy, PseudonymKey

__all__ = ["ChainCheckError", "ChainReport", "StageTiming", "run_chain"]

StageHook = Callable[[str], AbstractContextManager[object]]


class ChainCheckError(FhirlakeError):
    """A blocking check failed on a batch: it is kept out of the lake (the message says why)."""


@dataclass(frozen=True)
class StageTiming:
    """One stage of a run: its name, how long it took, and what it did (one line, no data)."""

    name: str
    seconds: float
    detail: str


@dataclass
class ChainReport:
    """What one run of the chain did for one source."""

    source: str
    stages: list[StageTiming] = field(default_factory=list)
    ingested: list[IngestReport] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(stage.seconds for stage in self.stages)

    def lines(self) -> list[str]:
        """A summary: one line per stage with its time, then the total."""
        out = [f"{stage.name:<13} {stage.seconds:8.2f} s  {stage.detail}" for stage in self.stages]
        return [*out, f"{'total':<13} {self.seconds:8.2f} s  source {self.source}"]


def run_chain(
    lake: Path,
    source: Source,
    *,
    policy: Policy,
    key: PseudonymKey,
    incremental: bool = True,
    text: bool = True,
    workers: int | None = None,
    max_quarantine_rate: float = checks.DEFAULT_MAX_QUARANTINE_RATE,
    views: Path | None = None,
    stage: StageHook | None = None,
) -> ChainReport:
    """Run the chain for ``source`` into ``lake``; raise :class:`ChainCheckError` on a failed check.

    ``stage`` wraps each stage (a progress display: it gets the stage's name).
    """
    report = ChainReport(source.name)
    wrap: StageHook = stage or (lambda name: nullcontext())

    with _timed(report, "export", wrap) as say:
        result = stages.run_export(lake, source, incremental=incremental)
        say(f"{result.export_id}: {sum(result.resources.values()):,} resources in {len(result.files)} files"
            + (f", {len(result.issues)} server issues" if result.issues else ""))

    with _timed(report, "pseudonymise", wrap) as say:
        done = stages.pseudonymise_pending(lake, source.name, policy=policy, key=key, text=text, workers=workers)
        say(f"{len(done)} batches: {sum(d.report.records_in for d in done):,} records in, "
            f"{sum(d.report.records_out for d in done):,} out, {sum(d.report.quarantined for d in done):,} "
            "quarantined" if done else "nothing new")

    with _timed(report, "checks", wrap) as say:
        bronze = {b.export_id: b for b in stages.bronze_batches(lake, source.name)}
        pending = [f for f in stages.not_ingested(lake, source.name) if stages.blocked_reason(f) is None]
        for folder in pending:
            for outcome in (checks.counts_reconcile(bronze[folder.name], folder),
                            checks.quarantine_rate([folder], max_rate=max_quarantine_rate),
                            checks.leak_scan(bronze[folder.name], folder, key=key, policy=policy)):
                if not outcome.passed:
                    stages.block(folder, outcome.reason)
                    raise ChainCheckError(
                        f"{folder}: kept out of the lake: {outcome.reason} (fix the cause, delete this folder "
                        "and run again)")
        say(f"{len(pending)} batches passed the leak scan, the quarantine rate "
            f"(≤ {max_quarantine_rate:.1%}) and the counts")

    with _timed(report, "ingest", wrap) as say:
        report.ingested = [r for r in stages.ingest_pending(lake, source.name, views=views) if not r.already_ingested]
        snapshot = report.ingested[-1].snapshot_id if report.ingested else None
        say(f"{len(report.ingested)} batches merged" + (f", snapshot {snapshot}" if snapshot is not None else ""))
    return report


@contextmanager
def _timed(report: ChainReport, name: str, wrap: StageHook) -> Iterator[Callable[[str], None]]:
    detail = [""]
    started = time.perf_counter()
    with wrap(name):
        yield lambda text: detail.__setitem__(0, text)
    report.stages.append(StageTiming(name, time.perf_counter() - started, detail[0]))
