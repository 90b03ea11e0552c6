"""What pyproject.toml cannot say: folders that live outside ``src/`` but ship in the wheel.

* ``pipelines/fhirlake_pipelines/`` (the Dagster code location, where data engineers edit it,
  reached by dg through the ``src/fhirlake_pipelines`` symlink) installs as
  ``fhirlake_pipelines``, never as a generic top-level ``pipelines`` module.
* ``sql_on_fhir_views/`` and ``anonymization/`` (data people review and edit at the top of the
  project) ship as ``fhirlake/_data/views`` and ``fhirlake/_data/anonymization``, the defaults
  :mod:`fhirlake.resources` falls back to, so an installed wheel works anywhere.
"""

from setuptools import find_packages, setup

MAPPED = {
    "fhirlake_pipelines": "pipelines/fhirlake_pipelines",
    "fhirlake_pipelines.defs": "pipelines/fhirlake_pipelines/defs",
    "fhirlake._data.views": "sql_on_fhir_views",
    "fhirlake._data.anonymization": "anonymization",
}

setup(
    packages=[*find_packages("src", exclude=["fhirlake_pipelines*"]), *MAPPED],
    package_dir={"": "src", **MAPPED},
)
