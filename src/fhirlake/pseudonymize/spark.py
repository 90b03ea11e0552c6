"""Pseudonymisation on Spark: the same engine, run by Spark tasks, with the same output bytes.

The single-machine run (:func:`fhirlake.pseudonymize.pipeline.pseudonymize`) reads the
context first (Patients, and for free text who else the export names and its coded words),
then pseudonymises chunks of records in worker processes. Here both passes are Spark jobs:

1. **Context, one task per input file.** Each task reads only the files of the context types
   (the same reader, :func:`~fhirlake.pseudonymize.reader.read_patients` or
   :func:`~fhirlake.pseudonymize.reader.read_context`) and returns those resources (of
   clinical resources only their coded words) and the Bundles' ``fullUrl`` map. The driver
   adds them to a :class:`~fhirlake.pseudonymize.patients.PatientDirectory` in input order, so
   every patient gets the ordinal, deny-list and date offset the single-machine run gives,
   and broadcasts it with the policy and key. Keyed derivations (pseudonyms, per-patient date
   offsets) need no other state. Bulk Data servers split large types into several files, so
   this pass is as parallel as the export is.
2. **Records, one task per byte range.** Plain NDJSON files are cut into ranges of about
   ``split_bytes``; a task reads the whole lines that start in its range (a line that crosses
   a boundary belongs to the range it starts in), cuts them into the pipeline's chunks and
   runs the pipeline's worker on each, writing its output per resource type as a part file.
   Compressed files and Bundles cannot be cut: one task each.
3. **Output, on the driver:** the parts are appended in input order to ``<Type>.ndjson``,
   quarantine entries get their absolute line numbers, and the report and manifest are those
   of the single-machine run. The output folder must be reachable from every executor (a
   shared file system) on a cluster.

Models for free text (spaCy, Presidio) are loaded once per Python worker process.

>>> report = pseudonymize_on_spark(spark, Path("bronze/x"), Path("pseudo/x"), policy, key)  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhirlake.batch import Batch
from fhirlake.pseudonymize.clinical import CLINICAL_TYPES, coded_texts
from fhirlake.pseudonymize.fhirtypes import load_registry
from fhirlake.pseudonymize.keys import PseudonymKey
from fhirlake.pseudonymize.output import OutputFolder, count_chunk, finish_run
from fhirlake.pseudonymize.patients import CONTEXT_TYPES, PatientDirectory
from fhirlake.pseudonymize.pipeline import (
    CHUNK_BYTES,
    _ChunkResult,
    _chunks,
    _Worker,
    read_directory,
)
from fhirlake.pseudonymize.policy import Policy
from fhirlake.pseudonymize.reader import (
    Source,
    input_batch,
    read_context,
    read_patients,
    sources_of,
)
from fhirlake.pseudonymize.report import PrivacyReport
from fhirlake.pseudonymize.rules import StructuredRules
from fhirlake.pseudonymize.text import TextScrubber, load_models

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["DEFAULT_SPLIT_BYTES", "pseudonymize_on_spark"]

DEFAULT_SPLIT_BYTES = 32 << 20
_COMPRESSED = (".gz", ".zst")


@dataclass(frozen=True, slots=True)
class _Split:
    """A task's share of the input: a byte range of a plain NDJSON file, or a whole file (``end`` None)."""

    index: int
    source: int
    start: int = 0
    end: int | None = None


@dataclass(slots=True)
class _SplitResult:
    """What a task hands back: its records' counts, stats and quarantine, and its part files."""

    split: _Split
    result: _ChunkResult
    parts: dict[str, str] = field(default_factory=dict)  # resource type -> part file
    newlines: int = 0


@dataclass(frozen=True)
class _Run:
    """Everything a task needs, broadcast once: the sources, policy, key, directory and day."""

    sources: list[Source]
    policy: Policy
    key: PseudonymKey
    patients: PatientDirectory
    today: dt.date
    parts: str


