"""The code location's definitions, one kind per module, as ``dg`` lays a project out:
``assets`` (export → pseudonymised → silver → gold → catalog), ``checks`` (the blocking ones),
``automation`` (jobs, schedules, the drop-folder sensor), ``maintenance`` (the weekly
compaction) and ``resources``. Each module builds its definitions from the settings;
:func:`fhirlake_pipelines.definitions.build_definitions` puts them together.
"""
