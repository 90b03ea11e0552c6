"""Jobs, schedules and the drop-folder sensor.

* ``full_export``: every asset of one source, asking the server for everything;
* ``incremental_export``: the same, asking only for changes since the source's watermark
  (the transactionTime of its last completed export); for a file source, its new batches;
* ``nightly_<source>``: the incremental export of each Bulk Data source, at the configured
  cron time (stopped until turned on in the UI or with ``dagster schedule start``);
* ``drop_folder``: a sensor that starts ``incremental_export`` for a file source when a
  complete batch appears in ``<drop dir>/<source>/`` (one run per batch).

The lake's upkeep (the weekly compaction) is in :mod:`fhirlake_pipelines.defs.maintenance`.
"""


from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import dagster as dg

from fhirlake.chain import stages

from ..settings import PipelineSettings

if TYPE_CHECKING:  # the type define_asset_job returns is not exported by dagster
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

__all__ = ["build_jobs", "build_schedules", "drop_folder_sensor"]

_ALL = dg.AssetSelection.all()


def build_jobs() -> tuple[UnresolvedAssetJobDefinition, ...]:
    """``full_export`` and ``incremental_export`` (both per source partition)."""
    def config(incremental: bool) -> dict[str, object]:
        return {"ops": {"bronze": {"config": {"incremental": incremental}}}}

    full = dg.define_asset_job("full_export", selection=_ALL, config=config(False),
                               description="Export everything from one source, then pseudonymise, merge, publish.")
    incremental = dg.define_asset_job(
        "incremental_export", selection=_ALL, config=config(True),
        description="Export what changed since the source's watermark (or its new dropped batches), "
                    "then pseudonymise, merge, publish.")
    return full, incremental


def build_schedules(settings: PipelineSettings, job: UnresolvedAssetJobDefinition) -> list[dg.ScheduleDefinition]:
    """A nightly incremental export per Bulk Data source."""
    return [_nightly(source, settings, job) for source in sorted(settings.sources)]


def _nightly(source: str, settings: PipelineSettings, job: UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    @dg.schedule(name=f"nightly_{source.replace('-', '_').replace('.', '_')}", job=job,
                 cron_schedule=settings.nightly_cron, execution_timezone=settings.timezone,
                 description=f"Incremental export of {source} every night.")
    def nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(partition_key=source, tags={"fhirlake/source": source})

    return nightly


def drop_folder_sensor(settings: PipelineSettings, job: UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    """Watches ``<drop dir>/<file source>/`` for complete batches (see :mod:`fhirlake_pipelines.stages`)."""

    @dg.sensor(name="drop_folder", job=job, minimum_interval_seconds=settings.drop_interval,
               description=f"Picks up NDJSON batches dropped in {settings.drop_dir}/<source>/ by the file "
                           f"sources ({', '.join(settings.file_sources) or 'none configured'}).")
    def drop_folder(context: dg.SensorEvaluationContext) -> Iterator[dg.RunRequest | dg.SkipReason]:
        if not settings.file_sources:
            yield dg.SkipReason("no file sources configured (FHIRLAKE_FILE_SOURCES)")
            return
        found = False
        for source in settings.file_sources:
            for batch in stages.ready_drops(settings.drop_dir, source):
                found = True
                # the run key makes Dagster start one run per batch, however often it is seen
                yield dg.RunRequest(run_key=f"{source}/{batch.name}", partition_key=source,
                                    tags={"fhirlake/source": source, "fhirlake/batch": batch.name})
        if not found:
            yield dg.SkipReason(f"no complete batch in {settings.drop_dir}")

    return drop_folder
