"""Writes a run to disk: NDJSON per type, ``manifest.json`` and ``truth.json``, in parallel.

Patients are cut into chunks of :data:`CHUNK_PATIENTS`; each chunk is rendered and
serialised (and, with gzip, compressed) by a worker process and returned as one bytes blob
per resource type. The parent appends the blobs in chunk order, so the files are identical
whatever the number of workers. At most two chunks per worker are in flight, which keeps
memory flat however many patients are asked for. Organizations and practitioners are spread
over the chunks the same way.

The manifest is written last: a folder with a ``manifest.json`` is a finished run.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from fhirlake.synth.builder import RunContext
from fhirlake.synth.clock import YEAR, Clock
from fhirlake.synth.errors import OutputDirectoryError
from fhirlake.synth.locales import get_locale
from fhirlake.synth.pargzip import GzipJoiner, deflate_block
from fhirlake.synth.providers import PRACTITIONERS_PER_ORGANIZATION, Directory, organization_count
from fhirlake.synth.record import render_patient

__all__ = ["CHUNK_PATIENTS", "Options", "RunReport", "iter_chunk_resources", "write_run"]

#: Patients per unit of work; part of the output's definition (changing it changes nothing
#: in the resources, only how work is split), kept small so memory stays low.
CHUNK_PATIENTS = 25
MANIFEST = "manifest.json"
TRUTH = "truth.json"
_OWN_SUFFIXES = (".ndjson", ".ndjson.gz")


@dataclass(frozen=True, slots=True)
class Options:
    """What defines a run's content: same options, same bytes."""

    patients: int
    seed: int
    locale: str
    as_of: int
    history_years: int
    gzip: bool = False
    gzip_level: int = 6

    @property
    def chunks(self) -> int:
        """How many chunks the patients are cut into."""
        return math.ceil(self.patients / CHUNK_PATIENTS)

    @property
    def organizations(self) -> int:
        """How many organizations the run has."""
        return organization_count(self.patients)


