"""One pseudonymisation run: read, pseudonymise in worker processes, write, report.

1. First pass: the Patient resources (for each patient's deny-list and language) and, for
   Bundles, what each ``fullUrl`` names.
2. Second pass: every file is cut into chunks of about a megabyte of records, which worker
   processes (forked, so they share the first pass and the loaded spaCy models) parse,
   pseudonymise and serialise. Chunks come back in order, so the output is the same from run
   to run; only a few chunks are in flight at a time, so memory does not grow with the input.
3. Output: ``<Type>.ndjson`` per resource type, ``quarantine.jsonl`` (location, reason and a
   hash of each rejected record, never its content), ``privacy-report.json``, and a Bulk Data
   ``manifest.json`` so that the output folder can be ingested like any export
   (``fhirlake lake ingest OUT``).
"""

from __future__ import annotations

import collections
import datetime as dt
import gc
import hashlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fhirlake.batch import Batch
from fhirlake.pseudonymize.errors import PseudonymizeError, RecordError
from fhirlake.pseudonymize.fhirtypes import load_registry
from fhirlake.pseudonymize.keys import PseudonymKey
from fhirlake.pseudonymize.output import OutputFolder, count_chunk, finish_run
from fhirlake.pseudonymize.patients import CONTEXT_TYPES, PatientDirectory
from fhirlake.pseudonymize.policy import Policy
from fhirlake.pseudonymize.reader import (
    Location,
    Source,
    discover,
    input_batch,
    open_input,
    read_context,
    read_patients,
    read_records,
)
from fhirlake.pseudonymize.report import PrivacyReport
from fhirlake.pseudonymize.rules import ResourceContext, RuleStats, StructuredRules
from fhirlake.pseudonymize.text import TextScrubber, TextStats, load_models

__all__ = ["pseudonymize"]

CHUNK_BYTES = 1 << 20
CHUNK_RECORDS = 2000
MIN_CHUNK_BYTES = 64 << 10
# Resources whose text dominates their cost: their files are cut finer, so that every worker
# gets a share of a notes file of a megabyte (one chunk would keep one core busy alone).
TEXT_HEAVY_TYPES = frozenset(
    {"DocumentReference", "DiagnosticReport", "Communication", "Composition"}
)


@dataclass(slots=True)
class _Chunk:
    """A piece of one source: raw NDJSON lines from ``first_line`` on, or Bundle records.

    NDJSON is handed over as one block of bytes, split into lines by the worker: the parent
    then does almost nothing per record, which is what lets two workers use two cores.
    """

    source: int
    data: bytes = b""
    first_line: int = 1
    records: list[tuple[Location, bytes]] | None = None

    def items(self) -> Iterator[tuple[Location | int, bytes]]:
        """(location, raw JSON) per record; the location is a line number for NDJSON."""
        if self.records is not None:
            yield from self.records
            return
        for offset, raw in enumerate(self.data.split(b"\n")):
            if raw.strip():
                yield self.first_line + offset, raw.rstrip(b"\r")


@dataclass(slots=True)
class _ChunkResult:
    out: dict[str, bytes] = field(default_factory=dict)  # NDJSON lines per resource type
    out_counts: dict[str, int] = field(default_factory=dict)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    records_in: int = 0
    in_type: str = ""  # the resource type its source holds ("Bundle" for JSON Bundles)
    bytes_in: int = 0
    rule_stats: RuleStats = field(default_factory=RuleStats)
    text_stats: TextStats = field(default_factory=TextStats)


