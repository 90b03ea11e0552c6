"""The asset graph, one partition per source: bronze → pseudonymised → silver → gold/<view> → catalog.

Assets are thin: each calls :mod:`fhirlake.chain.stages` (which calls ``fhirlake``) and reports
what it did as materialisation metadata. Gold has one asset per ViewDefinition file, made by
:func:`gold_assets`, so adding a view file adds an asset. The lake is written by one run at
a time (the ``fhirlake_lake`` pool); exports and pseudonymisation of sources run in parallel.
"""


import json
import time
from pathlib import Path
from typing import Any

import dagster as dg

import fhirlake
from fhirlake.chain import stages
from fhirlake.sof.library import view_files

from .. import queries
from .resources import LakeResource, PseudonymizerResource, SourcesResource

__all__ = ["LAKE_POOL", "ExportConfig", "build_assets", "gold_assets"]

LAKE_POOL = "fhirlake_lake"
BRONZE, PSEUDONYMISED, SILVER, CATALOG = (dg.AssetKey(k) for k in ("bronze", "pseudonymised", "silver", "catalog"))


class ExportConfig(dg.Config):
    """``incremental``: ask only for changes since the source's watermark (the last export's
    transactionTime); false asks for everything."""

    incremental: bool = True


def build_assets(partitions: dg.PartitionsDefinition, views: Path | None = None) -> list[dg.AssetsDefinition]:
    """Every asset of the graph for these partitions (one per source)."""

    @dg.asset(key=BRONZE, partitions_def=partitions, group_name="bronze", kinds={"fhir", "ndjson"},
              description="Raw FHIR Bulk Data export of the source (or its dropped NDJSON batches), "
                          "in <lake>/bronze/<source>/<export id>/.")
    def bronze(context: dg.AssetExecutionContext, config: ExportConfig, lake: LakeResource,
               sources: SourcesResource) -> dg.MaterializeResult[Any]:
        source, started = context.partition_key, time.perf_counter()
        if sources.is_file_source(source):
            batches = stages.import_drops(lake.path, sources.drop_path, source)
            metadata: dict[str, Any] = {"mode": "drop folder", "batches": [b.export_id for b in batches],
                                        "resources": sum(b.resources for b in batches)}
            counts = _sum_counts(b.lines for b in batches)
        else:
            result = stages.run_export(lake.path, sources.source(source), incremental=config.incremental)
            counts = dict(result.resources)
            metadata = {"mode": "incremental" if config.incremental else "full", "export_id": result.export_id,
                        "transaction_time": result.transaction_time, "resources": sum(counts.values()),
                        "bytes": dg.MetadataValue.int(result.bytes), "files": len(result.files),
                        "server_issues": len(result.issues)}
        metadata |= {"resources_by_type": dg.MetadataValue.json(counts), "duration_s": _since(started)}
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset(key=PSEUDONYMISED, deps=[BRONZE], partitions_def=partitions, group_name="silver",
              kinds={"presidio", "ndjson"},
              description="Pseudonymised copy of each bronze batch (keyed ids, shifted dates, scrubbed text) "
                          "with privacy-report.json and quarantine.jsonl, in <lake>/pseudonymised/<source>/.")
    def pseudonymised(context: dg.AssetExecutionContext, lake: LakeResource,
                      pseudonymizer: PseudonymizerResource) -> dg.MaterializeResult[Any]:
        started = time.perf_counter()
        done = stages.pseudonymise_pending(
            lake.path, context.partition_key, policy=pseudonymizer.load_policy(), key=pseudonymizer.load_key(),
            text=pseudonymizer.text, workers=pseudonymizer.workers)
        reports = [d.report for d in done]
        return dg.MaterializeResult(metadata={
            "batches": [d.batch.export_id for d in done],
            "resources": sum(r.records_out for r in reports),
            "records_in": sum(r.records_in for r in reports),
            "quarantined": sum(r.quarantined for r in reports),
            "patients": sum(r.patients for r in reports),
            "bytes": dg.MetadataValue.int(sum(r.bytes_in for r in reports)),
            "text_entities_replaced": sum(sum(r.text_stats.entities.values()) for r in reports),
            "rules_applied": sum(sum(r.rule_stats.rules.values()) for r in reports),
            "key_id": reports[-1].key_id if reports else "",
            "folder": dg.MetadataValue.path(str(stages.pseudonymised_dir(lake.path, context.partition_key))),
            "duration_s": _since(started),
        })

    @dg.asset(key=SILVER, deps=[PSEUDONYMISED], partitions_def=partitions, group_name="silver", pool=LAKE_POOL,
              kinds={"delta", "duckdb"},
              description="Silver Delta tables (one row per resource), merged incrementally from the "
                          "pseudonymised batches; the same transaction merges the gold tables.")
    def silver(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult[Any]:
        started = time.perf_counter()
        reports = [r for r in stages.ingest_pending(lake.path, context.partition_key, views=lake.views_path)
                   if not r.already_ingested]
        types: dict[str, dict[str, int]] = {}
        for report in reports:
            for name, counts in report.types.items():
                into = types.setdefault(name, {"inserted": 0, "updated": 0, "deleted": 0, "unchanged": 0})
                for field in into:
                    into[field] += getattr(counts, field)
        return dg.MaterializeResult(metadata={
            "exports_ingested": [r.export_id for r in reports],
            "snapshot": reports[-1].snapshot_id if reports else -1,
            "resources": sum(c["inserted"] + c["updated"] + c["unchanged"] for c in types.values()),
            "inserted": sum(c["inserted"] for c in types.values()),
            "updated": sum(c["updated"] for c in types.values()),
            "deleted": sum(c["deleted"] for c in types.values()),
            "by_type": dg.MetadataValue.json(types),
            "duration_s": _since(started),
        })

    @dg.asset(key=CATALOG, deps=[dg.AssetKey(["gold", p.stem]) for p in view_files(views)],
              partitions_def=partitions, group_name="gold", pool=LAKE_POOL, kinds={"duckdb"},
              description="The DuckDB catalog (catalog.duckdb) researchers, notebooks and the MCP server open "
                          "with fhirlake.connect(): views over the latest snapshot.")
    def catalog(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult[Any]:
        with fhirlake.connect(lake.path) as opened:
            tables = opened.tables()
            snapshot = opened.snapshot
        gold = tables.filter(tables["layer"] == "gold")
        return dg.MaterializeResult(metadata={
            "snapshot": snapshot.id if snapshot else -1,
            "tables": tables.height,
            "gold_rows": int(gold["rows"].sum()),
            "catalog": dg.MetadataValue.path(str(lake.path / "catalog.duckdb")),
            "rows_by_table": dg.MetadataValue.json({str(n): int(r) for n, r in tables.select("name", "rows").iter_rows()}),
        })

    return [bronze, pseudonymised, silver, *gold_assets(partitions, views), catalog]


def gold_assets(partitions: dg.PartitionsDefinition, views: Path | None = None) -> list[dg.AssetsDefinition]:
    """One asset per ViewDefinition file: adding a file to ``sql_on_fhir_views/`` adds an asset."""
    return [_gold_asset(path, partitions) for path in view_files(views)]


def _gold_asset(path: Path, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    view = json.loads(path.read_text(encoding="utf-8"))
    name = path.stem

    @dg.asset(key=dg.AssetKey(["gold", name]), deps=[SILVER], partitions_def=partitions, group_name="gold",
              pool=LAKE_POOL, kinds={"delta", "sql"},
              description=f"{view.get('title', name)} ({view.get('resource')}): {view.get('description', '')}")
    def gold(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult[Any]:
        started = time.perf_counter()
        with fhirlake.connect(lake.path, read_only=False, views=lake.views_path) as opened:
            rebuilt = opened.build([name], **lake.build_options()).rebuilt  # only when the view changed since the table was built
            total, mine = queries.fetch_one(opened, queries.gold_rows(name), source=context.partition_key)
            version = opened.describe(f"gold.{name}").version
        return dg.MaterializeResult(metadata={
            "rows": int(mine), "rows_all_sources": int(total), "delta_version": version,
            "rebuilt_from_silver": name in rebuilt, "resource": str(view.get("resource")),
            "view_file": dg.MetadataValue.path(str(path)), "duration_s": _since(started),
        })

    return gold


def _sum_counts(items: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for counts in items:
        for name, n in dict[str, int](counts).items():
            total[name] = total.get(name, 0) + n
    return total


def _since(started: float) -> dg.MetadataValue:
    return dg.MetadataValue.float(round(time.perf_counter() - started, 3))

