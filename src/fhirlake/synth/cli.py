"""``fhirlake synth``: write synthetic FHIR R4 Bulk Data to a folder.

Prints counts and speed only, never a patient's data.
"""

from __future__ import annotations

from pathlib import Path

import click

from fhirlake.synth import DEFAULT_HISTORY_YEARS, LOCALES, generate

__all__ = ["synth_command"]


@click.command("synth")
@click.option("--patients", "-n", type=int, required=True, help="Number of patients to generate.")
@click.option("--seed", "-s", type=int, default=0, show_default=True, help="Master seed: same seed, same bytes.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
@click.option("--locale", type=click.Choice(sorted(LOCALES)), default="en", show_default=True, help="Country of the patients.")
@click.option("--gzip", "gzip_", is_flag=True, help="Write <Type>.ndjson.gz instead of <Type>.ndjson.")
@click.option("--workers", type=int, default=None, help="Worker processes (default: CPU count); output does not depend on it.")
@click.option("--as-of", default=None, help="The 'today' of the data, ISO date or date-time (default 2025-06-30T12:00Z).")
@click.option("--history-years", type=int, default=DEFAULT_HISTORY_YEARS, show_default=True, help="Years of records per patient.")
@click.option("--overwrite", is_flag=True, help="Replace the files of an earlier run in --out.")
def synth_command(
    patients: int,
    seed: int,
    out_dir: Path,
    locale: str,
    gzip_: bool,
    workers: int | None,
    as_of: str | None,
    history_years: int,
    overwrite: bool,
) -> None:
    """Generate synthetic FHIR R4 data in the layout of a Bulk Data export."""
    from fhirlake.progress import meter

    with meter("synth", total=patients, unit="patients") as advance:
        report = generate(
            out_dir,
            patients=patients,
            seed=seed,
            locale=locale,
            gzip=gzip_,
            as_of=as_of,
            history_years=history_years,
            workers=workers,
            overwrite=overwrite,
            progress=advance,
        )
    per_minute = report.total / report.seconds * 60 if report.seconds else float("inf")
    click.echo(
        f"wrote {report.total:,} resources of {len(report.counts)} types for {patients:,} patients "
        f"to {out_dir} in {report.seconds:.1f} s ({per_minute:,.0f} resources/min, {report.workers} workers)"
    )
    for rtype in sorted(report.counts):
        click.echo(f"  {rtype:<20} {report.counts[rtype]:>12,}")