def pseudonymize_on_spark(
    spark: SparkSession,
    input_path: Path | Batch,
    output_dir: Path,
    policy: Policy,
    key: PseudonymKey,
    *,
    text: bool = True,
    today: dt.date | None = None,
    overwrite: bool = False,
    split_bytes: int = DEFAULT_SPLIT_BYTES,
) -> PrivacyReport:
    """Pseudonymise a batch on Spark into ``output_dir``: the single-machine run's output, byte for byte."""
    started = time.perf_counter()
    effective = policy if text else policy.without_text()
    batch = input_batch(input_path)
    sources = sources_of(batch)
    context = spark.sparkContext
    patients = _directory(context, sources, effective)
    output = OutputFolder(output_dir, overwrite)
    parts = output_dir / f".spark-parts-{uuid.uuid4().hex}"
    parts.mkdir()
    try:
        run = _Run(sources, effective, key, patients, today or dt.date.today(), str(parts))
        shared = context.broadcast(run)
        splits = _splits(sources, split_bytes)
        results = (context.parallelize(splits, max(1, len(splits)))
                   .map(lambda split: _pseudonymize_split(shared.value, split)).collect())
        shared.unpersist()
        report = PrivacyReport(
            policy=str(policy.path), policy_sha256=policy.sha256, key_id=key.key_id(),
            inputs=dict(collections.Counter(s.kind for s in sources)),
            workers=int(context.defaultParallelism), text_enabled=effective.uses_text, patients=len(patients),
        )
        _assemble(sorted(results, key=lambda r: r.split.index), output, report)
    finally:
        output.close()
        shutil.rmtree(parts, ignore_errors=True)
    return finish_run(batch, output_dir, output, report, started)


# ------------------------------------------------------------------------------ first pass


def _directory(context: Any, sources: list[Source], policy: Policy) -> PatientDirectory:
    """The patient directory from a first pass over the context files, one task per file."""
    text = policy.uses_text
    wanted = [i for i, s in enumerate(sources) if s.kind == "bundle" or s.expected_type in (
        CONTEXT_TYPES if text else {"Patient"}) or s.expected_type is None]
    found = context.parallelize([(i, sources[i]) for i in wanted], max(1, len(wanted))).map(
        lambda item: _context_of(item[0], item[1], text)).collect() if wanted else []
    patients = read_directory([], text=text, policy=policy)  # empty, configured as the pipeline's
    for index, resources, urls in sorted(found, key=lambda f: f[0]):
        sources[index].bundle_urls.update(urls)
        for kind, payload in resources:
            if not text:
                patients.add(payload)
            elif kind == "coded":
                patients.clinical.add_terms(payload)
            else:
                patients.add_context(payload)
    if text:
        patients.finish()
    return patients


def _context_of(index: int, source: Source, text: bool) -> tuple[int, list[tuple[str, Any]], dict[str, Any]]:
    """A task of the first pass: the context resources of one file (clinical ones as their coded words)."""
    if not text:
        return index, [("resource", p) for p in read_patients(source)], source.bundle_urls
    found: list[tuple[str, Any]] = []
    for resource in read_context(source, CONTEXT_TYPES):
        if resource.get("resourceType") in CLINICAL_TYPES:
            found.append(("coded", coded_texts(resource)))
        else:
            found.append(("resource", resource))
    return index, found, source.bundle_urls


# ----------------------------------------------------------------------------- second pass


def _splits(sources: list[Source], split_bytes: int) -> list[_Split]:
    """Byte ranges of the plain NDJSON files, whole files for the others, in input order."""
    splits: list[_Split] = []
    for index, source in enumerate(sources):
        if source.kind != "ndjson" or source.path.name.endswith(_COMPRESSED):
            splits.append(_Split(len(splits), index))
            continue
        size = os.path.getsize(source.path)
        for start in range(0, max(size, 1), split_bytes):
            splits.append(_Split(len(splits), index, start, min(start + split_bytes, size)))
    return splits


_WORKERS: dict[str, _Worker] = {}


