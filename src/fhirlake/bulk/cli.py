"""``fhirlake export`` (the Bulk Data client) and ``fhirlake serve-bulk`` (the embedded server).

The client's I/O (httpx, SMART auth) and the server (Starlette, uvicorn) are imported when a
command runs, so ``--help`` starts at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from fhirlake.bulk._models import ExportLevel, ExportRequest, RetryPolicy
from fhirlake.errors import ConfigurationError

if TYPE_CHECKING:
    from fhirlake.bulk._config import Source

__all__ = ["export_command", "resolve_source", "serve_bulk_command"]

_DEFAULT_SOURCES = "sources.yaml"


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(item.strip() for value in values for item in value.split(",") if item.strip())


def _name_from_url(url: str) -> str:
    parts = urlsplit(url)
    name = re.sub(
        r"[^A-Za-z0-9_.\-]", "-", f"{parts.hostname or 'server'}-{parts.port or ''}".strip("-")
    )
    return name[:64] or "server"


@click.command("export")
@click.option("--source", "source_name", help="Name of a source in the sources file.")
@click.option("--url", help="FHIR base URL to export from, instead of a named source.")
@click.option(
    "--name", help="Source name for --url (folder and watermark key); default from the host."
)
@click.option(
    "--sources",
    "sources_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="FHIRLAKE_SOURCES",
    default=_DEFAULT_SOURCES,
    show_default=True,
    help="The sources file (env FHIRLAKE_SOURCES).",
)
@click.option(
    "--lake",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="FHIRLAKE_LAKE",
    default=".fhirlake",
    show_default=True,
    help="Lake root (env FHIRLAKE_LAKE); files go to <lake>/bronze/<source>/<export id>/.",
)
@click.option(
    "--level", type=click.Choice([level.value for level in ExportLevel]), help="Export level."
)
@click.option("--group", "group_id", help="Group id for --level group.")
@click.option("--type", "types", multiple=True, help="Resource types (repeat or comma-separate).")
@click.option("--since", help="'auto' (the stored watermark) or a FHIR instant.")
@click.option(
    "--type-filter", "type_filters", multiple=True, help="A _typeFilter query (repeatable)."
)
@click.option("--elements", multiple=True, help="_elements (repeat or comma-separate).")
@click.option(
    "--post", is_flag=True, default=None, help="Kick off with POST and a Parameters body."
)
@click.option("--lenient", is_flag=True, default=None, help="Send Prefer: handling=lenient.")
@click.option("--parallel", type=click.IntRange(1, 64), help="Concurrent downloads [default: 4].")
@click.option("--token-env", help="With --url: environment variable holding a bearer token.")
@click.option("--keep-job", is_flag=True, help="Do not DELETE the job on the server after success.")
@click.option(
    "--new", is_flag=True, help="Start a new export even if an unfinished one could be resumed."
)
@click.option(
    "--restart-expired",
    is_flag=True,
    help="If the server lost the export (410/404), start a new one.",
)
@click.option(
    "--restart-stalled",
    is_flag=True,
    help="If the job stops progressing (see --stall-timeout), DELETE it and start a new one.",
)
@click.option("--timeout", type=float, help="Overall deadline in seconds [default: 24 h].")
@click.option(
    "--stall-timeout",
    type=click.FloatRange(min=0),
    help="Seconds without a change of the server's X-Progress before the job counts as "
    "stalled; 0: never [default: 3 h].",
)
@click.option("--quiet", is_flag=True, help="No progress bars; only the summary and problems.")
def export_command(
    source_name: str | None,
    url: str | None,
    name: str | None,
    sources_path: Path,
    lake: Path,
    level: str | None,
    group_id: str | None,
    types: tuple[str, ...],
    since: str | None,
    type_filters: tuple[str, ...],
    elements: tuple[str, ...],
    post: bool | None,
    lenient: bool | None,
    parallel: int | None,
    token_env: str | None,
    keep_job: bool,
    new: bool,
    restart_expired: bool,
    restart_stalled: bool,
    timeout: float | None,
    stall_timeout: float | None,
    quiet: bool,
) -> None:
    """Export from a FHIR Bulk Data server into the lake's bronze layer (resumable).

    Re-running after a crash continues the same export and fetches only missing files;
    Ctrl-C cancels it and DELETEs the job on the server.
    """
    from rich.console import Console

    from fhirlake.bulk._export import Exporter, ExportOptions
    from fhirlake.bulk._layout import WatermarkStore
    from fhirlake.bulk._progress import ProgressView, print_summary

    source = resolve_source(source_name, url, name, sources_path, token_env)
    overrides: dict[str, Any] = {}
    if level is not None:
        overrides["level"] = ExportLevel(level)
        overrides["group_id"] = group_id
    elif group_id is not None:
        overrides["group_id"] = group_id
    if types:
        overrides["types"] = _split(types)
    if type_filters:
        overrides["type_filters"] = type_filters
    if elements:
        overrides["elements"] = _split(elements)
    if post is not None:
        overrides["method"] = "POST"
    if lenient is not None:
        overrides["lenient"] = True
    since_value = since if since is not None else source.since
    watermarks = WatermarkStore(lake)
    if since_value == "auto":
        since_value = watermarks.get(source.name)
    try:
        request = dataclasses.replace(source.request, since=since_value, **overrides)
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc)) from exc
    retry = RetryPolicy()
    if timeout is not None:
        retry = dataclasses.replace(retry, deadline=timeout)
    if stall_timeout is not None:
        retry = dataclasses.replace(retry, stall_timeout=stall_timeout or None)
    options = ExportOptions(
        parallel=parallel or source.parallel or 4,
        delete_after=not keep_job and source.delete_after is not False,
        restart_expired=restart_expired,
        restart_stalled=restart_stalled,
        new=new,
        retry=retry,
    )
    auth = source.auth.build(request.base_url)
    console = Console(soft_wrap=True)
    if not quiet:
        since_text = f" changes since {request.since}" if request.since else " everything"
        console.print(
            f"exporting{since_text} from {request.endpoint} as source {source.name!r}",
            highlight=False,
        )
    with ProgressView(console, quiet=quiet) as view:
        exporter = Exporter(
            source=source.name,
            request=request,
            lake=lake,
            auth=auth,
            options=options,
            on_event=view,
        )
        try:
            result = asyncio.run(exporter.run())
        except KeyboardInterrupt:
            view.notice(
                "cancelled: the job was DELETEd on the server and the export marked cancelled"
            )
            raise
    print_summary(console, result)


def resolve_source(
    source_name: str | None,
    url: str | None,
    name: str | None,
    sources_path: Path,
    token_env: str | None,
) -> Source:
    from fhirlake.bulk._config import Source, SourceAuth, load_sources

    if (source_name is None) == (url is None):
        raise click.UsageError("give exactly one of --source NAME or --url URL")
    if source_name is not None:
        sources = load_sources(sources_path)
        if source_name not in sources:
            known = ", ".join(sorted(sources)) or "none"
            raise ConfigurationError(
                f"{sources_path}: no source named {source_name!r} (known: {known})"
            )
        return sources[source_name]
    assert url is not None
    try:
        request = ExportRequest(base_url=url)
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from exc
    auth = SourceAuth(type="bearer", token_env=token_env) if token_env else SourceAuth()
    return Source(name=name or _name_from_url(url), request=request, auth=auth)


_FAULT_FIELDS = (
    "kickoff_429", "status_429", "status_500", "file_500", "file_429", "file_drop",
    "gone_jobs", "error_entries", "stall_jobs", "aux_count_offset", "kickoff_status",
    "file_status", "slow_seconds", "bytes_per_second",
)  # fmt: skip


def _faults(values: tuple[str, ...]) -> Any:
    from fhirlake.bulkserver import Faults

    settings: dict[str, Any] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or key not in _FAULT_FIELDS:
            raise click.BadParameter(
                f"{value!r}: use NAME=NUMBER with NAME one of {', '.join(_FAULT_FIELDS)}",
                param_hint="--fault",
            )
        try:
            settings[key] = float(raw) if key == "slow_seconds" else int(raw)
        except ValueError:
            raise click.BadParameter(
                f"{value!r}: {raw!r} is not a number", param_hint="--fault"
            ) from None
    return Faults(**settings)


@click.command("serve-bulk")
@click.argument("folder", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default)."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8410,
    show_default=True,
    help="Port (0: any free one).",
)
@click.option("--base-path", default="/fhir", show_default=True, help="Path of the FHIR base.")
@click.option(
    "--job-seconds",
    type=float,
    default=0.0,
    show_default=True,
    help="How long each export pretends to run.",
)
@click.option(
    "--retry-after",
    type=click.IntRange(0, 3600),
    default=1,
    show_default=True,
    help="Retry-After while running.",
)
@click.option(
    "--retry-after-style",
    type=click.Choice(["seconds", "http-date", "epoch", "epoch-ms"]),
    default="seconds",
    show_default=True,
)
@click.option(
    "--lines-per-file",
    type=click.IntRange(1),
    help="Split each type into files of this many lines.",
)
@click.option("--no-gzip", is_flag=True, help="Never compress files, even when asked.")
@click.option(
    "--expires",
    "expires_seconds",
    type=click.IntRange(1),
    default=3600,
    show_default=True,
    help="Expires header, seconds ahead.",
)
@click.option(
    "--jwks",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Require SMART auth: the client's public JWKS.",
)
@click.option("--client-id", help="The client id the JWKS belongs to (with --jwks).")
@click.option("--jwks-url", help="The registered JWKS URL an assertion's jku must match.")
@click.option(
    "--token-ttl",
    type=click.IntRange(1),
    default=300,
    show_default=True,
    help="Access token lifetime.",
)
@click.option(
    "--no-well-known",
    is_flag=True,
    help="Hide .well-known/smart-configuration (CapabilityStatement only).",
)
@click.option(
    "--fault", "fault_values", multiple=True, help="Inject a fault, e.g. file_500=2 (repeatable)."
)
def serve_bulk_command(
    folder: Path,
    host: str,
    port: int,
    base_path: str,
    job_seconds: float,
    retry_after: int,
    retry_after_style: str,
    lines_per_file: int | None,
    no_gzip: bool,
    expires_seconds: int,
    jwks: Path | None,
    client_id: str | None,
    jwks_url: str | None,
    token_ttl: int,
    no_well_known: bool,
    fault_values: tuple[str, ...],
) -> None:
    """Serve a folder of <Type>.ndjson files as a FHIR Bulk Data server (for demos and tests)."""
    from fhirlake.bulkserver import BulkServerConfig, ClientRegistration, ServerAuth, serve

    auth = None
    if (jwks is None) != (client_id is None):
        raise click.UsageError("--jwks and --client-id go together")
    if jwks is not None and client_id is not None:
        try:
            keys = json.loads(jwks.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"{jwks}: not a readable JWKS ({exc})") from exc
        if isinstance(keys, dict) and "keys" not in keys:
            keys = {"keys": [keys]}
        registration = ClientRegistration(client_id=client_id, jwks=keys, jwks_url=jwks_url)
        auth = ServerAuth(
            clients=(registration,), token_ttl=token_ttl, well_known=not no_well_known
        )
    config = BulkServerConfig(
        data_dir=folder,
        base_path=base_path,
        job_seconds=job_seconds,
        retry_after=retry_after,
        retry_after_style=retry_after_style,  # type: ignore[arg-type]
        lines_per_file=lines_per_file,
        gzip=not no_gzip,
        expires_seconds=expires_seconds,
        auth=auth,
        faults=_faults(fault_values),
    )
    if not _is_loopback(host):
        click.echo(f"warning: listening on {host}, reachable beyond this machine", err=True)

    def ready(base_url: str) -> None:
        click.echo(f"serving {folder} as a Bulk Data server at {base_url}  (Ctrl-C to stop)")
        click.echo(f"try: fhirlake export --url {base_url}")

    serve(config, host=host, port=port, on_ready=ready)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
