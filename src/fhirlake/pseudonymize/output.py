"""The output of a pseudonymisation run, on any engine: the folder, the counts, the manifest.

``OutputFolder`` writes one NDJSON file per resource type (hashing it as it goes) and the
quarantine; :func:`count_chunk` adds a chunk's counts to the report; :func:`finish_run` checks
that the counts add up and writes the manifest and the report, which lists each output file's
SHA-256 so the lake ingests only these bytes (:func:`fhirlake.batch.pseudonymisation_problem`).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from fhirlake.batch import BLOCKED, Batch
from fhirlake.pseudonymize.errors import PseudonymizeError
from fhirlake.pseudonymize.report import QUARANTINE_NAME, REPORT_NAME, PrivacyReport

if TYPE_CHECKING:
    from fhirlake.pseudonymize.pipeline import _ChunkResult as ChunkResult

__all__ = ["MANIFEST_NAME", "OutputFolder", "count_chunk", "finish_run", "write_manifest"]

MANIFEST_NAME = "manifest.json"


class OutputFolder:
    """The output folder: one NDJSON file per resource type, plus the quarantine file."""

    def __init__(self, directory: Path, overwrite: bool) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        stale = [
            p
            for p in directory.iterdir()
            if p.name.endswith(".ndjson")
            or p.name in (REPORT_NAME, QUARANTINE_NAME, MANIFEST_NAME, BLOCKED)
        ]
        if stale and not overwrite:
            raise PseudonymizeError(
                f"{directory}: already holds output ({stale[0].name}); pass --overwrite"
            )
        for path in stale:
            path.unlink()
        self._files: dict[str, IO[bytes]] = {}
        self._digests: dict[str, Any] = {}  # SHA-256 of each output file, as written
        self.quarantine = (directory / QUARANTINE_NAME).open("wb")

    def write(self, result: ChunkResult) -> None:
        for resource_type, data in result.out.items():
            handle = self._files.get(resource_type)
            if handle is None:
                handle = (self.directory / f"{resource_type}.ndjson").open("wb")
                self._files[resource_type] = handle
                self._digests[resource_type] = hashlib.sha256()
            handle.write(data)
            self._digests[resource_type].update(data)
        for entry in result.quarantine:
            self.quarantine.write(orjson.dumps(entry) + b"\n")

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self.quarantine.close()

    def digests(self) -> dict[str, str]:
        """File name → SHA-256 of each output file: the lake checks them before it ingests."""
        return {f"{t}.ndjson": digest.hexdigest() for t, digest in sorted(self._digests.items())}


def count_chunk(report: PrivacyReport, result: ChunkResult) -> None:
    """Add one chunk's counts to the report (records by type, quarantine, rules, text)."""
    report.records_in += result.records_in
    if result.records_in:
        report.in_by_type[result.in_type] += result.records_in
    report.bytes_in += result.bytes_in
    report.quarantined += len(result.quarantine)
    for resource_type, count in result.out_counts.items():
        report.out_by_type[resource_type] += count
        report.records_out += count
    report.quarantine_reasons.update(q["reason"] for q in result.quarantine)
    report.rule_stats.merge(result.rule_stats)
    report.text_stats.merge(result.text_stats)


def finish_run(
    batch: Batch, output_dir: Path, output: OutputFolder, report: PrivacyReport, started: float
) -> PrivacyReport:
    """Check the counts add up, then write the manifest and the report (with each output file's
    SHA-256, which the lake checks before it ingests): the last step of every run, on any engine."""
    report.files = output.digests()
    report.seconds = time.perf_counter() - started
    if not report.balanced:
        raise PseudonymizeError(
            f"records do not add up: {report.records_in} in, {report.records_out} out, "
            f"{report.quarantined} quarantined"
        )
    write_manifest(batch, output_dir, report)
    report.write(output_dir)
    return report


def write_manifest(batch: Batch, output_dir: Path, report: PrivacyReport) -> None:
    """A Bulk Data manifest for the output; the export time comes from the input batch.

    Only ``transactionTime`` is kept of the input: its ``request`` URL can name a patient. If
    the input listed deleted resources, the output's Bundles (their ids pseudonymised) are
    listed as ``deleted`` too.
    """
    deleted = bool(batch.deleted) and "Bundle" in report.out_by_type
    manifest: dict[str, Any] = {}
    if batch.transaction_time:
        manifest["transactionTime"] = batch.transaction_time
    manifest["request"] = "fhirlake pseudonymize"
    manifest["requiresAccessToken"] = False
    manifest["output"] = [
        {"type": t, "url": f"{t}.ndjson", "count": n}
        for t, n in sorted(report.out_by_type.items())
        if not (deleted and t == "Bundle")
    ]
    if deleted:
        manifest["deleted"] = [{"type": "Bundle", "url": "Bundle.ndjson"}]
    manifest["error"] = []
    (output_dir / MANIFEST_NAME).write_bytes(
        orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n"
    )
