"""``fhirlake run``: the whole chain for one source, by hand (what the Dagster graph does).

::

    fhirlake run --source hospital-a                      # sources.yaml; key from FHIRLAKE_PSEUDONYM_KEY
    fhirlake run --url http://127.0.0.1:8410/fhir --full  # everything, from a server without a sources file
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["run_command"]


@click.command("run")
@click.option("--source", "source_name", help="Name of a source in the sources file.")
@click.option("--url", help="FHIR base URL to export from, instead of a named source.")
@click.option("--name", help="Source name for --url (folder and watermark key); default from the host.")
@click.option("--token-env", help="With --url: environment variable holding a bearer token.")
@click.option("--sources", "sources_path", type=click.Path(path_type=Path, dir_okay=False),
              envvar="FHIRLAKE_SOURCES", default="sources.yaml", show_default=True,
              help="The sources file (env FHIRLAKE_SOURCES).")
@click.option("--lake", type=click.Path(path_type=Path, file_okay=False), envvar="FHIRLAKE_LAKE",
              default=".fhirlake", show_default=True, help="Lake root (env FHIRLAKE_LAKE).")
@click.option("--full", is_flag=True, help="Export everything, not only the changes since the last export.")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Pseudonymisation policy [default: anonymization/policy.yaml].")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File holding the pseudonym key [default: env FHIRLAKE_PSEUDONYM_KEY].")
@click.option("--no-text", is_flag=True, help="Redact free text instead of scrubbing it (no Presidio).")
@click.option("--workers", type=click.IntRange(1, 256), default=None, help="Pseudonymisation processes.")
@click.option("--max-quarantine-rate", type=click.FloatRange(0.0, 1.0), default=0.01, show_default=True,
              help="Share of records pseudonymisation may reject before the batch is kept out of the lake.")
@click.option("--views", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="ViewDefinition folder gold is built from [default: the view library].")
def run_command(source_name: str | None, url: str | None, name: str | None, token_env: str | None,
                sources_path: Path, lake: Path, full: bool, policy_path: Path | None, key_file: Path | None,
                no_text: bool, workers: int | None, max_quarantine_rate: float, views: Path | None) -> None:
    """Export a source, pseudonymise, scan for leaks and merge into the lake, in one command.

    Resumable: run it again after an interruption and it carries on where it stopped. A batch
    that fails a blocking check (a leak, too many records quarantined, counts that do not match
    the manifest) is kept out of the lake, and the command exits non-zero with the reason.
    """
    from fhirlake.bulk.cli import resolve_source
    from fhirlake.chain.run import run_chain
    from fhirlake.progress import status
    from fhirlake.pseudonymize import load_key, load_policy
    from fhirlake.resources import default_policy_path

    source = resolve_source(source_name, url, name, sources_path, token_env)
    report = run_chain(
        lake, source, policy=load_policy(policy_path or default_policy_path()), key=load_key(key_file),
        incremental=not full, text=not no_text, workers=workers, max_quarantine_rate=max_quarantine_rate,
        views=views, stage=status)
    click.echo("\n".join(report.lines()))
