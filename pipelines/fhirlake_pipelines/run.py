"""Run the chain for some sources in this process, through Dagster (the demo and the tests do).

>>> outcome = run_sources(defs, ["site-a", "site-b"], full=True)     # doctest: +SKIP
>>> outcome["site-a"].success                                        # doctest: +SKIP
True

Each source is its own run, so one failing source does not stop the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg

__all__ = ["SourceRun", "run_sources"]


@dataclass(frozen=True)
class SourceRun:
    """The outcome of one source's run: success, the run id, and the first failure, if any."""

    source: str
    success: bool
    run_id: str
    error: str | None
    failed_checks: tuple[str, ...]


def run_sources(
    defs: dg.Definitions, sources: Sequence[str], *, full: bool = False, instance: dg.DagsterInstance | None = None,
    log_level: str = "WARNING",
) -> dict[str, SourceRun]:
    """Materialise every asset of each source's partition (``full_export`` or ``incremental_export``).

    ``log_level`` is the level of Dagster's console log (the run's events are kept in the
    instance whatever it is).
    """
    job = defs.resolve_job_def("full_export" if full else "incremental_export")
    run_config = {"ops": {"bronze": {"config": {"incremental": not full}}},
                  "loggers": {"console": {"config": {"log_level": log_level}}}}
    outcome = {}
    for source in sources:
        result = job.execute_in_process(partition_key=source, instance=instance, raise_on_error=False,
                                        run_config=run_config, tags={"fhirlake/source": source})
        failed = tuple(
            f"{e.asset_check_evaluation_data.asset_key.to_user_string()}:{e.asset_check_evaluation_data.check_name}"
            for e in result.all_events
            if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
            and e.asset_check_evaluation_data is not None and not e.asset_check_evaluation_data.passed
        )
        error = None
        for event in result.all_events:
            if event.event_type == dg.DagsterEventType.STEP_FAILURE and event.step_failure_data is not None:
                failure = event.step_failure_data.error
                while failure is not None and failure.cause is not None:
                    failure = failure.cause  # the library's own error, not Dagster's wrapper
                error = f"{event.step_key}: {failure.message.strip().splitlines()[0] if failure else 'failed'}"
                break
        outcome[source] = SourceRun(source, result.success and not failed, result.run_id, error, failed)
    return outcome
