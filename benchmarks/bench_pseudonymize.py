"""Benchmark: fhirlake pseudonymisation, structured rules and free text (NER and rules).

Data comes from ``fhirlake synth`` (English locale; its DocumentReference notes repeat names,
addresses, phones and identifiers) and is written under ``bench-data/`` (not committed).
Every run is a fresh process, so its peak memory is its own. Baselines in the same run:

* structured rules (text rules turned into redactions): 1 process vs 2 worker processes,
  median MB/s over the repeats and the ratio; then the same at half the input size, to show
  that peak memory does not grow with the input;
* free text: the whole pipeline with NER and the text rules, analysis cache off (``cacheSize: 0``) vs on, in
  texts/s of scrubbing time (analysis, deny-lists, replacement); and a second pass over the
  same texts with a warm cache (what an incremental re-export sees).

    python benchmarks/bench_pseudonymize.py                 # 600 + 300 patients, 12 for text
    python benchmarks/bench_pseudonymize.py --patients 1200 --repeats 5
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "bench-data" / "pseudonymize"


def _generate(folder: Path, patients: int, seed: int) -> Path:
    from fhirlake.synth import generate

    marker = folder / "done.json"
    wanted = {"patients": patients, "seed": seed, "format": 1}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return folder
    generate(folder, patients=patients, seed=seed, locale="en", overwrite=True)
    marker.write_text(json.dumps(wanted))
    return folder


def _peak_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def _run_structured(args: argparse.Namespace) -> dict[str, Any]:
    from fhirlake.pseudonymize import load_key, load_policy, pseudonymize

    report = pseudonymize(
        Path(args.input), Path(args.output), load_policy(), load_key(),
        workers=args.workers, text=False, overwrite=True,
    )
    own, children = _peak_mb()
    cpu = sum(
        getattr(resource.getrusage(who), field)
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        for field in ("ru_utime", "ru_stime")
    )
    return {"seconds": report.seconds, "bytes": report.bytes_in, "records": report.records_in,
            "peak_parent_mb": own, "peak_worker_mb": children, "cpu_seconds": cpu}


def _run_text(args: argparse.Namespace) -> dict[str, Any]:
    from fhirlake.pseudonymize import load_key, load_policy, pseudonymize
    from fhirlake.pseudonymize.text import TextScrubber, load_models

    policy = load_policy()
    if args.cache == "off":
        policy = dataclasses.replace(policy, text=dataclasses.replace(policy.text, cache_size=0))
    key = load_key()
    started = time.perf_counter()
    scrubber = TextScrubber(policy.text, key, load_models(policy.text), policy.max_age)
    load_seconds = time.perf_counter() - started
    out = Path(args.output)
    passes = []
    for _ in range(2 if args.cache == "on" else 1):
        report = pseudonymize(Path(args.input), out, policy, key, workers=1, overwrite=True, scrubber=scrubber)
        stats = report.text_stats
        passes.append({
            "elements": stats.elements, "analysed": stats.analysed, "cache_hits": stats.cache_hits,
            "characters": stats.characters, "text_seconds": stats.seconds,
            "texts_per_second": stats.elements / stats.seconds,
        })
    own, _ = _peak_mb()
    return {"load_seconds": load_seconds, "passes": passes, "peak_mb": own}


def _child(mode: str, **options: Any) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", mode]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"benchmark run failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=600)
    parser.add_argument("--text-patients", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=("structured", "text"))
    parser.add_argument("--input")
    parser.add_argument("--output")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cache", choices=("on", "off"), default="on")
    args = parser.parse_args()
    if args.child:
        run = _run_structured if args.child == "structured" else _run_text
        print(json.dumps(run(args)))
        return

    os.environ.setdefault("FHIRLAKE_PSEUDONYM_KEY", secrets.token_hex(32))  # a throwaway key
    out = DATA / "out"
    full = _generate(DATA / f"synth-{args.patients}", args.patients, seed=11)
    half = _generate(DATA / f"synth-{args.patients // 2}", args.patients // 2, seed=11)
    notes = _generate(DATA / f"synth-text-{args.text_patients}", args.text_patients, seed=5)
    print(f"cores: {os.cpu_count()}, load average before: {_load()}")

    print(f"\n== structured rules, {args.patients} patients (text rules as redactions) ==")
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for _ in range(args.repeats):
        for workers in (1, 2):  # alternate, so that load from other jobs hits both alike
            runs[workers].append(_child("structured", input=full, output=out, workers=workers))
    size_mb = runs[1][0]["bytes"] / 1e6
    print(f"input: {size_mb:.1f} MB, {runs[1][0]['records']:,} resources")
    speeds = {}
    for workers, results in runs.items():
        speeds[workers] = statistics.median(r["bytes"] / 1e6 / r["seconds"] for r in results)
        print(
            f"  {workers} process{'es' if workers > 1 else ''}: median {speeds[workers]:.1f} MB/s "
            f"({statistics.median(r['seconds'] for r in results):.2f} s), peak RSS parent "
            f"{max(r['peak_parent_mb'] for r in results):.0f} MB, worker {max(r['peak_worker_mb'] for r in results):.0f} MB; "
            f"{statistics.median(r['bytes'] / 1e6 / r['cpu_seconds'] for r in results):.1f} MB per CPU-second"
        )
    print(f"  ratio 2 processes / 1 process: {speeds[2] / speeds[1]:.2f}x "
          "(the machine is shared: MB per CPU-second shows what each core does, whatever the load)")
    small = _child("structured", input=half, output=out, workers=2)
    large = runs[2][-1]
    print(
        f"  memory vs input size (2 processes): {small['bytes'] / 1e6:.0f} MB in -> parent {small['peak_parent_mb']:.0f} MB, "
        f"worker {small['peak_worker_mb']:.0f} MB; {large['bytes'] / 1e6:.0f} MB in -> parent "
        f"{large['peak_parent_mb']:.0f} MB, worker {large['peak_worker_mb']:.0f} MB"
    )

    print(f"\n== free text (NER and rules), {args.text_patients} patients, 1 process ==")
    off = _child("text", input=notes, output=out, cache="off")
    on = _child("text", input=notes, output=out, cache="on")
    print(f"  spaCy EN/FR (NER only) load: {off['load_seconds']:.1f} s; peak RSS {max(off['peak_mb'], on['peak_mb']):.0f} MB")
    cold, warm = on["passes"]
    for label, p in (("cache off", off["passes"][0]), ("cache on (cold)", cold), ("cache on (warm, 2nd pass)", warm)):
        print(
            f"  {label:<26} {p['elements']:,} texts ({p['characters'] / max(p['elements'], 1):.0f} chars avg), "
            f"{p['analysed']:,} analysed, {p['cache_hits']:,} cache hits: {p['texts_per_second']:.1f} texts/s"
        )
    print(f"  ratio cache on (cold) / off: {cold['texts_per_second'] / off['passes'][0]['texts_per_second']:.2f}x; "
          f"warm / off: {warm['texts_per_second'] / off['passes'][0]['texts_per_second']:.1f}x")
    print(f"\nload average after: {_load()}")


if __name__ == "__main__":
    main()
