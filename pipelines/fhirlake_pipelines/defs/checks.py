"""Asset checks: they stop bad data before researchers see it.

On ``pseudonymised`` (blocking: a failure skips silver, so nothing reaches the lake), over the
batches not yet in the lake, the checks of :mod:`fhirlake.chain.checks` (which ``fhirlake run``
applies too):

* ``no_identifier_leaks``: the leak scan of ``fhirlake privacy scan`` finds none of the input
  patients' identifying strings, no person the export names, no birth date and no date-offset
  leak in the output (a leaky batch is also marked, so no later run ingests it);
* ``quarantine_rate``: pseudonymisation rejected at most the configured share of records;
* ``counts_reconcile``: bronze holds what the server's manifest announced, and every record
  read was written or quarantined.

On ``silver``: ``landed_reconcile`` (blocking: each batch's resources per type landed in the
lake) and ``references_resolve`` (each resource's patient is in the same source). On each
``gold/<view>``: ``rows_match_silver`` (blocking for the catalog).
"""


import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg

import fhirlake
from fhirlake.batch import read_batch
from fhirlake.chain import checks, stages
from fhirlake.sof.library import view_files

from .. import queries
from .assets import PSEUDONYMISED, SILVER
from .resources import LakeResource, PseudonymizerResource

__all__ = ["build_checks"]

_MULTIPLYING = ("forEach", "forEachOrNull", "unionAll", "repeat")


