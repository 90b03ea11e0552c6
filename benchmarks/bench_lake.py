"""Benchmark: the lake's incremental merge against its full build, on the same generated data.

A full export of ≥ 2 GB of NDJSON (``fhirlake.synth``, seeded) is ingested into an empty lake
(the baseline); then two incremental exports, each touching 1% of the resources, are merged:

* ``nightly``: what a nightly ``_since`` export brings: new resources, new versions and
  deletions of resources updated in the last 180 days (0.4% new, 0.5% updated, 0.1% deleted);
* ``uniform``: the same numbers, with the updated and deleted resources drawn uniformly from
  the whole history (the worst case for copy-on-write Delta tables).

Each step runs in a fresh process, so its peak memory (``ru_maxrss``) is its own. The report gives
the times, the ratios incremental / full build, the time to open the catalog, and peak memory.

    python benchmarks/bench_lake.py                   # 6,300 patients, about 2 GB of NDJSON
    python benchmarks/bench_lake.py --patients 500    # a quick run (about 180 MB)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "bench-data" / "lake"
TRANSACTION_TIME = "2025-07-02T00:00:00Z"
NEW, UPDATED, DELETED = 0.004, 0.005, 0.001  # fractions of all resources: 1% touched
RECENT_DAYS = 180


def generate_full(folder: Path, patients: int, seed: int) -> None:
    """The full export (skipped when the same one is already there)."""
    marker = folder / "done.json"
    wanted = {"patients": patients, "seed": seed}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return
    from fhirlake.synth import generate

    shutil.rmtree(folder, ignore_errors=True)
    generate(folder, patients=patients, seed=seed, workers=2)
    (folder / "truth.json").unlink(missing_ok=True)
    marker.write_text(json.dumps(wanted))


def _fraction(key: str, salt: str) -> float:
    return zlib.crc32(f"{salt}:{key}".encode()) / 2**32


def _last_updated(resource: dict[str, Any]) -> datetime | None:
    text = resource.get("meta", {}).get("lastUpdated")
    return datetime.fromisoformat(text) if text else None


def generate_incremental(full: Path, folder: Path, *, recent_only: bool) -> dict[str, int]:
    """An incremental export touching 1% of the full export's resources (streamed, file by file)."""
    manifest = json.loads((full / "manifest.json").read_text())
    as_of = datetime.fromisoformat(manifest["transactionTime"])
    since = as_of - timedelta(days=RECENT_DAYS)
    total = sum(entry["count"] for entry in manifest["output"])
    eligible = total
    if recent_only:  # count the recent resources, to draw 1% of *all* resources among them
        eligible = 0
        for entry in manifest["output"]:
            with (full / entry["url"]).open("rb") as lines:
                eligible += sum(1 for line in lines if (_last_updated(orjson.loads(line)) or as_of) >= since)
    scale = total / max(eligible, 1)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    counts = {"new": 0, "updated": 0, "deleted": 0, "resources": total}
    outputs, deleted = [], []
    stamp = datetime(2025, 7, 1, tzinfo=UTC)
    for entry in manifest["output"]:
        written = 0
        with (full / entry["url"]).open("rb") as lines, (folder / entry["url"]).open("wb") as out:
            for line in lines:
                resource = orjson.loads(line)
                if recent_only and (_last_updated(resource) or as_of) < since:
                    continue
                draw = _fraction(resource["id"], "pick") / scale
                if draw < UPDATED:
                    resource["meta"]["lastUpdated"] = (stamp + timedelta(seconds=written)).isoformat()
                    if "valueQuantity" in resource:
                        resource["valueQuantity"]["value"] = round(resource["valueQuantity"]["value"] + 1, 2)
                    out.write(orjson.dumps(resource) + b"\n")
                    counts["updated"] += 1
                    written += 1
                elif draw < UPDATED + DELETED:
                    deleted.append(f"{resource['resourceType']}/{resource['id']}")
                elif draw < UPDATED + DELETED + NEW:
                    resource["id"] += "-new"
                    resource["meta"]["lastUpdated"] = (stamp + timedelta(seconds=written)).isoformat()
                    out.write(orjson.dumps(resource) + b"\n")
                    counts["new"] += 1
                    written += 1
        outputs.append({"type": entry["type"], "url": entry["url"], "count": written})
    counts["deleted"] = len(deleted)
    with (folder / "deleted.ndjson").open("wb") as out:
        for start in range(0, len(deleted), 1000):
            entries = [{"request": {"method": "DELETE", "url": ref}} for ref in deleted[start:start + 1000]]
            out.write(orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}) + b"\n")
    manifest = {"transactionTime": TRANSACTION_TIME, "request": "$export?_since=" + manifest["transactionTime"],
                "output": outputs, "deleted": [{"type": "Bundle", "url": "deleted.ndjson"}], "error": []}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return counts


