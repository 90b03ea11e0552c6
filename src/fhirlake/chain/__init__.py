"""The chain of a batch, as a library: export → pseudonymise → scan → lake.

:mod:`.stages` are the steps over the lake's folders, :mod:`.checks` the blocking checks
between pseudonymisation and the lake, :mod:`.run` the whole chain for one source (what
``fhirlake run`` does). The Dagster assets are thin calls of the same functions.
"""
