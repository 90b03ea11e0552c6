"""Benchmark: fhirlake's Bulk Data export against a plain single-stream download of the same files.

The data is the shared 30-patient Synthea export replicated with new ids up to ``--target-mb``
(520 MB by default), served by ``fhirlake serve-bulk`` in its own process on 127.0.0.1. Each
client run is a fresh process, so its peak RSS is its own:

* fhirlake: a whole export (kick-off, polling, manifest, parallel downloads streamed to disk with
  line counts, SHA-256 and fsync, journal) with ``--parallel`` downloads;
* baseline: one httpx stream at a time over the manifest's URLs, written straight to disk.

Both ask for gzip, as the client always does. Runs alternate, the report gives the median MB/s
(decoded NDJSON bytes per second), the ratio fhirlake / baseline and peak RSS, for two file
sizes: split into files of ``--lines-per-file`` lines, and one file per type (the largest about
200 MB at the default size). Peak memory must not grow with file size.

    python benchmarks/bench_bulk.py                     # 520 MB, 3 repeats
    python benchmarks/bench_bulk.py --target-mb 100 --repeat 1   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SYNTHEA = REPO.parent / "shared" / "data" / "synthea-r4-30"


def generate(source: Path, target: Path, target_mb: int) -> int:
    """Replicate every resource of ``source`` with new ids (``<id>-<copy>``) up to ``target_mb``."""
    files = sorted(source.glob("*.ndjson"))
    size = sum(f.stat().st_size for f in files)
    copies = max(1, math.ceil(target_mb * 1_000_000 / size))
    target.mkdir(parents=True, exist_ok=True)
    total = 0
    for path in files:
        lines = path.read_bytes().splitlines()
        with open(target / path.name, "wb") as out:
            for copy in range(copies):
                suffix = f"-{copy}".encode()
                for line in lines:
                    start = line.index(b'"id":"') + 6
                    end = line.index(b'"', start)
                    out.write(line[:end] + suffix + line[end:] + b"\n")
        total += (target / path.name).stat().st_size
    return total


def start_server(data: Path, lines_per_file: int | None) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable,
        "-m",
        "fhirlake",
        "serve-bulk",
        str(data),
        "--port",
        "0",
        "--retry-after",
        "0",
    ]
    if lines_per_file:
        command += ["--lines-per-file", str(lines_per_file)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if " at " not in line:
        process.kill()
        raise SystemExit(f"the server did not start: {line}")
    return process, line.split(" at ", 1)[1].split()[0]


# --------------------------------------------------------------------------- child processes


def child_fhirlake(base_url: str, out: Path, parallel: int) -> dict[str, Any]:
    from fhirlake.bulk import Exporter, ExportOptions, ExportRequest

    exporter = Exporter(
        source="bench",
        request=ExportRequest(base_url=base_url),
        lake=out,
        options=ExportOptions(parallel=parallel),
    )
    started = time.perf_counter()
    result = asyncio.run(exporter.run())
    elapsed = time.perf_counter() - started
    return {"bytes": result.bytes, "seconds": elapsed, "files": len(result.files)}


def child_baseline(urls: list[str], out: Path) -> dict[str, Any]:
    import httpx

    out.mkdir(parents=True, exist_ok=True)
    total = 0
    started = time.perf_counter()
    with httpx.Client(timeout=120) as client:
        for index, url in enumerate(urls):
            headers = {"Accept": "application/fhir+ndjson", "Accept-Encoding": "gzip"}
            with (
                client.stream("GET", url, headers=headers) as response,
                open(out / f"{index}.ndjson", "wb") as fh,
            ):
                response.raise_for_status()
                for chunk in response.iter_bytes():
                    fh.write(chunk)
                    total += len(chunk)
    elapsed = time.perf_counter() - started
    return {"bytes": total, "seconds": elapsed, "files": len(urls)}


def run_child(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def manifest_urls(base_url: str) -> list[str]:
    from fhirlake.bulk import BulkClient, ExportRequest

    with BulkClient() as client:
        job = client.kick_off(ExportRequest(base_url=base_url))
        done = client.wait(job)
    return [f.url for f in done.manifest.output]


# --------------------------------------------------------------------------- main


def measure(
    data: Path, work: Path, *, lines_per_file: int | None, repeat: int, parallel: int
) -> dict[str, list[dict[str, Any]]]:
    server, base_url = start_server(data, lines_per_file)
    runs: dict[str, list[dict[str, Any]]] = {"fhirlake": [], "baseline": []}
    try:
        urls = manifest_urls(base_url)
        for number in range(repeat):
            for name in ("fhirlake", "baseline"):
                out = work / f"{name}-{number}"
                if name == "fhirlake":
                    run = run_child(["fhirlake", base_url, str(out), str(parallel)])
                else:
                    (work / "urls.json").write_text(json.dumps(urls))
                    run = run_child(["baseline", str(work / "urls.json"), str(out)])
                shutil.rmtree(out, ignore_errors=True)
                run["mb_s"] = run["bytes"] / 1e6 / run["seconds"]
                runs[name].append(run)
                print(
                    f"  {name:<9} run {number + 1}: {run['bytes'] / 1e6:,.0f} MB in {run['seconds']:.1f} s "
                    f"= {run['mb_s']:.1f} MB/s, {run['files']} files, peak RSS {run['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait(timeout=10)
    return runs


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind = sys.argv[2]
        if kind == "fhirlake":
            result = child_fhirlake(sys.argv[3], Path(sys.argv[4]), int(sys.argv[5]))
        else:
            result = child_baseline(json.loads(Path(sys.argv[3]).read_text()), Path(sys.argv[4]))
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target-mb", type=int, default=520)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--lines-per-file", type=int, default=5000)
    parser.add_argument("--synthea", type=Path, default=SYNTHEA)
    options = parser.parse_args()
    if not (options.synthea / "Patient.ndjson").is_file():
        raise SystemExit(
            f"{options.synthea}: the shared Synthea export is needed to build the data"
        )

    with tempfile.TemporaryDirectory(prefix="fhirlake-bench-bulk-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        size = generate(options.synthea, work / "data", options.target_mb)
        largest = max(p.stat().st_size for p in (work / "data").glob("*.ndjson"))
        print(
            f"data: {size / 1e6:,.0f} MB of NDJSON in {time.perf_counter() - started:.0f} s "
            f"(largest type file {largest / 1e6:,.0f} MB)"
        )
        results = {}
        for label, lines in (
            (f"files of {options.lines_per_file} lines", options.lines_per_file),
            ("one file per type", None),
        ):
            print(f"{label}:")
            results[label] = measure(
                work / "data",
                work,
                lines_per_file=lines,
                repeat=options.repeat,
                parallel=options.parallel,
            )

    print()
    print(
        f"{'file size':<26} {'fhirlake MB/s':>14} {'baseline MB/s':>14} {'ratio':>6} {'fhirlake RSS':>13} {'baseline RSS':>13}"
    )
    for label, runs in results.items():
        ours = statistics.median(r["mb_s"] for r in runs["fhirlake"])
        base = statistics.median(r["mb_s"] for r in runs["baseline"])
        ours_rss = max(r["peak_rss_mb"] for r in runs["fhirlake"])
        base_rss = max(r["peak_rss_mb"] for r in runs["baseline"])
        print(
            f"{label:<26} {ours:>14.1f} {base:>14.1f} {ours / base:>6.2f} {ours_rss:>10.0f} MB {base_rss:>10.0f} MB"
        )
    print(
        "(median of the runs; ratio = fhirlake / baseline; RSS = peak resident memory of the client process)"
    )


if __name__ == "__main__":
    main()
