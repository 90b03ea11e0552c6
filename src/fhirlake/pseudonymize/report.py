"""The privacy report of a run: what was done, how often, and what was quarantined.

Written as ``privacy-report.json`` beside the output, for the privacy officer and for the
pipeline (which checks ``records_in == records_out + quarantined``). It holds counts only:
no value from the data, no patient id, and of the key only a public fingerprint.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhirlake.pseudonymize.rules import RuleStats
from fhirlake.pseudonymize.text import TextStats

__all__ = ["REPORT_NAME", "PrivacyReport", "read_report"]

REPORT_NAME = "privacy-report.json"
QUARANTINE_NAME = "quarantine.jsonl"


@dataclass(slots=True)
class PrivacyReport:
    """Counts of one run of ``fhirlake pseudonymize``."""

    policy: str
    policy_sha256: str
    key_id: str
    inputs: dict[
        str, int
    ]  # files per kind; never their names (a Bundle may be named after a patient)
    workers: int
    text_enabled: bool
    records_in: int = 0
    records_out: int = 0
    quarantined: int = 0
    bytes_in: int = 0
    seconds: float = 0.0
    patients: int = 0
    out_by_type: Counter[str] = field(default_factory=Counter)
    in_by_type: Counter[str] = field(default_factory=Counter)  # records read, by the type of their file
    files: dict[str, str] = field(default_factory=dict)  # output file name -> SHA-256
    quarantine_reasons: Counter[str] = field(default_factory=Counter)
    rule_stats: RuleStats = field(default_factory=RuleStats)
    text_stats: TextStats = field(default_factory=TextStats)

    @property
    def balanced(self) -> bool:
        """Whether every record read was either written or quarantined."""
        return self.records_in == self.records_out + self.quarantined

    def to_dict(self) -> dict[str, Any]:
        text = self.text_stats
        return {
            "policy": self.policy,
            "policy_sha256": self.policy_sha256,
            "key_id": self.key_id,
            "inputs": self.inputs,
            "workers": self.workers,
            "patients": self.patients,
            "records": {
                "in": self.records_in,
                "out": self.records_out,
                "quarantined": self.quarantined,
                "balanced": self.balanced,
                "out_by_type": dict(sorted(self.out_by_type.items())),
                "in_by_type": dict(sorted(self.in_by_type.items())),
            },
            "files": self.files,  # SHA-256 of each output file: the lake ingests only these bytes
            "quarantine_reasons": dict(self.quarantine_reasons.most_common()),
            "rules": dict(self.rule_stats.rules.most_common()),
            "events": dict(self.rule_stats.events.most_common()),
            "text": {
                "enabled": self.text_enabled,
                "elements_scanned": text.elements,
                "characters_scanned": text.characters,
                "texts_analysed": text.analysed,
                "cache_hits": text.cache_hits,
                "deny_list_hits": text.deny_list_hits,
                "seconds": round(text.seconds, 3),
                "entities_replaced": dict(text.entities.most_common()),
            },
            "performance": {
                "seconds": round(self.seconds, 3),
                "bytes_in": self.bytes_in,
                "mb_per_second": round(self.bytes_in / 1e6 / self.seconds, 2)
                if self.seconds
                else None,
            },
        }

    def write(self, directory: Path) -> Path:
        path = directory / REPORT_NAME
        path.write_text(
            json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        return path

    def summary(self) -> str:
        """A few lines for the terminal."""
        text = self.text_stats
        lines = [
            f"records: {self.records_in} in, {self.records_out} out, {self.quarantined} quarantined"
            f" ({self.patients} patients, {self.bytes_in / 1e6:.1f} MB in {self.seconds:.1f} s)",
        ]
        if self.text_enabled:
            lines.append(
                f"text: {text.elements} elements scanned, {text.analysed} analysed, "
                f"{text.cache_hits} cache hits, {sum(text.entities.values())} entities replaced"
            )
        top = ", ".join(f"{name} {n}" for name, n in self.rule_stats.rules.most_common(5))
        lines.append(f"rules: {top}")
        return "\n".join(lines)


def read_report(directory: Path) -> dict[str, Any]:
    """The report of the run that wrote ``directory`` (as a plain dict)."""
    loaded: dict[str, Any] = json.loads((directory / REPORT_NAME).read_text(encoding="utf-8"))
    return loaded
