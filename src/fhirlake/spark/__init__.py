"""fhirlake on Apache Spark: the same ViewDefinitions, lake build and pseudonymisation, scaled out.

Optional: needs the ``spark`` extra (pyspark and Java 17). DuckDB stays the default engine
everywhere; nothing here is imported unless Spark is asked for.
"""

from fhirlake.spark.session import SparkUnavailableError, spark_session, spark_settings

__all__ = ["SparkUnavailableError", "spark_session", "spark_settings"]
