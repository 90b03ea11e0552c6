"""Synthetic FHIR R4 Bulk Data, from a hundred patients to millions of resources.

``generate`` writes a folder shaped like a Bulk Data export: one ``<Type>.ndjson`` (or
``.ndjson.gz``) per resource type, a ``manifest.json`` like a server's completion manifest
(``url`` values are file names relative to the folder), and a ``truth.json`` that lists, for
each patient, the strings that identify them (names, address, phone, birth date,
identifiers) so a privacy test can check that none survives pseudonymisation.

Output depends only on the options: the same seed gives the same bytes, whatever the number
of worker processes. Nothing reads the wall clock; "today" is ``as_of``.

>>> from fhirlake.synth import generate
>>> report = generate("demo/synth", patients=100, seed=1)   # doctest: +SKIP
>>> report.counts["Patient"]                                # doctest: +SKIP
100
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fhirlake.synth.clock import DEFAULT_AS_OF, parse_as_of
from fhirlake.synth.errors import OutputDirectoryError, SynthError, SynthOptionError
from fhirlake.synth.locales import LOCALES
from fhirlake.synth.writer import Options, RunReport, iter_chunk_resources, write_run

__all__ = [
    "DEFAULT_AS_OF",
    "DEFAULT_HISTORY_YEARS",
    "LOCALES",
    "OutputDirectoryError",
    "RunReport",
    "SynthError",
    "SynthOptionError",
    "generate",
    "iter_resources",
    "make_options",
]

#: Years of history each patient's record covers (older events are not exported).
DEFAULT_HISTORY_YEARS = 15
_MAX_PATIENTS = 100_000_000


def make_options(
    *,
    patients: int,
    seed: int = 0,
    locale: str = "en",
    gzip: bool = False,
    as_of: str | date | datetime | None = None,
    history_years: int = DEFAULT_HISTORY_YEARS,
) -> Options:
    """Check and bundle the options that define a run's content."""
    if not 1 <= patients <= _MAX_PATIENTS:
        raise SynthOptionError(f"patients must be between 1 and {_MAX_PATIENTS:,}, not {patients}")
    if locale not in LOCALES:
        raise SynthOptionError(f"unknown locale {locale!r}; choose one of {', '.join(sorted(LOCALES))}")
    if not 1 <= history_years <= 100:
        raise SynthOptionError(f"history_years must be between 1 and 100, not {history_years}")
    try:
        as_of_ts = parse_as_of(as_of)
    except ValueError as exc:
        raise SynthOptionError(f"as_of is not an ISO date or date-time: {as_of!r}") from exc
    return Options(patients=patients, seed=seed, locale=locale, as_of=as_of_ts, history_years=history_years, gzip=gzip)


def generate(
    out_dir: str | Path,
    *,
    patients: int,
    seed: int = 0,
    locale: str = "en",
    gzip: bool = False,
    as_of: str | date | datetime | None = None,
    history_years: int = DEFAULT_HISTORY_YEARS,
    workers: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RunReport:
    """Write ``patients`` synthetic patients and their records into ``out_dir``.

    ``workers`` defaults to the number of CPUs; ``overwrite`` replaces the files of an earlier
    run in the folder (without it the folder must be empty or absent); ``progress`` is called
    with the patients of each chunk written.
    """
    options = make_options(patients=patients, seed=seed, locale=locale, gzip=gzip, as_of=as_of, history_years=history_years)
    if workers is not None and workers < 1:
        raise SynthOptionError(f"workers must be at least 1, not {workers}")
    try:
        return write_run(options, Path(out_dir), workers=workers, overwrite=overwrite, progress=progress)
    except OSError as exc:
        raise OutputDirectoryError(f"{out_dir}: {exc.strerror or exc}") from exc


def iter_resources(
    *,
    patients: int,
    seed: int = 0,
    locale: str = "en",
    as_of: str | date | datetime | None = None,
    history_years: int = DEFAULT_HISTORY_YEARS,
) -> Iterator[dict[str, Any]]:
    """Yield the resources ``generate`` would write, in file order within each type, in memory."""
    options = make_options(patients=patients, seed=seed, locale=locale, as_of=as_of, history_years=history_years)
    for chunk in range(options.chunks):
        for _rtype, resources, _truth in iter_chunk_resources(options, chunk):
            yield from resources