def _worker(run: _Run) -> _Worker:
    """This Python process's worker for ``run`` (models loaded once per process and run)."""
    worker = _WORKERS.get(run.parts)
    if worker is None:
        rules = StructuredRules(run.policy, run.key, load_registry(), run.patients, run.today)
        scrubber = None
        if run.policy.uses_text:
            scrubber = TextScrubber(run.policy.text, run.key, load_models(run.policy.text), run.policy.max_age)
            scrubber.start_run(run.patients)
        _WORKERS.clear()
        worker = _WORKERS[run.parts] = _Worker(run.sources, rules, scrubber)
    return worker


def _pseudonymize_split(run: _Run, split: _Split) -> _SplitResult:
    """A task of the second pass: the pipeline's worker over the split's chunks, output as part files."""
    worker = _worker(run)
    source = run.sources[split.source]
    done = _SplitResult(split, _ChunkResult(in_type=source.expected_type or "Bundle"))
    handles: dict[str, Any] = {}
    try:
        for chunk in _split_chunks(split, source):
            result = worker.process(chunk)
            _add(done.result, result)
            for resource_type, data in result.out.items():
                if resource_type not in handles:
                    done.parts[resource_type] = f"{run.parts}/{split.index:07d}.{resource_type}.ndjson"
                    handles[resource_type] = open(done.parts[resource_type], "wb")  # noqa: SIM115
                handles[resource_type].write(data)
            if split.end is not None and chunk.data:
                done.newlines += chunk.data.count(b"\n")
    finally:
        for handle in handles.values():
            handle.close()
    return done


def _split_chunks(split: _Split, source: Source) -> Iterator[Any]:
    """The pipeline's chunks of a split: line numbers relative to the range (fixed on the driver)."""
    if split.end is None:
        for chunk in _chunks([source]):
            chunk.source = split.source
            yield chunk
        return
    from fhirlake.pseudonymize.pipeline import _Chunk

    data = _range_lines(source.path, split.start, split.end)
    line, offset = 1, 0
    while offset < len(data):
        cut = data.rfind(b"\n", offset, offset + CHUNK_BYTES) + 1
        if cut <= offset:  # one line longer than a chunk
            cut = data.find(b"\n", offset) + 1 or len(data)
        block = data[offset:cut]
        yield _Chunk(split.source, data=block, first_line=line)
        line += block.count(b"\n")
        offset = cut


def _range_lines(path: Path, start: int, end: int) -> bytes:
    """The whole lines of a file that start at a byte in ``[start, end)``."""
    with path.open("rb") as handle:
        if start > 0:
            handle.seek(start - 1)
            handle.readline()  # the end of the line that holds byte start - 1: the previous range's
        position = handle.tell()
        if position >= end:
            return b""
        data = handle.read(end - position)
        if data and not data.endswith(b"\n"):
            data += handle.readline()
        return data


def _add(into: _ChunkResult, result: _ChunkResult) -> None:
    into.records_in += result.records_in
    into.bytes_in += result.bytes_in
    into.quarantine += result.quarantine
    for resource_type, count in result.out_counts.items():
        into.out_counts[resource_type] = into.out_counts.get(resource_type, 0) + count
    into.rule_stats.merge(result.rule_stats)
    into.text_stats.merge(result.text_stats)


# ---------------------------------------------------------------------------------- output


def _assemble(results: list[_SplitResult], output: OutputFolder, report: PrivacyReport) -> None:
    """Append the splits' parts and quarantine in input order, and count them in the report."""
    lines_before: dict[int, int] = {}
    for done in results:
        split, result = done.split, done.result
        if split.end is not None:
            before = lines_before.get(split.source, 0)
            for entry in result.quarantine:
                if "line" in entry:
                    entry["line"] += before
            lines_before[split.source] = before + done.newlines
        result.out = {t: Path(p).read_bytes() for t, p in done.parts.items()}
        output.write(result)
        count_chunk(report, result)
