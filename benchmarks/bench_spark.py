"""Benchmark: the gold build on DuckDB against Spark local[1] and local[2], on the same silver.

A synthetic export (``fhirlake.synth``, seeded) is ingested once into a lake (silver and gold,
with DuckDB); then every gold table is rebuilt from silver (``lake.build(force=True)``) by:

* ``duckdb``: the default engine, in process (the baseline);
* ``spark local[1]`` and ``spark local[2]``: Spark tasks compute the rows and write the
  Parquet files, committed through deltalake (:mod:`fhirlake.lake._spark_build`); the views
  evaluated as Spark SQL (``sql``, the default) or by DuckDB inside each task (``duckdb``).

Each build runs in a fresh process, ``--repeat`` times, and the report gives the median wall
time, the CPU time of the process and everything under it (JVM, Python workers; with Spark's
start-up, so an upper bound) and silver throughput per CPU second, the speed-up from one Spark worker to two (the goal is
≥ 1.7×), and peak memory: the Python driver's (``ru_maxrss``) and, for Spark, the JVM's and
the largest Python worker's (``VmHWM`` of those processes, read before they exit). Spark's
start-up (a JVM, about 5-10 s here) is timed apart from the build.

    python benchmarks/bench_spark.py                    # 1,500 patients (about 0.5 GB of NDJSON)
    python benchmarks/bench_spark.py --patients 6300    # the ~2 GB lake of bench_lake.py
    python benchmarks/bench_spark.py --memory-sizes 200,1500,4000   # + single-machine memory per patient

What the figures mean for a large build, and where one machine stops: docs/scale.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import bench_lake  # benchmarks run as scripts, with this folder on sys.path
from bench_lake import generate_full, peak_mb  # the same seeded export and peak memory

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "bench-data" / "spark"
#: (engine, master, how Spark tasks evaluate views: Spark SQL, or DuckDB inside each task)
ENGINES = (("duckdb", "", ""), ("spark", "local[1]", "sql"), ("spark", "local[2]", "sql"),
           ("spark", "local[1]", "duckdb"), ("spark", "local[2]", "duckdb"))


def ingest(lake: Path, export: Path) -> None:
    """The lake every build starts from (skipped when it holds this export already)."""
    import fhirlake

    if (lake / "done.json").exists() and json.loads((lake / "done.json").read_text()) == str(export):
        return
    shutil.rmtree(lake, ignore_errors=True)
    with fhirlake.connect(lake, read_only=False) as opened:
        opened.ingest(export, source="bench", allow_raw=True)
    (lake / "done.json").write_text(json.dumps(str(export)))


# ------------------------------------------------------------------------------ measured steps


def step_build(lake: str, engine: str, master: str, views: str) -> dict[str, Any]:
    import fhirlake
    import fhirlake.lake  # imports are not part of the build

    session = None
    startup = 0.0
    if engine == "spark":
        from fhirlake.spark import spark_session

        started = time.perf_counter()
        from fhirlake.lake._spark_build import VIEWS_SETTING

        session = spark_session(master, app_name="bench-spark", config={VIEWS_SETTING: views})
        session.range(1).count()  # the JVM and the first job are up
        startup = time.perf_counter() - started
    started = time.perf_counter()
    with fhirlake.connect(lake, read_only=False) as opened:
        report = opened.build(force=True, engine=engine, spark=session)
    seconds = time.perf_counter() - started
    rows = sum(c.rows_added for c in report.rebuilt.values())
    result = {"seconds": seconds, "startup": startup, "rows": rows, "peak_mb": peak_mb(), "cpu": _cpu_seconds()}
    if session is not None:
        result |= _spark_peaks()
        session.stop()
    return result


def _cpu_seconds() -> float:
    """CPU time used so far by this process and every process under it (the JVM, Python workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    total = own.ru_utime + own.ru_stime
    tick = os.sysconf("SC_CLK_TCK")
    for pid in _descendants(os.getpid()):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15]) / tick  # utime, stime, cutime, cstime
    return total


def step_pseudonymize(export: str, out: str) -> dict[str, Any]:
    """The single-machine pseudonymisation of an export (structured rules, one process): time and peak RSS."""
    import secrets

    from fhirlake.pseudonymize import PseudonymKey, load_policy
    from fhirlake.pseudonymize.pipeline import pseudonymize
    from fhirlake.resources import default_policy_path

    shutil.rmtree(out, ignore_errors=True)
    key = PseudonymKey(secrets.token_hex(32).encode())
    started = time.perf_counter()
    pseudonymize(Path(export), Path(out), load_policy(default_policy_path()), key, workers=1, text=False)
    return {"seconds": time.perf_counter() - started, "peak_mb": peak_mb()}


