"""``fhirlake access token|check``: mint a client token, validate a policy file."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["access_group"]


@click.group("access")
def access_group() -> None:
    """Access control of the serving layer: tokens and policies."""


@access_group.command("token")
@click.option("--client", "client_id", default="CLIENT-ID", show_default=True, help="The client id to show in the policy snippet.")
def token_command(client_id: str) -> None:
    """Mint a bearer token: give the token to the client, put only its hash in the policy.

    The token is printed once, on stdout, and is not stored anywhere.
    """
    from fhirlake.access.tokens import mint_token, token_sha256

    token = mint_token()
    click.echo(f"token (give it to the client, once):  {token}")
    click.echo("policy entry (only the hash is stored):")
    click.echo(f"  - id: {client_id}")
    click.echo(f"    identity: {{token_sha256: \"{token_sha256(token)}\"}}")


@access_group.command("check")
@click.argument("policy", type=click.Path(dir_okay=False, path_type=Path))
def check_command(policy: Path) -> None:
    """Validate an access policy against the view library; print a summary or the first error."""
    from fhirlake.access.catalog import library_catalog
    from fhirlake.access.policy import load_policy

    parsed = load_policy(policy, catalog=library_catalog())
    tenants = ", ".join(f"{name} ({len(sources)} sources)" for name, sources in parsed.tenants.items()) or "none"
    click.echo(f"{policy}: ok: {len(parsed.clients)} clients; tenants: {tenants}; sha256 {parsed.sha256[:16]}…")
