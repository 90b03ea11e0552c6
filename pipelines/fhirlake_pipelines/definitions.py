"""The code location: ``defs`` (what ``dagster dev`` and ``dg`` load) and the function that builds it.

``defs`` is built from the environment (:meth:`PipelineSettings.from_env`); the demo and the
tests call :func:`build_definitions` with their own settings and, where they need no
secret from the environment, a pseudonymiser resource of their own.
"""

from __future__ import annotations

import dagster as dg

from .defs.assets import build_assets
from .defs.automation import build_jobs, build_schedules, drop_folder_sensor
from .defs.checks import build_checks
from .defs.maintenance import optimize_lake, weekly_optimize
from .defs.resources import LakeResource, PseudonymizerResource, SourcesResource, SparkResource
from .settings import PipelineSettings

__all__ = ["build_definitions", "defs"]

KEY_ENV = "FHIRLAKE_PSEUDONYM_KEY"


def build_definitions(settings: PipelineSettings, *, pseudonymizer: PseudonymizerResource | None = None) -> dg.Definitions:
    """Assets, checks, jobs, schedules, the sensor and the resources for ``settings``."""
    partitions = dg.StaticPartitionsDefinition(settings.partition_keys)
    full, incremental = build_jobs()
    return dg.Definitions(
        assets=build_assets(partitions),
        asset_checks=build_checks(partitions, max_quarantine_rate=settings.max_quarantine_rate),
        jobs=[full, incremental, optimize_lake],
        schedules=[*build_schedules(settings, incremental), weekly_optimize(settings)],
        sensors=[drop_folder_sensor(settings, incremental)],
        resources={
            "lake": LakeResource(root=str(settings.lake), spark=SparkResource(
                master=settings.spark_master, config=dict(settings.spark_config)) if settings.spark_master else None),
            "sources": SourcesResource(
                sources_file=str(settings.sources_file) if settings.sources_file else None,
                file_sources=list(settings.file_sources), drop_dir=str(settings.drop_dir)),
            "pseudonymizer": pseudonymizer or PseudonymizerResource(key=dg.EnvVar(KEY_ENV)),
        },
    )


defs = build_definitions(PipelineSettings.from_env())
