"""The ``fhirlake`` command line.

Each area of fhirlake owns its commands in its own module (``fhirlake.<area>.cli``); this module
only gathers them into one group, so adding a command never means editing the others. Any
:class:`~fhirlake.errors.FhirlakeError` is printed as one line on stderr with exit code 2.
"""

from __future__ import annotations

import importlib
import sys

import click

from fhirlake.errors import FhirlakeError

# (module, attribute) of each area's click command or group, in the order `--help` lists them.
_COMMANDS: tuple[tuple[str, str], ...] = (
    ("fhirlake.demo", "demo_command"),
    ("fhirlake.sof.cli", "view_group"),
    ("fhirlake.synth.cli", "synth_command"),
    ("fhirlake.bulk.cli", "export_command"),
    ("fhirlake.bulk.cli", "serve_bulk_command"),
    ("fhirlake.pseudonymize.cli", "privacy_group"),
    ("fhirlake.pseudonymize.cli", "pseudonymize_command"),
    ("fhirlake.lake.cli", "lake_group"), ("fhirlake.lake.cli", "sql_command"),
    ("fhirlake.mcp_server.cli", "mcp_command"),
    ("fhirlake.access.cli", "access_group"), ("fhirlake.audit.cli", "audit_group"),
)


class _LazyGroup(click.Group):
    """A click group that imports each area's command only when it is listed or called."""

    def _load(self) -> None:
        for module_name, attribute in _COMMANDS:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name is not None and module_name.startswith(exc.name):
                    continue  # that area has not landed yet
                raise
            command = getattr(module, attribute)
            if command.name not in self.commands:
                self.add_command(command)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return sorted(self.commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load()
        return self.commands.get(cmd_name)


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
    except click.exceptions.Abort:
        click.echo("fhirlake: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