class _Worker:
    """Everything a worker needs; built once in the parent, inherited by forked workers."""

    def __init__(
        self,
        sources: list[Source],
        rules: StructuredRules,
        scrubber: TextScrubber | None,
    ) -> None:
        self.sources = sources
        self.rules = rules
        self.scrubber = scrubber

    def process(self, chunk: _Chunk) -> _ChunkResult:
        """Pseudonymise one chunk. The cyclic garbage collector is paused meanwhile: parsed JSON
        holds no cycles, and collections triggered by its many small objects cost about a third
        of the time."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._process(chunk)
        finally:
            if enabled:
                gc.enable()

    def _process(self, chunk: _Chunk) -> _ChunkResult:
        source = self.sources[chunk.source]
        result = _ChunkResult(in_type=source.expected_type or "Bundle")
        if self.scrubber is not None:
            self.scrubber.stats = result.text_stats
        urls = source.bundle_urls or None
        done: list[tuple[Location | int, bytes, dict[str, Any], ResourceContext]] = []
        for location, raw in chunk.items():
            result.records_in += 1
            result.bytes_in += len(raw) + 1
            try:
                resource = self._parse(raw, source)
                full = b'xtension"' in raw or b'"_' in raw
                ctx = self.rules.apply(resource, full=full, bundle_urls=urls)
            except RecordError as exc:
                result.quarantine.append(_quarantined(source, location, raw, exc))
                continue
            done.append((location, raw, resource, ctx))
        if self.scrubber is not None:
            done = self._scrub(source, done, result)
        lines: dict[str, list[bytes]] = {}
        for _, _, resource, _ in done:
            lines.setdefault(resource["resourceType"], []).append(orjson.dumps(resource))
        for resource_type, found in lines.items():
            result.out[resource_type] = b"\n".join(found) + b"\n"
            result.out_counts[resource_type] = len(found)
        result.rule_stats = self.rules.take_stats()
        return result

    @staticmethod
    def _parse(raw: bytes, source: Source) -> dict[str, Any]:
        try:
            resource = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise RecordError(f"not valid JSON ({exc})") from None
        if not isinstance(resource, dict):
            raise RecordError("not a JSON object (a resource)")
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str):
            raise RecordError("no resourceType")
        if source.expected_type is not None and resource_type != source.expected_type:
            raise RecordError(f"a {resource_type} in a file of {source.expected_type} resources")
        return resource

    def _scrub(
        self,
        source: Source,
        done: list[tuple[Location | int, bytes, dict[str, Any], ResourceContext]],
        result: _ChunkResult,
    ) -> list[tuple[Location | int, bytes, dict[str, Any], ResourceContext]]:
        """Scrub all texts of the chunk in one batch; if that fails, resource by resource."""
        assert self.scrubber is not None
        slots = [slot for item in done for slot in item[3].slots]
        if not slots:
            return done
        try:
            self.scrubber.scrub(slots)
            return done
        except Exception:  # find the resource at fault below, and quarantine only it
            pass
        kept = []
        for item in done:
            try:
                self.scrubber.scrub(item[3].slots)
                kept.append(item)
            except Exception as exc:  # the message could quote the text: only its type is kept
                reason = f"text analysis failed ({type(exc).__name__})"
                result.quarantine.append(
                    _quarantined(source, item[0], item[1], RecordError(reason))
                )
        return kept


def _quarantined(
    source: Source, location: Location | int, raw: bytes, exc: RecordError
) -> dict[str, Any]:
    place = Location(source.name, line=location) if isinstance(location, int) else location
    entry = place.as_dict()
    pointer = exc.pointer
    if pointer:
        entry["element"] = pointer
    entry["reason"] = exc.reason
    entry["sha256"] = hashlib.sha256(raw).hexdigest()
    return entry


# The worker of the current process: set in the parent before the pool forks.
_WORKER: _Worker | None = None


class _InterruptFlag:
    """Ctrl-C while the pool runs. A KeyboardInterrupt raised while ``submit`` forks a worker
    would be swallowed by the fork's callbacks (and printed as "Exception ignored in"), so
    during a submit it is only remembered, and raised just after; at any other time it is
    raised at once. Only in the main thread (where Python delivers signals)."""

    def __init__(self) -> None:
        self.set = False
        self.deferred = False
        self.previous: Any = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, number: int, frame: Any) -> None:
        self.set = True
        if not self.deferred:
            raise KeyboardInterrupt

    def check(self) -> None:
        if self.set:
            raise KeyboardInterrupt

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _start_worker() -> None:
    """In each forked worker: Ctrl-C is the parent's to handle (it stops the pool), and what the
    parent built is never collected (skip scanning it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.freeze()


def _process_in_worker(chunk: _Chunk) -> _ChunkResult:
    assert _WORKER is not None
    return _WORKER.process(chunk)


def _chunk_bytes(source: Source, workers: int, text: bool) -> int:
    """About a megabyte; for a file of notes, small enough that each worker gets four chunks."""
    if not text or workers <= 1 or source.expected_type not in TEXT_HEAVY_TYPES:
        return CHUNK_BYTES
    try:
        size = source.path.stat().st_size
    except OSError:
        return CHUNK_BYTES
    return max(MIN_CHUNK_BYTES, min(CHUNK_BYTES, size // (4 * workers) + 1))


def _chunks(sources: list[Source], workers: int = 1, text: bool = False) -> Iterator[_Chunk]:
    for index, source in enumerate(sources):
        if source.kind == "ndjson":
            yield from _ndjson_chunks(index, source, _chunk_bytes(source, workers, text))
            continue
        records: list[tuple[Location, bytes]] = []
        size = 0
        for location, raw in read_records(source):
            records.append((location, raw))
            size += len(raw)
            if size >= CHUNK_BYTES or len(records) >= CHUNK_RECORDS:
                yield _Chunk(index, records=records)
                records, size = [], 0
        if records:
            yield _Chunk(index, records=records)


def _ndjson_chunks(index: int, source: Source, chunk_bytes: int = CHUNK_BYTES) -> Iterator[_Chunk]:
    """Blocks of whole lines of about ``chunk_bytes``, with the number of their first line."""
    line = 1
    rest = b""
    with open_input(source.path) as handle:
        while True:
            try:
                block = handle.read(chunk_bytes)
            except (OSError, EOFError) as exc:
                raise PseudonymizeError(f"{source.path}: cannot read ({exc})") from None
            if not block:
                break
            data = rest + block
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data  # one line longer than a block: keep reading
                continue
            yield _Chunk(index, data=data[:cut], first_line=line)
            line += data.count(b"\n", 0, cut)
            rest = data[cut:]
    if rest.strip():
        yield _Chunk(index, data=rest, first_line=line)


def _results(worker: _Worker, chunks: Iterator[_Chunk], workers: int) -> Iterator[_ChunkResult]:
    """Chunk results in input order, from this process or from a pool of forked workers."""
    global _WORKER
    if workers <= 1:
        for chunk in chunks:
            yield worker.process(chunk)
        return
    _WORKER = worker
    window: collections.deque[Future[_ChunkResult]] = collections.deque()
    pool = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("fork"), initializer=_start_worker
    )
    interrupted = _InterruptFlag()
    try:
        for chunk in chunks:
            interrupted.deferred = True
            window.append(pool.submit(_process_in_worker, chunk))
            interrupted.deferred = False
            interrupted.check()
            if len(window) >= 2 * workers:
                yield window.popleft().result()
        while window:
            interrupted.check()
            yield window.popleft().result()
    except BaseException:
        # an error or Ctrl-C: stop at once, without finishing the chunks in flight (the output
        # folder is incomplete either way). Python 3.14 has pool.terminate_workers() for this.
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        raise
    finally:
        interrupted.restore()
        pool.shutdown(wait=True, cancel_futures=True)
        _WORKER = None


def read_directory(sources: list[Source], *, text: bool, policy: Policy) -> PatientDirectory:
    """The first pass: the Patients, and for free text everyone named and the coded words."""
    if not text:
        patients = PatientDirectory()
        for source in sources:
            for patient in read_patients(source):
                patients.add(patient)
        return patients
    patients = PatientDirectory(stop_words())
    if policy.text.clinical_terms is not None:
        patients.clinical.load(policy.text.clinical_terms)
    for source in sources:
        for resource in read_context(source, CONTEXT_TYPES):
            patients.add_context(resource)
    patients.finish()
    return patients


def stop_words() -> frozenset[str]:
    """The common words of English and French (spaCy's lists): never a name on their own."""
    from spacy.lang.en.stop_words import STOP_WORDS as ENGLISH
    from spacy.lang.fr.stop_words import STOP_WORDS as FRENCH

    return frozenset(ENGLISH | FRENCH)


def pseudonymize(
    input_path: Path | Batch,
    output_dir: Path,
    policy: Policy,
    key: PseudonymKey,
    *,
    workers: int | None = None,
    text: bool = True,
    today: dt.date | None = None,
    overwrite: bool = False,
    scrubber: TextScrubber | None = None,
    progress: Callable[[int], None] | None = None,
) -> PrivacyReport:
    """Pseudonymise a batch (or the batch at ``input_path``) into ``output_dir``; return the report.

    The input is read where it is, in any layout :func:`fhirlake.batch.read_batch` knows (a
    bronze export, a folder with a manifest, a plain folder of ``<Type>.ndjson[.gz|.zst]``
    files and Bundles). The report counts the records read per type, so a caller can hold them
    to the manifest (:mod:`fhirlake.chain.checks`).

    ``text=False`` turns the policy's text rules into redactions (no Presidio, no models).
    ``scrubber`` lets a caller reuse an already loaded Presidio engine (tests do); ``progress``
    is called with the records of each chunk done (a progress bar: :mod:`fhirlake.progress`).
    """
    started = time.perf_counter()
    workers = workers if workers is not None else (os.cpu_count() or 1)
    effective = policy if text else policy.without_text()
    batch = input_batch(input_path)
    sources = discover(batch)
    patients = read_directory(sources, text=effective.uses_text, policy=effective)
    rules = StructuredRules(effective, key, load_registry(), patients, today or dt.date.today())
    if effective.uses_text and scrubber is None:
        scrubber = TextScrubber(effective.text, key, load_models(effective.text), effective.max_age)
    if scrubber is not None:
        scrubber.start_run(patients)
    worker = _Worker(sources, rules, scrubber if effective.uses_text else None)
    report = PrivacyReport(
        policy=str(policy.path),
        policy_sha256=policy.sha256,
        key_id=key.key_id(),
        inputs=dict(collections.Counter(s.kind for s in sources)),
        workers=workers,
        text_enabled=effective.uses_text,
        patients=len(patients),
    )
    output = OutputFolder(output_dir, overwrite)
    try:
        chunks = _chunks(sources, workers, effective.uses_text)
        for result in _results(worker, chunks, workers):
            output.write(result)
            if progress is not None:
                progress(result.records_in)
            count_chunk(report, result)
    finally:
        output.close()
    return finish_run(batch, output_dir, output, report, started)
