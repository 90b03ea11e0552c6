"""The lake's upkeep: ``optimize_lake`` and its ``weekly_optimize`` schedule.

Nightly merges add files to the gold partitions they touch; :meth:`fhirlake.lake.Lake.optimize`
compacts them again (few files per partition, rows in code order, the same rows), which keeps
researchers' and the MCP server's queries fast. The job runs in the lake's pool, so never
beside a merge.

This module does not use ``from __future__ import annotations``: Dagster checks an op's
``context`` annotation as a class, not as text.
"""

import dagster as dg

import fhirlake

from ..settings import PipelineSettings
from .assets import LAKE_POOL
from .resources import LakeResource

__all__ = ["optimize_lake", "weekly_optimize"]


@dg.op(pool=LAKE_POOL, description="Compact the gold tables: few files per partition, rows in code order (same rows).")
def optimize_gold(context: dg.OpExecutionContext, lake: LakeResource) -> dg.Output[int]:
    with fhirlake.connect(lake.path, read_only=False, views=lake.views_path) as opened:
        report = opened.optimize()
    for line in report.lines():
        context.log.info(line)
    return dg.Output(len(report.compacted), metadata={
        "snapshot": report.snapshot_id if report.snapshot_id is not None else "unchanged",
        "tables compacted": len(report.compacted),
        "files before": sum(c.files_before for c in report.compacted.values()),
        "files after": sum(c.files_after for c in report.compacted.values()),
        "duration (s)": round(report.seconds, 2),
    })


@dg.job(description="Compact the lake's gold tables (fhirlake lake optimize); runs alone in the lake pool.")
def optimize_lake() -> None:
    optimize_gold()


def weekly_optimize(settings: PipelineSettings) -> dg.ScheduleDefinition:
    """``optimize_lake`` once a week, after the nightly exports (stopped until turned on)."""
    return dg.ScheduleDefinition(name="weekly_optimize", job=optimize_lake, cron_schedule=settings.optimize_cron,
                                 execution_timezone=settings.timezone,
                                 description="Compact the gold tables once a week.")
