"""One way to get a Spark session configured for fhirlake (local[N] on a laptop, or a cluster).

Settings that change results are fixed here, so every caller sees the same semantics: UTC session
time zone (FHIR instants are compared in UTC, as in DuckDB), no web UI in local runs, and a small
number of shuffle partitions for local masters (the default 200 is tuned for clusters).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from fhirlake.errors import ConfigurationError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["SparkUnavailableError", "spark_session", "spark_settings"]

DEFAULT_MASTER = "local[1]"


class SparkUnavailableError(ConfigurationError):
    """pyspark (or the Java it needs) is not installed: install the ``spark`` extra."""


def _local_cores(master: str) -> int | None:
    if not master.startswith("local"):
        return None
    inside = master[master.find("[") + 1 : master.find("]")] if "[" in master else "1"
    return None if inside == "*" else int(inside.split(",")[0])


def spark_settings(
    master: str | None = None,
    *,
    app_name: str = "fhirlake",
    config: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Every setting of a fhirlake session on ``master``, as ``spark.*`` keys (``config`` last, so
    it overrides): what :func:`spark_session` builds, and what a Dagster resource is given."""
    master = master or DEFAULT_MASTER
    settings = {
        "spark.master": master,
        "spark.app.name": app_name,
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    cores = _local_cores(master)
    if cores is not None:
        settings["spark.sql.shuffle.partitions"] = str(max(cores * 2, 2))
        # local Python workers run this interpreter (its packages), not whatever python3 is on PATH
        settings["spark.pyspark.python"] = sys.executable
    return settings | dict(config or {})


def spark_session(
    master: str | None = None,
    *,
    app_name: str = "fhirlake",
    config: Mapping[str, str] | None = None,
) -> SparkSession:
    """A Spark session on ``master`` (``local[N]``, ``spark://host:port``, ``yarn`` …).

    Reuses the active session when there is one (Spark allows one per process); ``config``
    adds or overrides settings (a data engineer's cluster settings, e.g. executor memory).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise SparkUnavailableError(
            "Spark is not installed: pip install 'fhirlake[spark]' (needs Java 17)"
        ) from error
    settings = spark_settings(master, app_name=app_name, config=config)
    if "spark.pyspark.python" in settings:
        # pyspark starts local Python workers with $PYSPARK_PYTHON (else python3 on PATH, which
        # lacks this environment's packages); the setting alone is not always honoured
        os.environ.setdefault("PYSPARK_PYTHON", settings["spark.pyspark.python"])
    builder = SparkSession.builder
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
