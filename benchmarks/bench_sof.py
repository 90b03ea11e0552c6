"""Benchmark: fhirlake's SQL-on-FHIR runner against hand-written DuckDB SQL.

Both read the same seeded synthetic NDJSON (Patients, and Observations of which 30% are
blood-pressure panels with two components) with explicit columns, and write the same Parquet
(zstd). Runs alternate engine by engine, each in a fresh process so its peak memory is its own;
the report gives the median of the repeats, the ratio fhirlake / hand-written, and peak RSS.

    python benchmarks/bench_sof.py                  # 50,000 patients + 500,000 observations
    python benchmarks/bench_sof.py --scale 5        # 5x, to see time grow linearly, memory flat
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
VIEWS = HERE / "views"
BP_CODES = (("8480-6", "Systolic blood pressure"), ("8462-4", "Diastolic blood pressure"))
QUANTITY_CODES = (("8302-2", "Body Height", "cm"), ("29463-7", "Body Weight", "kg"),
                  ("8867-4", "Heart rate", "/min"), ("4548-4", "Hemoglobin A1c", "%"),
                  ("2339-0", "Glucose", "mg/dL"), ("39156-5", "Body mass index", "kg/m2"))

# The hand-written baseline: what a DuckDB user writes for the same output.
HAND_WRITTEN = {
    "bench_patient": """
        SELECT id, gender, birthDate AS birth_date,
               list_filter(name, lambda n: n.use = 'official')[1].family AS family
        FROM read_json('{dir}/Patient.ndjson', format = 'newline_delimited', columns = {{
            'id': 'VARCHAR', 'gender': 'VARCHAR', 'birthDate': 'VARCHAR',
            'name': 'STRUCT(use VARCHAR, family VARCHAR)[]'}})""",
    "bench_observation_component": """
        SELECT id, c.code.coding[1].code AS code, c.valueQuantity.value AS value, c.valueQuantity.unit AS unit
        FROM (SELECT id, unnest(component) AS c
              FROM read_json('{dir}/Observation.ndjson', format = 'newline_delimited', columns = {{
                  'id': 'VARCHAR',
                  'component': 'STRUCT(code STRUCT(coding STRUCT(code VARCHAR)[]), valueQuantity STRUCT(value DOUBLE, unit VARCHAR))[]'}}))""",
    "bench_observation_flat": """
        SELECT id, code.coding[1].code AS code, valueQuantity.value AS value, valueQuantity.unit AS unit,
               effectiveDateTime AS effective, split_part(subject.reference, '/', 2) AS patient_id
        FROM read_json('{dir}/Observation.ndjson', format = 'newline_delimited', columns = {{
            'id': 'VARCHAR', 'code': 'STRUCT(coding STRUCT(code VARCHAR)[])',
            'valueQuantity': 'STRUCT(value DOUBLE, unit VARCHAR)', 'effectiveDateTime': 'VARCHAR',
            'subject': 'STRUCT(reference VARCHAR)'}})""",
}


def generate(folder: Path, patients: int, observations: int, seed: int) -> None:
    """Write seeded Patient.ndjson and Observation.ndjson (skipped when already there)."""
    marker = folder / "done.json"
    wanted = {"patients": patients, "observations": observations, "seed": seed, "format": 2}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with (folder / "Patient.ndjson").open("wb") as out:
        for i in range(patients):
            names = [{"use": "official", "family": f"Family{rng.randrange(10_000)}", "given": [f"Given{rng.randrange(5_000)}"]}]
            if rng.random() < 0.2:
                names.insert(0, {"use": "nickname", "given": [f"Nick{rng.randrange(1_000)}"]})
            patient = {"resourceType": "Patient", "id": f"p{i}", "meta": {"lastUpdated": "2026-01-01T00:00:00Z"},
                       "gender": rng.choice(("female", "male")), "name": names,
                       "birthDate": f"{rng.randrange(1930, 2020)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
                       "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                                       "system": "http://hospital.example.org/mrn", "value": f"MRN{rng.randrange(10**8):08d}"}],
                       "telecom": [{"system": "phone", "value": f"555-{rng.randrange(10**7):07d}", "use": "home"}],
                       "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]},
                       "address": [{"line": [f"{rng.randrange(1, 999)} Main Street"], "city": "Town", "state": "MA",
                                    "postalCode": f"0{rng.randrange(1000, 9999)}", "country": "US"}]}
            out.write(orjson.dumps(patient) + b"\n")
    with (folder / "Observation.ndjson").open("wb") as out:
        for i in range(observations):
            observation: dict[str, object] = {
                "resourceType": "Observation", "id": f"o{i}", "status": "final",
                "meta": {"lastUpdated": "2026-01-01T00:00:00Z"},
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
                "subject": {"reference": f"Patient/p{rng.randrange(patients)}"},
                "encounter": {"reference": f"Encounter/e{rng.randrange(observations // 5 + 1)}"},
                "effectiveDateTime": f"20{rng.randrange(10, 26)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T10:00:00Z",
                "issued": "2026-01-01T10:00:00.000+00:00",
                "performer": [{"reference": f"Practitioner/pr{rng.randrange(500)}", "display": "Dr. Example Practitioner"}],
                "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                                "code": "N", "display": "Normal"}]}],
            }
            if rng.random() < 0.3:
                observation["code"] = {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}]}
                observation["component"] = [
                    {"code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
                     "valueQuantity": {"value": round(rng.gauss(125 if code == "8480-6" else 80, 15), 1),
                                       "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
                    for code, display in BP_CODES
                ]
            else:
                code, display, unit = rng.choice(QUANTITY_CODES)
                observation["code"] = {"coding": [{"system": "http://loinc.org", "code": code, "display": display}], "text": display}
                observation["valueQuantity"] = {"value": round(rng.uniform(1, 200), 2), "unit": unit,
                                                "system": "http://unitsofmeasure.org", "code": unit}
            out.write(orjson.dumps(observation) + b"\n")
    marker.write_text(json.dumps(wanted))


def run_one(engine: str, view: str, data: Path, out: Path) -> dict[str, float]:
    """One measured run, in this process (called in a fresh child process). The imports are
    timed apart (``import_s``): a fresh process pays them once, a notebook or server never again."""
    imported = time.perf_counter()
    import duckdb

    if engine == "fhirlake":
        from fhirlake.sof import (
            run_view,  # the lazy attribute imports the runner, compiler and sqlglot
        )
    import_s = time.perf_counter() - imported

    started = time.perf_counter()
    if engine == "fhirlake":
        rows = run_view(VIEWS / f"{view}.json", data, output=out).rows
    else:
        con = duckdb.connect()
        query = HAND_WRITTEN[view].format(dir=data)
        rows = con.execute(f"COPY ({query}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)").fetchall()[0][0]
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak_mb, "rows": rows, "import_s": import_s}


def measure(engine: str, view: str, data: Path, out: Path) -> dict[str, float]:
    code = (
        f"import json, sys; sys.path.insert(0, {str(HERE)!r}); from bench_sof import run_one; "
        f"from pathlib import Path; print(json.dumps(run_one({engine!r}, {view!r}, Path({str(data)!r}), Path({str(out)!r}))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies 50,000 patients / 500,000 observations")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", type=Path, default=HERE.parent / "bench-data" / "sof")
    args = parser.parse_args()

    patients, observations = int(50_000 * args.scale), int(500_000 * args.scale)
    data = args.workdir / f"x{args.scale:g}"
    started = time.perf_counter()
    generate(data, patients, observations, args.seed)
    size_mb = sum(p.stat().st_size for p in data.glob("*.ndjson")) / 1e6
    print(f"data: {patients:,} patients, {observations:,} observations, {size_mb:,.0f} MB "
          f"(ready in {time.perf_counter() - started:.1f} s)")
    out_dir = args.workdir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)

    print(f"{'view':32} {'fhirlake s':>11} {'hand s':>8} {'ratio':>6} {'min ratio':>9} {'fhirlake MB':>12} {'hand MB':>8} {'rows':>10}")
    ratios = []
    imports: dict[str, list[float]] = {"fhirlake": [], "hand": []}
    for view in HAND_WRITTEN:
        times: dict[str, list[float]] = {"fhirlake": [], "hand": []}
        peaks: dict[str, list[float]] = {"fhirlake": [], "hand": []}
        rows: dict[str, float] = {}
        for _ in range(args.repeats):
            for engine in ("hand", "fhirlake"):  # alternate, so noise hits both
                result = measure(engine, view, data, out_dir / f"{view}.{engine}.parquet")
                times[engine].append(result["seconds"])
                peaks[engine].append(result["peak_mb"])
                rows[engine] = result["rows"]
                imports[engine].append(result["import_s"])
        assert rows["fhirlake"] == rows["hand"], f"{view}: row counts differ {rows}"
        ratio = statistics.median(times["fhirlake"]) / statistics.median(times["hand"])
        best_ratio = min(times["fhirlake"]) / min(times["hand"])  # less sensitive to a busy machine
        ratios.append(ratio)
        print(f"{view:32} {statistics.median(times['fhirlake']):11.2f} {statistics.median(times['hand']):8.2f} "
              f"{ratio:6.2f} {best_ratio:9.2f} {max(peaks['fhirlake']):12.0f} {max(peaks['hand']):8.0f} {int(rows['fhirlake']):10,}")
    print(f"worst median ratio {max(ratios):.2f} (goal <= 1.1); medians of {args.repeats} alternating runs, "
          f"min ratio = fastest fhirlake run / fastest hand-written run")
    print(f"import, not in the times above (median): fhirlake {statistics.median(imports['fhirlake']):.2f} s, "
          f"hand-written (duckdb only) {statistics.median(imports['hand']):.2f} s")


if __name__ == "__main__":
    main()