@dataclass(slots=True)
class RunReport:
    """What a run wrote: counts per type, bytes, time, and where the files are."""

    out_dir: Path
    counts: dict[str, int]
    bytes_written: int
    seconds: float
    workers: int
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Resources written, all types together."""
        return sum(self.counts.values())


@dataclass(slots=True)
class _Chunk:
    index: int
    blobs: dict[str, Any]  # type -> bytes, or (deflated, crc, length) with gzip
    counts: dict[str, int]
    truth: bytes


@lru_cache(maxsize=4)
def _context(options: Options) -> RunContext:
    locale = get_locale(options.locale)
    clock = Clock(locale.utc_offset_minutes)
    directory = Directory(options.seed, locale, clock, options.organizations, options.as_of)
    history_start = options.as_of - options.history_years * YEAR
    return RunContext(options.seed, locale, clock, options.as_of, history_start, directory)


def _share(total: int, chunk: int, chunks: int) -> range:
    return range(chunk * total // chunks, (chunk + 1) * total // chunks)


def iter_chunk_resources(options: Options, chunk: int) -> Iterator[tuple[str, list[dict[str, Any]], dict[str, Any] | None]]:
    """Yield ``(type, resources, truth)`` for every unit of chunk ``chunk``; truth is None for providers."""
    ctx = _context(options)
    directory = ctx.directory
    organizations = _share(options.organizations, chunk, options.chunks)
    if organizations:
        yield "Organization", [directory.organization_resource(i) for i in organizations], None
    practitioners = _share(options.organizations * PRACTITIONERS_PER_ORGANIZATION, chunk, options.chunks)
    if practitioners:
        yield "Practitioner", [directory.practitioner_resource(i) for i in practitioners], None
    for index in range(chunk * CHUNK_PATIENTS, min((chunk + 1) * CHUNK_PATIENTS, options.patients)):
        output = render_patient(ctx, index)
        for rtype, resources in output.resources.items():
            yield rtype, resources, None
        yield "", [], output.truth


def _render_chunk(options: Options, chunk: int) -> _Chunk:
    dumps = orjson.dumps
    lines: dict[str, list[bytes]] = {}
    truth: list[bytes] = []
    for rtype, resources, patient_truth in iter_chunk_resources(options, chunk):
        if patient_truth is not None:
            truth.append(dumps(patient_truth))
            continue
        bucket = lines.get(rtype)
        if bucket is None:
            bucket = lines[rtype] = []
        bucket.extend(map(dumps, resources))
    counts = {rtype: len(bucket) for rtype, bucket in lines.items()}
    blobs: dict[str, Any] = {rtype: b"\n".join(bucket) + b"\n" for rtype, bucket in lines.items()}
    if options.gzip:
        blobs = {rtype: deflate_block(blob, options.gzip_level) for rtype, blob in blobs.items()}
    return _Chunk(chunk, blobs, counts, b",\n".join(truth))


def _render_chunk_task(args: tuple[Options, int]) -> _Chunk:
    return _render_chunk(*args)


def _prepare(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputDirectoryError(f"{out_dir}: exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    present = [p for p in out_dir.iterdir()]
    if not present:
        return
    ours = [p for p in present if p.name in (MANIFEST, TRUTH) or p.name.endswith(_OWN_SUFFIXES)]
    if not overwrite:
        raise OutputDirectoryError(f"{out_dir}: is not empty (pass overwrite to replace a previous run)")
    for path in ours:
        path.unlink()


class _Files:
    """The open output files, created on first write so empty types get no file."""

    def __init__(self, out_dir: Path, gzip: bool) -> None:
        self.out_dir = out_dir
        self.gzip = gzip
        self.plain: dict[str, BinaryIO] = {}
        self.joined: dict[str, GzipJoiner] = {}
        self.paths: dict[str, Path] = {}

    def write(self, rtype: str, blob: Any) -> None:
        if rtype not in self.paths:
            path = self.out_dir / (f"{rtype}.ndjson.gz" if self.gzip else f"{rtype}.ndjson")
            self.paths[rtype] = path
            sink = path.open("wb")
            if self.gzip:
                self.joined[rtype] = GzipJoiner(sink)
            else:
                self.plain[rtype] = sink
        if self.gzip:
            self.joined[rtype].write(blob)
        else:
            self.plain[rtype].write(blob)

    def close(self) -> None:
        for joiner in self.joined.values():
            joiner.close()
        for sink in self.plain.values():
            sink.close()


def _chunks(options: Options, workers: int) -> Iterator[_Chunk]:
    """Rendered chunks in order, from this process or from a pool of worker processes.

    Workers are forked (so a plain script without a ``__main__`` guard works) and shut down by
    the executor's sentinels: ``multiprocessing.Pool`` stopped its forked workers with SIGTERM,
    and a SIGTERM handler inherited from the caller (a test runner's) hung that for ever.
    """
    if workers <= 1:
        for chunk in range(options.chunks):
            yield _render_chunk(options, chunk)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        pending: deque[Future[_Chunk]] = deque()
        submitted = 0
        while submitted < options.chunks or pending:
            while submitted < options.chunks and len(pending) < 2 * workers:
                pending.append(pool.submit(_render_chunk_task, (options, submitted)))
                submitted += 1
            yield pending.popleft().result()


def manifest(options: Options, counts: dict[str, int], files: dict[str, Path]) -> dict[str, Any]:
    """The Bulk Data completion manifest of a run; ``url`` values are file names in the folder."""
    clock = Clock(0)
    return {
        "transactionTime": clock.instant(options.as_of),
        "request": "Patient/$export",
        "requiresAccessToken": False,
        "output": [{"type": rtype, "url": files[rtype].name, "count": counts[rtype]} for rtype in sorted(files)],
        "error": [],
        "extension": {
            "generator": "fhirlake synth",
            "patients": options.patients,
            "seed": options.seed,
            "locale": options.locale,
            "historyYears": options.history_years,
        },
    }


def write_run(options: Options, out_dir: Path, *, workers: int | None = None, overwrite: bool = False,
              progress: Callable[[int], None] | None = None) -> RunReport:
    """Generate the run described by ``options`` into ``out_dir``; see the module docstring.

    ``progress`` is called with the patients of each chunk written (a progress bar)."""
    started = time.perf_counter()
    _prepare(out_dir, overwrite)
    workers = max(1, min(workers or os.cpu_count() or 1, options.chunks))
    files = _Files(out_dir, options.gzip)
    counts: dict[str, int] = {}
    truth_path = out_dir / TRUTH
    try:
        with truth_path.open("wb") as truth:
            header = {"generator": "fhirlake synth", "seed": options.seed, "locale": options.locale, "patients": options.patients}
            truth.write(orjson.dumps(header)[:-1] + b',"records":[\n')
            first = True
            for chunk in _chunks(options, workers):
                for rtype, blob in chunk.blobs.items():
                    files.write(rtype, blob)
                    counts[rtype] = counts.get(rtype, 0) + chunk.counts[rtype]
                if chunk.truth:
                    truth.write(chunk.truth if first else b",\n" + chunk.truth)
                    first = False
                if progress is not None:
                    progress(chunk.counts.get("Patient", 0))
            truth.write(b"\n]}\n")
    finally:
        files.close()
    (out_dir / MANIFEST).write_bytes(orjson.dumps(manifest(options, counts, files.paths), option=orjson.OPT_INDENT_2) + b"\n")
    written = sum(p.stat().st_size for p in files.paths.values())
    return RunReport(out_dir, counts, written, time.perf_counter() - started, workers, dict(files.paths))
