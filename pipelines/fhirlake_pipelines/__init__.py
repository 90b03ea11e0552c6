"""The fhirlake Dagster code location: thin assets over ``fhirlake``, partitioned by source.

``pipelines.definitions.defs`` is what ``dagster dev`` and ``dg`` load (see pyproject's
``[tool.dagster]`` and ``[tool.dg]``); :func:`fhirlake_pipelines.definitions.build_definitions` builds
the same from explicit settings (the demo and the tests use it). See ``docs/pipelines.md``.
"""
