"""What the code location is built from: the lake, the sources, the drop folder, the thresholds.

Partitions, schedules and sensors are fixed when Dagster loads the code location, so the
sources must be known then. They come from two places:

* the Bulk Data sources file (``$FHIRLAKE_SOURCES``, else ``sources.yaml``, else the
  commented ``sources.example.yaml``), in the format :func:`fhirlake.bulk.load_sources` reads;
* the file sources: sites without a Bulk Data server, which drop NDJSON batches in
  ``<drop dir>/<source>/<batch>/`` (``$FHIRLAKE_FILE_SOURCES``, comma-separated names).

Everything else has a default and an environment variable; no secret is read here (the
pseudonym key and the sources' tokens are read by the resources, from the environment).

>>> settings = PipelineSettings.from_env({"FHIRLAKE_LAKE": "/data/lake"})   # doctest: +SKIP
>>> settings.partition_keys                                                 # doctest: +SKIP
['demo', 'hospital-a', 'registry']
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fhirlake.bulk import Source, load_sources
from fhirlake.errors import ConfigurationError

__all__ = ["PROJECT_ROOT", "PipelineSettings"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # pipelines/fhirlake_pipelines/settings.py
_EXAMPLE_SOURCES = PROJECT_ROOT / "sources.example.yaml"


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    """The settings one code location is built with (see the module docstring).

    ``nightly_cron`` and ``timezone`` drive the nightly incremental export of each Bulk source,
    ``optimize_cron`` the weekly compaction of the gold tables;
    ``max_quarantine_rate`` is the share of records pseudonymisation may reject before the
    blocking check stops the source; ``drop_interval`` is how often (seconds) the sensor looks
    at the drop folder.
    """

    lake: Path
    sources_file: Path | None
    sources: Mapping[str, Source]
    file_sources: tuple[str, ...] = ()
    drop_dir: Path
    nightly_cron: str = "0 2 * * *"
    optimize_cron: str = "0 4 * * 0"
    timezone: str = "UTC"
    max_quarantine_rate: float = 0.01
    drop_interval: int = 60
    spark_master: str | None = None
    spark_config: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        both = sorted(set(self.sources) & set(self.file_sources))
        if both:
            raise ConfigurationError(
                f"source {both[0]!r} is both a Bulk Data source and a file source; rename one"
            )
        if not 0.0 <= self.max_quarantine_rate <= 1.0:
            raise ConfigurationError(
                f"the quarantine threshold must be between 0 and 1, not {self.max_quarantine_rate}"
            )

    @property
    def partition_keys(self) -> list[str]:
        """Every source, Bulk and file, sorted: the partitions of every asset."""
        return sorted([*self.sources, *self.file_sources])

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, cwd: Path | None = None) -> PipelineSettings:
        """Settings from environment variables, with defaults relative to ``cwd``.

        ``FHIRLAKE_LAKE`` (default ``./.fhirlake``), ``FHIRLAKE_SOURCES``,
        ``FHIRLAKE_FILE_SOURCES``, ``FHIRLAKE_DROP_DIR`` (default ``<lake>/drop``),
        ``FHIRLAKE_NIGHTLY_CRON``, ``FHIRLAKE_TIMEZONE``, ``FHIRLAKE_MAX_QUARANTINE_RATE``;
        ``FHIRLAKE_SPARK_MASTER`` (gold tables built on Spark; DuckDB without it) and
        ``FHIRLAKE_SPARK_CONF`` (its settings, ``key=value,...``).
        """
        env = os.environ if environ is None else environ
        here = cwd or Path.cwd()
        lake = here / env.get("FHIRLAKE_LAKE", ".fhirlake")
        sources_file = _sources_file(env.get("FHIRLAKE_SOURCES"), here)
        sources = load_sources(sources_file) if sources_file is not None else {}
        file_sources = tuple(s.strip() for s in env.get("FHIRLAKE_FILE_SOURCES", "").split(",") if s.strip())
        drop = env.get("FHIRLAKE_DROP_DIR")
        return cls(
            lake=lake,
            sources_file=sources_file,
            sources=sources,
            file_sources=file_sources,
            drop_dir=here / drop if drop else lake / "drop",
            nightly_cron=env.get("FHIRLAKE_NIGHTLY_CRON", cls.nightly_cron),
            optimize_cron=env.get("FHIRLAKE_OPTIMIZE_CRON", cls.optimize_cron),
            timezone=env.get("FHIRLAKE_TIMEZONE", cls.timezone),
            max_quarantine_rate=_rate(env.get("FHIRLAKE_MAX_QUARANTINE_RATE")),
            spark_master=env.get("FHIRLAKE_SPARK_MASTER") or None,
            spark_config=_spark_config(env.get("FHIRLAKE_SPARK_CONF", "")),
        )


def _sources_file(configured: str | None, here: Path) -> Path | None:
    """The configured file (which must exist), else ``sources.yaml``, else the example."""
    if configured:
        path = here / configured
        if not path.is_file():
            raise ConfigurationError(f"FHIRLAKE_SOURCES: {path} is not a file")
        return path
    for candidate in (here / "sources.yaml", _EXAMPLE_SOURCES):
        if candidate.is_file():
            return candidate
    return None


def _rate(text: str | None) -> float:
    if text is None or not text.strip():
        return PipelineSettings.max_quarantine_rate
    try:
        return float(text)
    except ValueError:
        raise ConfigurationError(
            f"FHIRLAKE_MAX_QUARANTINE_RATE: {text!r} is not a number (e.g. 0.01 for 1%)"
        ) from None


def _spark_config(text: str) -> dict[str, str]:
    """``FHIRLAKE_SPARK_CONF``: ``key=value`` pairs separated by commas (``spark.executor.memory=8g,...``)."""
    pairs = [item.strip() for item in text.split(",") if item.strip()]
    bad = [item for item in pairs if "=" not in item]
    if bad:
        raise ConfigurationError(f"FHIRLAKE_SPARK_CONF: {bad[0]!r} is not key=value (e.g. spark.executor.memory=8g)")
    return {key.strip(): value.strip() for key, _, value in (item.partition("=") for item in pairs)}