def build_checks(partitions: dg.PartitionsDefinition, *, max_quarantine_rate: float,
                 views: Path | None = None) -> list[dg.AssetChecksDefinition]:
    """Every asset check of the graph, one result per source partition.

    Partitioned checks are a Dagster preview feature (1.13); its warning is silenced here only.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.PreviewWarning, message="Specifying a partitions_def")
        return _checks(partitions, max_quarantine_rate=max_quarantine_rate, views=views)


def _checks(partitions: dg.PartitionsDefinition, *, max_quarantine_rate: float,
            views: Path | None) -> list[dg.AssetChecksDefinition]:

    @dg.asset_check(asset=PSEUDONYMISED, blocking=True, partitions_def=partitions,
                    description="No identifying string of any input patient is in the pseudonymised output.")
    def no_identifier_leaks(context: dg.AssetCheckExecutionContext, lake: LakeResource,
                            pseudonymizer: PseudonymizerResource) -> dg.AssetCheckResult:
        source = context.partition_key
        bronze = {b.export_id: b for b in stages.bronze_batches(lake.path, source)}
        key, policy = pseudonymizer.load_key(), pseudonymizer.load_policy()
        scanned, leaks, terms = 0, 0, 0
        for folder in stages.not_ingested(lake.path, source):
            # the same scan as `fhirlake privacy scan` and `fhirlake run` (this check holds the key)
            outcome = checks.leak_scan(bronze[folder.name], folder, key=key, policy=policy)
            scanned, terms, leaks = scanned + 1, terms + outcome.metadata["terms"], leaks + outcome.metadata["leaks"]
            if not outcome.passed:
                stages.block(folder, outcome.reason)
                context.log.error(outcome.reason)
        return dg.AssetCheckResult(passed=leaks == 0, metadata={"batches_scanned": scanned, "terms": terms,
                                                                "leaks": leaks})

    @dg.asset_check(asset=PSEUDONYMISED, blocking=True, partitions_def=partitions,
                    description=f"Pseudonymisation quarantined at most {max_quarantine_rate:.1%} of the records.")
    def quarantine_rate(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        outcome = checks.quarantine_rate(stages.not_ingested(lake.path, context.partition_key),
                                         max_rate=max_quarantine_rate)
        return dg.AssetCheckResult(passed=outcome.passed, metadata=dict(outcome.metadata))

    @dg.asset_check(asset=PSEUDONYMISED, blocking=True, partitions_def=partitions,
                    description="Bronze holds the resources the manifest announced; every record read was "
                                "written or quarantined.")
    def counts_reconcile(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        bronze = {b.export_id: b for b in stages.bronze_batches(lake.path, context.partition_key)}
        problems: list[str] = []
        for folder in stages.not_ingested(lake.path, context.partition_key):
            problems += checks.counts_reconcile(bronze[folder.name], folder).problems
        return dg.AssetCheckResult(passed=not problems, metadata={"problems": problems[:20]})

    @dg.asset_check(asset=SILVER, blocking=True, partitions_def=partitions,
                    description="Each pseudonymised batch's resources per type landed in silver.")
    def landed_reconcile(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        source = context.partition_key
        folders = stages.pseudonymised_batches(lake.path, source)
        if not folders:
            return dg.AssetCheckResult(passed=True, metadata={"batches": 0})
        with fhirlake.connect(lake.path) as opened:
            snapshots = {s.export_id: s for s in opened.log.snapshots() if s.source == source and s.kind == "ingest"}
        problems = []
        for folder in folders:
            expected = read_batch(folder).manifest_counts
            snapshot = snapshots.get(folder.name)
            if snapshot is None:
                problems.append(f"{folder.name}: not in the lake")
                continue
            types: dict[str, Any] = dict(snapshot.summary.get("types", {}))
            for name, count in expected.items():
                landed = types.get(name, {})
                got = sum(int(landed.get(k, 0)) for k in ("inserted", "updated", "unchanged"))
                if got != count:
                    problems.append(f"{folder.name} {name}: {count} pseudonymised, {got} landed")
        return dg.AssetCheckResult(passed=not problems, metadata={"batches": len(folders), "problems": problems[:20]})

    @dg.asset_check(asset=SILVER, partitions_def=partitions,
                    description="Every resource's patient reference resolves to a Patient of the same source.")
    def references_resolve(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        source = context.partition_key
        unresolved: dict[str, int] = {}
        checked = 0
        with fhirlake.connect(lake.path) as opened:
            tables = queries.silver_tables(opened)
            if "Patient" in tables:
                for table in tables:
                    total, missing = queries.fetch_one(opened, queries.unresolved_patients(table), source=source)
                    checked += int(total)
                    if missing:
                        unresolved[table] = int(missing)
        return dg.AssetCheckResult(passed=not unresolved and "Patient" in tables, metadata={
            "references_checked": checked, "unresolved": dg.MetadataValue.json(unresolved)})

    return [no_identifier_leaks, quarantine_rate, counts_reconcile, landed_reconcile, references_resolve,
            *(_gold_check(path, partitions) for path in view_files(views))]


def _gold_check(path: Path, partitions: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    view = json.loads(path.read_text(encoding="utf-8"))
    name, resource = path.stem, str(view.get("resource"))
    # a where clause or a forEach (a resource with nothing to unnest has no row) may leave resources out
    filtered = bool(view.get("where")) or _uses(view.get("select", []), ("forEach",))
    multiplied = _uses(view.get("select", []), _MULTIPLYING)

    @dg.asset_check(asset=dg.AssetKey(["gold", name]), name="rows_match_silver", blocking=True,
                    partitions_def=partitions,
                    description=f"gold.{name} holds rows only of {resource} resources in silver"
                                + ("" if filtered else ", one resource each at least")
                                + ("" if multiplied else ", one row per resource") + ".")
    def rows_match_silver(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
        with fhirlake.connect(lake.path) as opened:
            files = queries.table_files(opened, f"gold.{name}")
            if resource not in queries.silver_tables(opened) or not files:
                rows = keys = outside = silver = 0
            else:
                rows, keys, outside, silver = (int(v) for v in queries.fetch_one(
                    opened, queries.gold_against_silver(resource), source=context.partition_key, files=files))
        passed = outside == 0 and (filtered or keys == silver) and (multiplied or rows == keys)
        return dg.AssetCheckResult(passed=passed, metadata={
            "gold_rows": rows, "gold_resources": keys, "silver_resources": silver, "keys_not_in_silver": outside})

    return rows_match_silver


def _uses(node: Any, keys: Sequence[str]) -> bool:
    """Whether any ``select`` of the view (at any depth) uses one of ``keys``."""
    if isinstance(node, dict):
        return any(k in node for k in keys) or any(_uses(v, keys) for v in node.values())
    if isinstance(node, list):
        return any(_uses(v, keys) for v in node)
    return False
