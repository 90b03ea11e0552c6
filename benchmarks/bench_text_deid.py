"""Benchmark: free-text de-identification, labelled quality and speed against the model's floor.

The corpus is the project's labelled one (``tests.pseudonymize.corpus``, written from the
issue's words by someone who did not read the engine): FHIR exports of French and English
clinical notes with Faker people, addresses, phones, e-mails, identifiers and dates in every
format, each span labelled. For each language this prints

* recall per entity type (and the worst variants), the corpus's precision estimate, the share
  of clinical terms damaged, the share of dates moved consistently and birth dates cut to the
  year;
* speed, in the same run and on the same cores: the **floor**, a bare spaCy NER pass with the
  same models over the same note texts (NER pipe only, ``nlp.pipe``, one process per core),
  against fhirlake's **whole run** (first pass, structured rules, free text, writing), both in
  notes/s with models already loaded, and the ratio (target ≥ 0.8); then the run at half the
  notes, to show time linear in the number of notes; model load time and peak memory.

Each measured run is a fresh process (its peak memory is its own); timings are medians over
``--repeats`` alternating runs, since this machine is shared and noisy.

    python benchmarks/bench_text_deid.py                       # 500 notes per language
    python benchmarks/bench_text_deid.py --notes 1000 --repeats 3
"""

from __future__ import annotations

import argparse
import base64
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
ROOT = HERE.parent
DATA = ROOT / "bench-data" / "text-deid"
sys.path.insert(0, str(ROOT))  # the corpus lives in tests/pseudonymize/corpus
TARGETS = ("NAME", "DATE", "BIRTH_DATE", "ID", "PHONE", "EMAIL", "ADDRESS")


def _corpus(language: str, notes: int, seed: int) -> Path:
    from tests.pseudonymize.corpus import write_corpus

    folder = DATA / f"{language}-{notes}-{seed}"
    marker = folder / "done.json"
    if not marker.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        write_corpus(folder, language=language, notes=notes, seed=seed)  # type: ignore[arg-type]
        marker.write_text(json.dumps({"notes": notes, "seed": seed}))
    return folder


def _note_texts(folder: Path) -> list[str]:
    import orjson

    texts = []
    for line in (folder / "DocumentReference.ndjson").read_bytes().splitlines():
        if line.strip():
            for content in orjson.loads(line).get("content", []):
                data = content.get("attachment", {}).get("data")
                if data:
                    texts.append(base64.b64decode(data).decode("utf-8"))
    return texts


def _peak_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


# --- child runs ------------------------------------------------------------------------------

_FLOOR_NLP: Any = None


def _floor_chunk(texts: list[str]) -> int:
    return sum(len(doc.ents) for doc in _FLOOR_NLP.pipe(texts, batch_size=32))


def _run_floor(args: argparse.Namespace) -> dict[str, Any]:
    """A bare spaCy NER pass over the notes, one forked process per core."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import spacy

    global _FLOOR_NLP
    from fhirlake.pseudonymize import load_policy
    from fhirlake.pseudonymize.ner import load_ner_settings

    name = load_ner_settings(load_policy().text.analyzer).models[args.language]
    started = time.perf_counter()
    full = spacy.load(name)
    _FLOOR_NLP = spacy.load(name, exclude=[p for p in full.pipe_names if p != "ner"])
    load_seconds = time.perf_counter() - started
    texts = _note_texts(Path(args.input))
    chunks = [texts[i : i + 16] for i in range(0, len(texts), 16)]
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("fork")) as pool:
        entities = sum(pool.map(_floor_chunk, chunks))
    seconds = time.perf_counter() - started
    own, children = _peak_mb()
    return {
        "seconds": seconds,
        "notes": len(texts),
        "entities": entities,
        "load_seconds": load_seconds,
        "peak_parent_mb": own,
        "peak_worker_mb": children,
    }


def _run_fhirlake(args: argparse.Namespace) -> dict[str, Any]:
    """fhirlake's whole run over the export, models loaded first (as a long-lived worker has)."""
    from fhirlake.pseudonymize import load_key, load_policy, pseudonymize
    from fhirlake.pseudonymize.text import TextScrubber, load_models

    policy, key = load_policy(), load_key()
    started = time.perf_counter()
    scrubber = TextScrubber(policy.text, key, load_models(policy.text), policy.max_age)
    load_seconds = time.perf_counter() - started
    report = pseudonymize(
        Path(args.input),
        Path(args.output),
        policy,
        key,
        workers=args.workers,
        overwrite=True,
        scrubber=scrubber,
    )
    own, children = _peak_mb()
    return {
        "seconds": report.seconds,
        "notes": len(_note_texts(Path(args.input))),
        "load_seconds": load_seconds,
        "bytes": report.bytes_in,
        "elements": report.text_stats.elements,
        "analysed": report.text_stats.analysed,
        "peak_parent_mb": own,
        "peak_worker_mb": children,
    }


def _child(mode: str, **options: Any) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", mode]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        sys.exit(f"benchmark run failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- report ----------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:.3f}"