# ------------------------------------------------------------------------------ measured steps


def step_ingest(lake: str, folder: str, source: str) -> dict[str, Any]:
    import fhirlake
    import fhirlake.lake  # imports are not part of the merge

    started = time.perf_counter()
    with fhirlake.connect(lake, read_only=False) as opened:
        report = opened.ingest(folder, source=source, allow_raw=True)
    seconds = time.perf_counter() - started
    changed = {t: vars(c) for t, c in report.types.items()}
    return {"seconds": seconds, "peak_mb": peak_mb(), "snapshot": report.snapshot_id, "types": changed}


def step_open(lake: str) -> dict[str, Any]:
    import fhirlake
    import fhirlake.lake  # imports are not part of opening

    times = []
    for _ in range(7):
        started = time.perf_counter()
        opened = fhirlake.connect(lake)
        times.append(time.perf_counter() - started)
        opened.close()
    opened = fhirlake.connect(lake)
    started = time.perf_counter()
    rows = opened.sql("SELECT count(*) AS n FROM gold.observation")["n"][0]
    first_query = time.perf_counter() - started
    return {"open_ms": statistics.median(times) * 1000, "count_ms": first_query * 1000, "rows": int(rows),
            "peak_mb": peak_mb()}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(step: str, *args: str, module: str = "bench_lake") -> dict[str, Any]:
    """``<module>.step_<step>(*args)`` in a fresh process (its own imports and peak memory)."""
    code = (f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import {module}; "
            f"print(json.dumps({module}.step_{step}(*sys.argv[1:])))")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"step {step} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _loadavg() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=6300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    full, lake = DATA / f"full-{args.patients}", DATA / f"lake-{args.patients}"
    print(f"load average before: {_loadavg()}")
    generate_full(full, args.patients, args.seed)
    nightly, uniform = DATA / "nightly", DATA / "uniform"
    touched = {"nightly": generate_incremental(full, nightly, recent_only=True),
               "uniform": generate_incremental(full, uniform, recent_only=False)}
    shutil.rmtree(lake, ignore_errors=True)

    build = measure("ingest", str(lake), str(full), "bench")
    open_ = measure("open", str(lake))
    merged = {name: measure("ingest", str(lake), str(DATA / name), "bench") for name in ("nightly", "uniform")}
    replay = measure("ingest", str(lake), str(uniform), "bench")

    ndjson = _size(full) - (full / "manifest.json").stat().st_size
    print(f"data: {ndjson / 1e9:.2f} GB of NDJSON, {touched['uniform']['resources']:,} resources, "
          f"{args.patients:,} patients; lake on disk {_size(lake) / 1e9:.2f} GB")
    print(f"full build:        {build['seconds']:8.1f} s   peak {build['peak_mb']:6.0f} MB")
    for name, result in merged.items():
        t = touched[name]
        print(f"incremental {name:<7} {result['seconds']:8.1f} s   peak {result['peak_mb']:6.0f} MB   "
              f"ratio {result['seconds'] / build['seconds']:.3f}   (+{t['new']:,} new, {t['updated']:,} updated, "
              f"{t['deleted']:,} deleted)")
    print(f"replay (no-op):    {replay['seconds']:8.2f} s   peak {replay['peak_mb']:6.0f} MB")
    print(f"catalog open:      {open_['open_ms']:8.1f} ms (median of 7)  first count(*) over gold.observation "
          f"{open_['count_ms']:.0f} ms ({open_['rows']:,} rows)   peak {open_['peak_mb']:.0f} MB")
    peak = max(build["peak_mb"], open_["peak_mb"], replay["peak_mb"], *(m["peak_mb"] for m in merged.values()))
    print(f"peak memory of any step: {peak:.0f} MB")
    print(f"load average after: {_loadavg()}")


if __name__ == "__main__":
    main()
