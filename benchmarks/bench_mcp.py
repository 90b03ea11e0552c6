"""Latency of the MCP cohort tools: p50/p95 of count_cohort and cohort_breakdown, and peak RSS.

Two lakes: the demo lake (150 synthetic patients, two sources) and a large one. Generating
100,000 patients with ``fhirlake synth`` is ~30 M resources (too slow here), so the large lake
is a synthetic lake of ``--base`` patients whose gold Parquet files are amplified ×N in DuckDB
with distinct patient keys (``patient_id || '~' || copy``) and a catalog over them; this keeps
the value distributions and gives 100,000 distinct patients. Generated data goes under
``bench-data/`` (git-ignored). The baseline in the same run is the hand-written SQL the test
suite checks against (count distinct over the same files), so the ratio shows the server's
overhead (scoping, key fetch, differencing guard, suppression).

    .venv/bin/python benchmarks/bench_mcp.py --base 2000 --copies 50 --repeat 30
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
from deltalake import DeltaTable, write_deltalake

import fhirlake
from fhirlake.cohorts import CohortDefinition, Measure
from fhirlake.lake._catalog import catalog_tables, write_catalog  # the lake's own catalog writer
from fhirlake.serving import CohortService, DataScope, GoldReader, Trace
from fhirlake.synth import generate

ROOT = Path(__file__).resolve().parents[1] / "bench-data" / "mcp"
COHORT = CohortDefinition.model_validate({"index_date": "2025-01-01", "criteria": {"kind": "and", "criteria": [
    {"kind": "demographics", "sex": ["female"], "age_min": 40},
    {"kind": "observation", "codes": ["4548-4"], "value": {"op": "gt", "value": 5.0, "unit": "%"}},
    {"kind": "not", "criterion": {"kind": "condition", "codes": ["444814009"]}}]}})
BASELINE = ("SELECT count(DISTINCT p.patient_id) FROM gold.patient p JOIN gold.observation o USING (patient_id) "
            "WHERE p.gender = 'female' AND p.age >= 40 AND o.code = '4548-4' AND o.value_quantity > 5 AND o.value_unit = '%' "
            "AND p.patient_id NOT IN (SELECT patient_id FROM gold.condition WHERE code = '444814009')")


def build(folder: Path, patients: int) -> Path:
    lake_dir = folder / "lake"
    if (lake_dir / "catalog.duckdb").exists():
        return lake_dir
    shutil.rmtree(lake_dir, ignore_errors=True)
    lake = fhirlake.connect(lake_dir, read_only=False)
    half = patients // 2
    for source, seed in (("site-a", 7), ("site-b", 8)):
        export = folder / "exports" / source
        if not (export / "manifest.json").exists():  # written last: a complete export is reused
            generate(export, patients=half, seed=seed, workers=2, overwrite=True)
        started = time.perf_counter()
        lake.ingest(export, source=source)
        print(f"  ingested {source} ({half:,} patients) in {time.perf_counter() - started:.0f} s", flush=True)
    lake.close()
    return lake_dir


def amplify(base: Path, folder: Path, copies: int) -> Path:
    """A copy of ``base``'s lake whose gold tables hold ``copies`` × its patients (distinct keys).

    Each gold Delta table is overwritten in the copy (a new Delta version, same partitioning) and the
    catalog is rewritten by the lake's own catalog writer, so the large lake is a real lake: the
    server reads it through the same views, files table and sandbox as any other.
    """
    target = folder / "lake"
    if (target / "catalog.duckdb").exists():
        return target
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(base, target)
    lake = fhirlake.connect(target, read_only=False)
    con = duckdb.connect()
    tables: dict[str, DeltaTable] = {}
    for layer in ("silver", "gold"):
        for path in sorted((target / layer).iterdir()):
            table = DeltaTable(str(path))
            if layer == "gold":
                con.register("rows", table.to_pyarrow_dataset())
                keys = [name for name in table.schema().to_arrow().names if name.endswith("_id") or name == "_resource_key"]
                replace = ", ".join(f"{k} || '~' || n AS {k}" for k in keys)
                amplified = con.sql(f"SELECT rows.* REPLACE ({replace}) FROM rows, range({copies}) r(n)")
                write_deltalake(str(path), amplified.to_arrow_reader(), mode="overwrite",
                                partition_by=table.metadata().partition_columns or None)
                con.unregister("rows")
                table = DeltaTable(str(path))
            tables[f"{layer}/{path.name}"] = table
    latest = lake.log.latest()
    assert latest is not None, f"{base} has no snapshot"
    write_catalog(lake.storage, catalog_tables(lake.storage, tables), latest, lake.log.snapshots())
    con.close()
    lake.close()
    return target


def measure(label: str, repeat: int, call: Callable[[], object]) -> list[float]:
    call()  # warm
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p50, p95 = statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]
    print(f"  {label:<34} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms")
    return times


def bench(lake: Path, repeat: int) -> None:
    service = CohortService(GoldReader(lake))
    scope = DataScope()
    patients = fhirlake.connect(lake).sql("SELECT count(DISTINCT patient_id) FROM gold.patient").item()
    print(f"{lake} ({patients:,} patients)")
    baseline_con = fhirlake.connect(lake)
    base = measure("baseline: hand-written SQL count", repeat, lambda: baseline_con.sql(BASELINE))
    counter = iter(range(10**9))
    # a fresh client id per call: the differencing guard would otherwise compare against its own history
    count = measure("count_cohort", repeat, lambda: service.count(f"c{next(counter)}", COHORT, scope, Trace()))
    breakdown = measure("cohort_breakdown sex×age_band+HbA1c", repeat, lambda: service.breakdown(
        f"b{next(counter)}", COHORT, ["sex", "age_band"], scope, Trace(), measure=Measure(codes=["4548-4"])))
    print(f"  ratio count_cohort / baseline (p50): {statistics.median(count) / statistics.median(base):.2f}; "
          f"breakdown / baseline: {statistics.median(breakdown) / statistics.median(base):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=2000, help="synthetic patients of the lake that is amplified")
    parser.add_argument("--copies", type=int, default=50, help="amplification factor (base × copies patients)")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    demo = build(ROOT / "demo-150", 150)
    base = build(ROOT / f"base-{args.base}", args.base)
    large = amplify(base, ROOT / f"amplified-{args.base}x{args.copies}", args.copies)
    bench(demo, args.repeat)
    bench(large, args.repeat)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