def _quality(language: str, folder: Path, out: Path) -> dict[str, Any]:
    from tests.pseudonymize.corpus import read_labels, score

    result: dict[str, Any] = score(read_labels(folder / "labels.jsonl"), out)[language]
    print(f"\n-- quality, {language}: {result['notes_matched']}/{result['notes']} notes matched --")
    print(f"  {'entity':<12} {'spans':>6} {'caught':>7} {'recall':>7}   worst variants")
    for label, bucket in result["recall"].items():
        if not bucket["n"]:
            continue
        variants = result["recall_by_variant"].get(label, {})
        worst = sorted(
            ((v["recall"], k) for k, v in variants.items() if v["recall"] is not None),
        )[:2]
        worst_text = ", ".join(f"{k} {r:.2f}" for r, k in worst if r < 1)
        print(
            f"  {label:<12} {bucket['n']:>6} {bucket['caught']:>7} {_fmt(bucket['recall']):>7}"
            f"   {worst_text}"
        )
    precision = result["precision"]
    terms = result["clinical_terms"]
    dates = result["dates"]
    births = result["birth_dates"]
    print(
        f"  precision estimate (non-PII tokens kept): {_fmt(precision['estimate'])} "
        f"of {precision['tokens']} tokens"
    )
    print(
        f"  clinical terms damaged: {terms['damaged']}/{terms['n']} = {_fmt(terms['damaged_share'])}"
        f" (target ≤ 0.020)"
    )
    print(
        f"  dates moved consistently: {_fmt(dates['consistent_share'])} of {dates['measured']}; "
        f"birth dates cut to the year: {_fmt(births['year_only_share'])} of {births['n']}; "
        f"patients with inconsistent offsets: {result['offsets']['patients_inconsistent']}"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=500)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--languages", default="fr,en")
    parser.add_argument("--child", choices=("floor", "fhirlake"))
    parser.add_argument("--input")
    parser.add_argument("--output")
    parser.add_argument("--language")
    args = parser.parse_args()
    if args.child:
        print(json.dumps((_run_floor if args.child == "floor" else _run_fhirlake)(args)))
        return

    os.environ.setdefault("FHIRLAKE_PSEUDONYM_KEY", secrets.token_hex(32))  # a throwaway key
    print(
        f"cores: {os.cpu_count()}, workers: {args.workers}, load average: "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    summary = []
    for language in args.languages.split(","):
        folder = _corpus(language, args.notes, args.seed)
        half = _corpus(language, args.notes // 2, args.seed)
        out = DATA / f"out-{language}"
        floors, runs, halves = [], [], []
        for _ in range(args.repeats):  # alternate, so that load from other jobs hits both alike
            floors.append(_child("floor", input=folder, language=language, workers=args.workers))
            runs.append(_child("fhirlake", input=folder, output=out, workers=args.workers))
            halves.append(
                _child(
                    "fhirlake",
                    input=half,
                    output=DATA / f"out-{language}-half",
                    workers=args.workers,
                )
            )
        quality = _quality(language, folder, out)
        notes = runs[0]["notes"]
        floor_rate = statistics.median(r["notes"] / r["seconds"] for r in floors)
        rate = statistics.median(r["notes"] / r["seconds"] for r in runs)
        seconds = statistics.median(r["seconds"] for r in runs)
        half_seconds = statistics.median(r["seconds"] for r in halves)
        print(
            f"\n-- speed, {language}: {notes} notes, {runs[0]['bytes'] / 1e6:.1f} MB export, "
            f"{runs[0]['elements']} text elements ({runs[0]['analysed']} analysed) --"
        )
        print(
            f"  floor (bare spaCy NER, {args.workers} processes): median {floor_rate:.1f} notes/s"
            f" ({statistics.median(r['seconds'] for r in floors):.2f} s)"
        )
        print(
            f"  fhirlake whole run:                  median {rate:.1f} notes/s ({seconds:.2f} s)"
            f"  ratio {rate / floor_rate:.2f}× the floor (target ≥ 0.8)"
        )
        print(
            f"  half the notes: {half_seconds:.2f} s, {seconds / half_seconds:.2f}× less time "
            f"for {runs[0]['notes'] / halves[0]['notes']:.2f}× fewer notes"
        )
        print(
            f"  model load: floor {statistics.median(r['load_seconds'] for r in floors):.1f} s, "
            f"fhirlake {statistics.median(r['load_seconds'] for r in runs):.1f} s; peak RSS "
            f"parent {max(r['peak_parent_mb'] for r in runs):.0f} MB, worker "
            f"{max(r['peak_worker_mb'] for r in runs):.0f} MB (floor worker "
            f"{max(r['peak_worker_mb'] for r in floors):.0f} MB)"
        )
        summary.append((language, quality, rate / floor_rate))
    print("\n== summary ==")
    for language, quality, ratio in summary:
        recalls = " ".join(
            f"{label}={_fmt(quality['recall'][label]['recall'])}"
            for label in TARGETS
            if label in quality["recall"]
        )
        print(
            f"  {language}: {recalls} precision={_fmt(quality['precision']['estimate'])} "
            f"damaged={_fmt(quality['clinical_terms']['damaged_share'])} speed={ratio:.2f}×floor"
        )


if __name__ == "__main__":
    main()
