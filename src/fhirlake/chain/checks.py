"""The blocking checks between pseudonymisation and the lake, as plain functions.

The same checks stop a batch in the Dagster graph (asset checks on ``pseudonymised``), in
``fhirlake run`` and in the by-hand commands, so a batch that one path would keep out of the
lake no other path lets in:

* :func:`leak_scan`: the scan of ``fhirlake privacy scan`` finds none of the input patients'
  identifying strings, no person the export names, no birth date and no date-offset leak;
* :func:`quarantine_rate`: pseudonymisation rejected at most a share of the records (1% by
  default);
* :func:`counts_reconcile`: the batch holds what its manifest announced, and every record
  read was written or quarantined.

Each returns a :class:`CheckOutcome` whose ``problems`` are one line each and hold no data
(file names, counts, hashes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhirlake.batch import Batch
from fhirlake.pseudonymize import Policy, PseudonymKey, scan_context, scan_output
from fhirlake.pseudonymize.report import read_report

__all__ = [
    "DEFAULT_MAX_QUARANTINE_RATE",
    "CheckOutcome",
    "counts_reconcile",
    "leak_scan",
    "quarantine_rate",
]

DEFAULT_MAX_QUARANTINE_RATE = 0.01


@dataclass(frozen=True)
class CheckOutcome:
    """Whether a check passed, what it measured, and one line per problem."""

    name: str
    passed: bool
    metadata: Mapping[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        """One line: the check and its first problems."""
        more = f" (and {len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        return f"{self.name}: {'; '.join(self.problems[:3])}{more}"


def leak_scan(raw: Batch, output: Path, *, key: PseudonymKey, policy: Policy) -> CheckOutcome:
    """Scan the pseudonymised ``output`` of the ``raw`` batch for anything identifying its people."""
    context = scan_context(raw, max_shift_days=policy.max_shift_days)
    result = scan_output(output, key=key, context=context)
    problems = tuple(f"{output.name}: {leak}" for leak in result.leaks)
    return CheckOutcome("no_identifier_leaks", not result.leaks,
                        {"terms": result.terms, "lines": result.lines, "leaks": len(result.leaks)},
                        problems)


def quarantine_rate(outputs: list[Path], *, max_rate: float = DEFAULT_MAX_QUARANTINE_RATE) -> CheckOutcome:
    """At most ``max_rate`` of the records read into these pseudonymised folders were quarantined."""
    records_in = quarantined = 0
    for folder in outputs:
        counts = read_report(folder)["records"]
        records_in, quarantined = records_in + counts["in"], quarantined + counts["quarantined"]
    rate = quarantined / records_in if records_in else 0.0
    problems = () if rate <= max_rate else (
        f"{quarantined} of {records_in} records quarantined ({rate:.1%}, threshold {max_rate:.1%}); "
        f"see quarantine.jsonl in {', '.join(f.name for f in outputs)}",)
    return CheckOutcome("quarantine_rate", not problems, {"records_in": records_in, "quarantined": quarantined,
                                                          "rate": round(rate, 5), "threshold": max_rate}, problems)


def counts_reconcile(raw: Batch, output: Path) -> CheckOutcome:
    """The raw batch holds what its manifest announced (per type), and in = out + quarantined."""
    counts = read_report(output)["records"]
    read_by_type: Mapping[str, int] = counts.get("in_by_type", {})
    problems: list[str] = []
    manifest = raw.path / "manifest.json"
    for resource_type, announced in sorted(raw.manifest_counts.items()):
        files = ", ".join(raw.label(p) for p in raw.files.get(resource_type, ())) or "no file"
        measured = raw.lines.get(resource_type)
        if measured is not None and measured != announced:
            problems.append(f"{manifest}: announces {announced} {resource_type} resources, the files hold "
                            f"{measured} ({files})")
        read = read_by_type.get(resource_type, 0)
        if read != announced:
            problems.append(f"{manifest}: announces {announced} {resource_type} resources, {read} were read "
                            f"({files})")
    if counts["in"] < raw.resources or not counts["balanced"]:
        problems.append(f"{raw.path}: {raw.resources} resources in the batch, read {counts['in']}, "
                        f"written {counts['out']}, quarantined {counts['quarantined']}")
    return CheckOutcome("counts_reconcile", not problems, {"records_in": counts["in"], "written": counts["out"],
                                                           "quarantined": counts["quarantined"]}, tuple(problems))
