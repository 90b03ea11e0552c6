"""The resources the assets use: the lake (and the Spark cluster that may build it), the sources, the pseudonymiser.

Each is configured in :func:`fhirlake_pipelines.definitions.build_definitions` from the settings
(environment variables and the sources YAML). Secrets are never values in the repository:
the pseudonym key is ``dg.EnvVar("FHIRLAKE_PSEUDONYM_KEY")``, and a source's token or private
key is named in the sources YAML by the environment variable that holds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from fhirlake.bulk import Source, load_sources
from fhirlake.errors import ConfigurationError
from fhirlake.pseudonymize import Policy, PseudonymKey, load_policy
from fhirlake.resources import default_policy_path

__all__ = ["LakeResource", "PseudonymizerResource", "SourcesResource", "SparkResource"]


class SparkResource(dg.Config):
    """A Spark cluster for building gold tables: its master URL and settings, part of the lake
    resource's configuration (a nested config, not a nested resource: Dagster 1.13 initialises
    nested resources through a deprecated call).

    The session is dagster-pyspark's (``LazyPySparkResource``, created on first use, so a run
    that builds nothing starts no JVM) with fhirlake's fixed settings
    (:func:`fhirlake.spark.spark_settings`: UTC, ...) under ``config``, the cluster's own
    (``spark.executor.memory``, ``spark.executor.cores``, ...). Needs the ``spark`` extra.
    """

    master: str
    config: dict[str, str] = Field(default_factory=dict)

    def session(self) -> Any:
        """The SparkSession (the process's active one if there is one: Spark allows one)."""
        from dagster_pyspark import LazyPySparkResource

        from fhirlake.spark import spark_settings

        settings = spark_settings(self.master, app_name="fhirlake-pipelines", config=self.config)
        session = LazyPySparkResource(spark_config=settings).spark_session
        session.sparkContext.setLogLevel("ERROR")
        return session


class LakeResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The lake root (a folder), optionally the ViewDefinition folder gold is built from, and
    optionally the Spark cluster that builds gold tables (DuckDB, in process, without one)."""

    root: str
    views: str | None = None
    spark: SparkResource | None = None

    def build_options(self) -> dict[str, Any]:
        """The engine arguments of :meth:`fhirlake.lake.Lake.build`: Spark when configured."""
        if self.spark is None:
            return {}
        return {"engine": "spark", "spark": self.spark.session()}

    @property
    def path(self) -> Path:
        return Path(self.root)

    @property
    def views_path(self) -> Path | None:
        return Path(self.views) if self.views else None


class SourcesResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where each source's data comes from: a Bulk Data server (the sources YAML) or the drop folder."""

    sources_file: str | None = None
    file_sources: list[str]
    drop_dir: str

    def is_file_source(self, name: str) -> bool:
        return name in self.file_sources

    @property
    def drop_path(self) -> Path:
        return Path(self.drop_dir)

    def source(self, name: str) -> Source:
        """The Bulk Data source ``name`` of the sources file (read now, so edits apply to the next run)."""
        if self.sources_file is None:
            raise ConfigurationError(f"no sources file configured, so source {name!r} is unknown (set FHIRLAKE_SOURCES)")
        sources = load_sources(Path(self.sources_file))
        if name not in sources:
            raise ConfigurationError(f"{self.sources_file}: no source named {name!r} (known: {', '.join(sorted(sources))})")
        return sources[name]


class PseudonymizerResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The pseudonymisation key (from the environment), the policy and how to run it.

    ``text=False`` redacts free text instead of running Presidio on it (much faster; for tests
    of the plumbing, never for real data). ``workers`` defaults to one per core.
    """

    key: str
    policy: str | None = None
    text: bool = True
    workers: int | None = None

    def load_key(self) -> PseudonymKey:
        return PseudonymKey(self.key.strip().encode())

    def load_policy(self) -> Policy:
        return load_policy(Path(self.policy) if self.policy else default_policy_path())
