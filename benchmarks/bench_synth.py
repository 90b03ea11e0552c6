"""Benchmark of ``fhirlake synth``: resources per minute, MB/s and peak memory at two sizes.

Each configuration runs in a fresh Python process, so the peak memory it reports (max RSS of
the parent process and of the largest worker) belongs to that run alone. Baselines in the
same run: one worker against all workers (the parallel speed-up), and the small size against
the large one (peak memory must stay flat while the output grows ten times). Output goes to
a temporary folder, deleted after each configuration. Besides wall-clock speed it prints
resources per CPU-minute (user + system time of the run and its workers), which stays
meaningful on a machine shared with other jobs.

    python benchmarks/bench_synth.py                  # 1,000 and 10,000 patients
    python benchmarks/bench_synth.py --sizes 200 2000 # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def _one(patients: int, workers: int, gzip: bool, out: Path) -> dict[str, float]:
    from fhirlake.synth import generate

    before = os.times()
    report = generate(out, patients=patients, seed=1, workers=workers, gzip=gzip)
    after = os.times()
    cpu = sum(after[:4]) - sum(before[:4])  # user + system, this process and its workers
    raw_bytes = report.bytes_written
    if gzip:  # MB/s is measured on the uncompressed NDJSON, so gzip and plain compare
        import zlib

        raw_bytes = 0
        for path in report.files.values():
            decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
            with path.open("rb") as f:
                while block := f.read(1 << 20):
                    raw_bytes += len(decoder.decompress(block))
    return {
        "resources": report.total,
        "seconds": report.seconds,
        "cpu_seconds": cpu,
        "ndjson_mb": raw_bytes / 1e6,
        "disk_mb": report.bytes_written / 1e6,
        "parent_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def _run(patients: int, workers: int, gzip: bool) -> dict[str, float]:
    out = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--one", str(patients), str(workers), str(int(gzip)), str(out / "run")],
            check=True,
            capture_output=True,
            text=True,
        )
        result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
        return result
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=(1_000, 10_000), metavar=("SMALL", "LARGE"))
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        patients, workers, gzip, out = args.one
        print(json.dumps(_one(int(patients), int(workers), gzip == "1", Path(out))))
        return
    small, large = args.sizes
    cpus = os.cpu_count() or 1
    configs = [(small, 1, False), (small, cpus, False), (small, cpus, True), (large, cpus, False)]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"fhirlake synth benchmark, {cpus} CPUs (load average before: {load}), seed 1, locale en")
    header = f"{'patients':>9} {'workers':>7} {'gzip':>5} {'resources':>11} {'seconds':>8} {'res/min':>11} {'res/CPU-min':>11} {'MB/s':>7} {'parent MB':>10} {'worker MB':>10}"
    print(header)
    results = {}
    for patients, workers, gzip in configs:
        r = _run(patients, workers, gzip)
        results[(patients, workers, gzip)] = r
        print(
            f"{patients:>9,} {workers:>7} {'yes' if gzip else 'no':>5} {int(r['resources']):>11,} {r['seconds']:>8.1f} "
            f"{r['resources'] / r['seconds'] * 60:>11,.0f} {r['resources'] / r['cpu_seconds'] * 60:>11,.0f} "
            f"{r['ndjson_mb'] / r['seconds']:>7.1f} "
            f"{r['parent_rss_mb']:>10.0f} {r['worker_rss_mb']:>10.0f}"
        )
    base = results[(small, 1, False)]
    par = results[(small, cpus, False)]
    big = results[(large, cpus, False)]
    packed = results[(small, cpus, True)]
    print(f"speed-up of {cpus} workers over 1: {base['seconds'] / par['seconds']:.2f}x")
    print(f"gzip: {packed['disk_mb'] / packed['ndjson_mb']:.1%} of the NDJSON size, {par['seconds'] / packed['seconds']:.2f}x the plain speed")
    print(
        f"{large:,} vs {small:,} patients: {big['resources'] / par['resources']:.1f}x the resources, "
        f"peak memory parent {big['parent_rss_mb'] / par['parent_rss_mb']:.2f}x, worker {big['worker_rss_mb'] / par['worker_rss_mb']:.2f}x"
    )
    print(f"bytes per resource: {big['ndjson_mb'] * 1e6 / big['resources']:.0f}")
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
