"""``fhirlake pseudonymize`` and ``fhirlake privacy scan|report``.

::

    fhirlake pseudonymize ../shared/data/synthea-r4-30 /tmp/out        # key from FHIRLAKE_PSEUDONYM_KEY
    fhirlake privacy scan /tmp/out --input ../shared/data/synthea-r4-30  # exit 1 on any leak
    fhirlake privacy report /tmp/out
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

__all__ = ["privacy_group", "pseudonymize_command"]


def _default_policy() -> Path:
    from fhirlake.resources import default_policy_path

    return default_policy_path()


@click.command("pseudonymize")
@click.argument("input_path", metavar="IN", type=click.Path(exists=True, path_type=Path))
@click.argument("output_dir", metavar="OUT", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Policy YAML [default: anonymization/policy.yaml].",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File holding the secret key [default: env FHIRLAKE_PSEUDONYM_KEY].",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes [default: one per core].",
)
@click.option(
    "--no-text", is_flag=True, help="Redact free text instead of scrubbing it (no Presidio)."
)
@click.option("--overwrite", is_flag=True, help="Replace the output of an earlier run in OUT.")
@click.option(
    "--engine",
    type=click.Choice(["local", "spark"]),
    default="local",
    show_default=True,
    help="Worker processes on this machine, or Spark tasks (the spark extra; same output bytes).",
)
@click.option(
    "--master", default=None, metavar="URL", help="With --engine spark: the Spark master [default: local[1]]."
)
@click.option(
    "--max-quarantine-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.01,
    show_default=True,
    help="Exit 1 when a larger share of the records is quarantined.",
)
def pseudonymize_command(
    input_path: Path,
    output_dir: Path,
    policy_path: Path | None,
    key_file: Path | None,
    workers: int | None,
    no_text: bool,
    overwrite: bool,
    engine: str,
    master: str | None,
    max_quarantine_rate: float,
) -> None:
    """Pseudonymise a batch IN (export folder, <Type>.ndjson files, Bundle) into OUT.

    IN is a Bulk export folder (fhirlake export's too), a folder of <Type>.ndjson[.gz|.zst]
    files, or a Bundle. Writes <Type>.ndjson per resource type, quarantine.jsonl (rejected records: location and
    reason, never content) and privacy-report.json (counts per rule and entity type). Exits 1
    when records do not reconcile with the manifest or more than --max-quarantine-rate of them
    were quarantined; 2 on a file whose name is not a resource type.
    """
    from fhirlake.batch import BatchError, block, read_batch
    from fhirlake.chain import checks
    from fhirlake.progress import meter
    from fhirlake.pseudonymize.errors import PseudonymizeError
    from fhirlake.pseudonymize.keys import load_key
    from fhirlake.pseudonymize.pipeline import pseudonymize
    from fhirlake.pseudonymize.policy import load_policy

    policy = load_policy(policy_path or _default_policy())
    key = load_key(key_file)
    try:
        batch = read_batch(input_path)
    except BatchError as exc:
        raise PseudonymizeError(str(exc)) from None
    expected = sum(batch.lines.values()) or sum(batch.manifest_counts.values()) or None
    if master and engine != "spark":
        raise click.UsageError("--master needs --engine spark")
    if engine == "spark":
        from fhirlake.pseudonymize.spark import pseudonymize_on_spark
        from fhirlake.spark import spark_session

        spark = spark_session(master, app_name="fhirlake-pseudonymize")
        report = pseudonymize_on_spark(
            spark, batch, output_dir, policy, key, text=not no_text, overwrite=overwrite
        )
    else:
        with meter("pseudonymise", total=expected, unit="records") as advance:
            report = pseudonymize(
                batch, output_dir, policy, key, workers=workers, text=not no_text,
                overwrite=overwrite, progress=advance,
            )
    click.echo(report.summary())
    if report.quarantined:
        click.echo(
            f"quarantined: {report.quarantined} records, see {output_dir / 'quarantine.jsonl'}"
        )
    for outcome in (
        checks.counts_reconcile(batch, output_dir),
        checks.quarantine_rate([output_dir], max_rate=max_quarantine_rate),
    ):
        if not outcome.passed:
            block(output_dir, outcome.reason)  # lake ingest refuses it, with this reason
            click.echo(f"fhirlake: error: {outcome.reason} (OUT is marked blocked)", err=True)
            raise click.exceptions.Exit(1)


@click.group("privacy")
def privacy_group() -> None:
    """Check pseudonymised output: leak scan and privacy report."""


@privacy_group.command("scan")
@click.argument(
    "output_dir",
    metavar="[OUT]",
    required=False,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="The raw input the output was made from (its Patients give the strings to look for).",
)
@click.option(
    "--truth",
    "truth_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A fhirlake synth truth.json [default: IN/truth.json when present].",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The run's key, to find each resource's patient [default: env FHIRLAKE_PSEUDONYM_KEY if set].",
)
@click.option(
    "--lake",
    "lake_path",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Also scan the string columns of this lake's silver and gold tables.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def scan_command(
    output_dir: Path | None,
    input_path: Path,
    truth_path: Path | None,
    key_file: Path | None,
    lake_path: Path | None,
    as_json: bool,
) -> None:
    """Exit 1 if OUT (or the lake) holds anything identifying a person of IN.

    Looks for every patient's strings, every person the export names (clinicians included,
    however written), and with the key each patient's birth date in any format and date-offset
    leaks. Hits are printed by file, line, entity type, ordinal and a hash: never the string.
    """
    from fhirlake.pseudonymize.keys import KEY_ENV_VAR, PseudonymKey, load_key
    from fhirlake.pseudonymize.policy import load_policy
    from fhirlake.pseudonymize.scan import (
        TRUTH_NAME,
        ScanResult,
        scan_context,
        scan_output,
        truth_terms,
    )

    if output_dir is None and lake_path is None:
        raise click.UsageError("give an output folder OUT, or --lake PATH, or both")
    context = scan_context(input_path, max_shift_days=load_policy(_default_policy()).max_shift_days)
    if truth_path is None and input_path.is_dir() and (input_path / TRUTH_NAME).is_file():
        truth_path = input_path / TRUTH_NAME
    if truth_path is not None:
        context.terms += truth_terms(truth_path, context.directory)
    key: PseudonymKey | None = None
    if key_file is not None or os.environ.get(KEY_ENV_VAR, "").strip():
        key = load_key(key_file)
    result = ScanResult(terms=len(context.terms), patients=len(context.patient_ids))
    if output_dir is not None:
        result = scan_output(output_dir, key=key, context=context)
    if lake_path is not None:
        from fhirlake.pseudonymize.lakescan import scan_lake

        lake = scan_lake(lake_path, context, key=key)
        result.tables, result.own_patient_checked = lake.tables, lake.own_patient_checked
        result.lines += lake.lines
        result.leaks.extend(lake.leaks)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "patients": result.patients,
                    "terms": result.terms,
                    "files": result.files,
                    "lines": result.lines,
                    "attachments_decoded": result.attachments_decoded,
                    "lake_tables": result.tables,
                    "truth_file": truth_path is not None,
                    "own_patient_checked": result.own_patient_checked,
                    "leaks": [str(leak) for leak in result.leaks],
                },
                indent=2,
            )
        )
    else:
        for leak in result.leaks[:200]:
            click.echo(f"leak: {leak}", err=True)
        click.echo(
            f"scanned {result.files} files, {result.tables} lake tables, {result.lines} lines, "
            f"{result.attachments_decoded} attachments for {result.terms} strings of "
            f"{result.patients} patients and {len(context.directory.persons)} named persons"
            f"{' (with truth file)' if truth_path else ''}: {len(result.leaks)} leaks"
        )
        if not result.own_patient_checked:
            click.echo(
                "note: no key given, so single-word names, birth dates and date-offset leaks were "
                "not looked for inside each patient's own resources"
            )
    if result.leaks:
        # SystemExit, not click's Exit: fhirlake.cli.main runs click with standalone_mode=False
        sys.exit(1)


@privacy_group.command("report")
@click.argument(
    "output_dir", metavar="OUT", type=click.Path(exists=True, file_okay=False, path_type=Path)
)
def report_command(output_dir: Path) -> None:
    """Print the privacy report of the run that wrote OUT."""
    from fhirlake.pseudonymize.report import read_report

    click.echo(json.dumps(read_report(output_dir), indent=2, ensure_ascii=False))
