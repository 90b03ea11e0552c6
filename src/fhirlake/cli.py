"""The ``fhirlake`` command line.

Each area of fhirlake owns its commands in its own module (``fhirlake.<area>.cli``); this module
only names them in one table and imports a module when one of its commands runs, so
``fhirlake --help`` imports no area at all and a command imports only its own. Any
:class:`~fhirlake.errors.FhirlakeError` is printed as one line on stderr with exit code 2.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass

import click

from fhirlake.errors import FhirlakeError


@dataclass(frozen=True)
class _Entry:
    """A subcommand as ``fhirlake --help`` lists it, and where its click command lives."""

    name: str
    module: str
    attribute: str
    summary: str  # the command's short help, kept here so that listing imports nothing


# In the order `--help` lists them. tests/test_cli.py checks each entry against its command.
_COMMANDS: tuple[_Entry, ...] = (
    _Entry("demo", "fhirlake.demo", "demo_command",
           "Run the whole chain (synth → Bulk export → pseudonymise → lake) through Dagster and summarise it."),
    _Entry("view", "fhirlake.sof.cli", "view_group",
           "Run SQL-on-FHIR v2 ViewDefinitions (a file, or a name from sql_on_fhir_views/)."),
    _Entry("synth", "fhirlake.synth.cli", "synth_command",
           "Generate synthetic FHIR R4 data in the layout of a Bulk Data export."),
    _Entry("export", "fhirlake.bulk.cli", "export_command",
           "Export from a FHIR Bulk Data server into the lake's bronze layer (resumable)."),
    _Entry("serve-bulk", "fhirlake.bulk.cli", "serve_bulk_command",
           "Serve a folder of <Type>.ndjson files as a FHIR Bulk Data server (for demos and tests)."),
    _Entry("run", "fhirlake.chain.cli", "run_command",
           "Export a source, pseudonymise, scan for leaks and merge into the lake, in one command."),
    _Entry("privacy", "fhirlake.pseudonymize.cli", "privacy_group",
           "Check pseudonymised output: leak scan and privacy report."),
    _Entry("pseudonymize", "fhirlake.pseudonymize.cli", "pseudonymize_command",
           "Pseudonymise a batch IN (export folder, <Type>.ndjson files, Bundle) into OUT."),
    _Entry("lake", "fhirlake.lake.cli", "lake_group",
           "The lakehouse: ingest exports into silver and gold Delta tables, show its state."),
    _Entry("sql", "fhirlake.lake.cli", "sql_command",
           "Run a SQL QUERY on the lake's catalog (gold.*, silver.*, fhirlake.*) and print the result."),
    _Entry("mcp", "fhirlake.mcp_server.cli", "mcp_command",
           "Serve cohort counts to LLMs over MCP: noisy aggregates only, small counts suppressed, every call audited."),
    _Entry("access", "fhirlake.access.cli", "access_group",
           "Access control of the serving layer: tokens and policies."),
    _Entry("audit", "fhirlake.audit.cli", "audit_group",
           "The audit trail of the serving layer (MCP server)."),
)  # fmt: skip
_BY_NAME = {entry.name: entry for entry in _COMMANDS}


def load_command(entry: _Entry) -> click.Command:
    """Import one area's command module and return its click command."""
    command: click.Command = getattr(importlib.import_module(entry.module), entry.attribute)
    return command


class _LazyGroup(click.Group):
    """A click group that imports an area's module only when one of its commands runs.

    ``fhirlake --help`` lists the commands from :data:`_COMMANDS` alone, and ``fhirlake lake
    ingest`` imports ``fhirlake.lake.cli`` and nothing of the other areas (no Dagster, Presidio,
    spaCy or MCP for a lake command), so every command starts quickly.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [entry.name for entry in _COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _BY_NAME.get(cmd_name)
        if entry is None:
            return None
        if cmd_name not in self.commands:
            self.add_command(load_command(entry), cmd_name)
        return self.commands[cmd_name]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(entry.name) for entry in _COMMANDS)
        rows = [(entry.name, _shorten(entry.summary, limit)) for entry in _COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 3, 10)].rstrip() + "..."


@click.group(cls=_LazyGroup)
@click.version_option(package_name="fhirlake")
def cli() -> None:
    """fhirlake: FHIR Bulk Data to a private, analytics-ready lakehouse."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a FhirlakeError becomes one line on stderr and exit code 2."""
    try:
        code = cli.main(args=argv, prog_name="fhirlake", standalone_mode=False)
    except FhirlakeError as exc:
        click.echo(f"fhirlake: error: {exc}", err=True)
        return 2
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("fhirlake: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