def step_ingest(pseudonymised: str, lake: str) -> dict[str, Any]:
    """The single-machine ingest (DuckDB) of a pseudonymised export into a new lake: time and peak RSS."""
    import fhirlake
    import fhirlake.lake  # imports are not part of the ingest

    shutil.rmtree(lake, ignore_errors=True)
    started = time.perf_counter()
    with fhirlake.connect(lake, read_only=False) as opened:
        opened.ingest(pseudonymised, source="bench")
    seconds = time.perf_counter() - started
    shutil.rmtree(lake, ignore_errors=True)
    return {"seconds": seconds, "peak_mb": peak_mb()}


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _hwm_mb(pid: int) -> tuple[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    name = next(line.split()[1] for line in status.splitlines() if line.startswith("Name:"))
    kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return name, kb / 1024


def _spark_peaks() -> dict[str, float]:
    """Peak resident memory of the Spark JVM (driver and, locally, executors) and of its largest Python worker."""
    jvm, worker = 0.0, 0.0
    for pid in _descendants(os.getpid()):
        try:
            name, mb = _hwm_mb(pid)
        except (OSError, StopIteration):
            continue
        if name == "java":
            jvm = max(jvm, mb)
        elif name.startswith("python"):
            worker = max(worker, mb)
    return {"jvm_peak_mb": jvm, "worker_peak_mb": worker}


def measure(step: str, *args: str) -> dict[str, Any]:
    """A step of this benchmark in a fresh process."""
    return bench_lake.measure(step, *args, module="bench_spark")


def _size(folder: Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in folder.rglob(pattern) if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="builds per engine (the median is reported)")
    parser.add_argument("--memory-sizes", default="",
                        help="also measure the single-machine chain's peak memory on exports of these sizes "
                             "(comma-separated patient counts), for the memory per patient")
    args = parser.parse_args()
    if args.memory_sizes:
        single_machine([int(n) for n in args.memory_sizes.split(",")], args.seed)
    export, lake = DATA / f"export-{args.patients}", DATA / f"lake-{args.patients}"
    print(f"load average before: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    generate_full(export, args.patients, args.seed)
    ingest(lake, export)
    silver = _size(lake / "silver", "*.parquet")
    print(f"data: {_size(export, '*.ndjson') / 1e9:.2f} GB of NDJSON, {args.patients:,} patients; "
          f"silver {silver / 1e6:.0f} MB of Parquet")
    results: dict[str, list[dict[str, Any]]] = {}
    for _ in range(args.repeat):  # interleaved, so a slow spell of the machine hits every engine
        for engine, master, views in ENGINES:
            label = engine if not master else f"{engine} {master} {views}"
            results.setdefault(label, []).append(measure("build", str(lake), engine, master, views))
    base = statistics.median(r["seconds"] for r in results["duckdb"])
    print(f"{'engine':<23} {'build s':>8} {'vs duckdb':>9} {'start s':>8} {'CPU s':>7} {'MB/CPU s':>8} "
          f"{'driver MB':>9} {'JVM MB':>7} {'worker MB':>9}   rows")
    medians = {}
    for label, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        medians[label] = seconds
        cpu = statistics.median(r["cpu"] for r in runs)  # start-up included: an upper bound
        print(f"{label:<23} {seconds:8.1f} {seconds / base:8.2f}x {statistics.median(r['startup'] for r in runs):8.1f} "
              f"{cpu:7.1f} {silver / 1e6 / cpu:8.2f} {max(r['peak_mb'] for r in runs):9.0f} "
              f"{max(r.get('jvm_peak_mb', 0) for r in runs):7.0f} {max(r.get('worker_peak_mb', 0) for r in runs):9.0f}"
              f"   {runs[0]['rows']:,}")
    for views in ("sql", "duckdb"):
        one, two = medians[f"spark local[1] {views}"], medians[f"spark local[2] {views}"]
        print(f"views as {views:<6}: speed-up local[1] -> local[2] {one / two:.2f}x (goal >= 1.7x); "
              f"per core on local[1]: {silver / 1e6 / one:.1f} MB of silver/s, {args.patients / one:.0f} patients/s")
    print(f"duckdb: {args.patients / base:.0f} patients/s (all cores); load average after: "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")

def single_machine(sizes: list[int], seed: int) -> None:
    """Peak memory of pseudonymise and of ingest on one machine (each in a fresh process) at a
    few sizes, and the slope per patient."""
    rows = []
    for patients in sizes:
        export = DATA / f"export-{patients}"
        generate_full(export, patients, seed)
        pseudo = measure("pseudonymize", str(export), str(DATA / "single-pseudo"))
        ingest = measure("ingest", str(DATA / "single-pseudo"), str(DATA / "single-lake"))
        shutil.rmtree(DATA / "single-pseudo", ignore_errors=True)
        rows.append((patients, {"pseudonymise": pseudo, "ingest": ingest}))
        print(f"single machine, {patients:,} patients ({_size(export, '*.ndjson') / 1e9:.2f} GB): pseudonymise "
              f"{pseudo['seconds']:.1f} s peak {pseudo['peak_mb']:.0f} MB; ingest {ingest['seconds']:.1f} s "
              f"peak {ingest['peak_mb']:.0f} MB")
    if len(rows) >= 2:
        (small, a), (large, b) = rows[0], rows[-1]
        for step in ("pseudonymise", "ingest"):
            slope = (b[step]["peak_mb"] - a[step]["peak_mb"]) / (large - small)
            print(f"{step}: {slope * 1024:.1f} kB more peak memory per patient")

if __name__ == "__main__":
    main()
