"""``fhirlake audit verify|sync``: check the hash chain, bring the audit table up to date."""

from __future__ import annotations

from pathlib import Path

import click

from fhirlake.audit.errors import AuditTamperedError
from fhirlake.audit.log import verify_log
from fhirlake.audit.table import AuditTable
from fhirlake.audit.trail import default_log_path, default_table_path

__all__ = ["audit_group"]

_LAKE = click.option("--lake", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="The lake folder (default $FHIRLAKE_LAKE, else ./.fhirlake).")
_LOG = click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                    help="The audit log (default $FHIRLAKE_AUDIT_LOG, else <lake>/_fhirlake/audit.jsonl).")


@click.group("audit")
def audit_group() -> None:
    """The audit trail of the serving layer (MCP server)."""


@audit_group.command("verify")
@_LAKE
@_LOG
@click.option("--no-head", is_flag=True, help="Do not require the head anchor (a copied log without its .head).")
@click.option("--table/--no-table", default=True, help="Also check the audit table against the log, when it exists.")
def verify_command(lake: Path | None, log_path: Path | None, no_head: bool, table: bool) -> None:
    """Walk the hash chain; on the first broken link print its line and reason, exit 1.

    Detects edited, removed, inserted or reordered entries, a cut tail (against the head
    anchor) and, with FHIRLAKE_AUDIT_KEY set when the log was written, a rewritten chain.
    """
    path = log_path or default_log_path(lake)
    try:
        check = verify_log(path, require_head=not no_head)
        rows = None
        table_path = default_table_path(lake)
        if table and log_path is None and table_path.is_dir():
            rows = AuditTable(table_path, path).check()
    except AuditTamperedError as exc:
        click.echo(f"audit log TAMPERED: {exc}", err=True)
        click.get_current_context().exit(1)
    anchor = "head anchor matches" if check.head_checked else "no head anchor checked"
    table_note = f"; audit table: {rows} rows match" if rows is not None else ""
    click.echo(f"audit log ok: {path}: {check.entries} entries, last hash {check.last_hash[:16]}…, {anchor}{table_note}")


@audit_group.command("sync")
@_LAKE
@_LOG
def sync_command(lake: Path | None, log_path: Path | None) -> None:
    """Append to the audit table the log entries it does not hold yet (e.g. after a crash)."""
    path = log_path or default_log_path(lake)
    verify_log(path)
    added = AuditTable(default_table_path(lake), path).sync()
    click.echo(f"audit table: {added} entries appended")
