"""Named export sources in one YAML file (see ``sources.example.yaml`` at the repository top).

The file holds no secrets: a bearer token or a private key is named by the environment variable
that holds it (``token_env``, ``key_env``) or by a key file path (``key_file``, relative to the
sources file). Every value is checked when the file is loaded, and an error names the file and
the dotted key, e.g. ``sources.yaml: sources.hospital-a.level: must be one of system, patient,
group (got 'sytem')``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml

from fhirlake.bulk._auth import BearerTokenAuth, SmartBackendAuth
from fhirlake.bulk._exceptions import AuthError, SourceConfigError
from fhirlake.bulk._keys import SigningKey
from fhirlake.bulk._layout import validate_source_name
from fhirlake.bulk._models import ExportLevel, ExportRequest
from fhirlake.errors import ConfigurationError

__all__ = ["Source", "SourceAuth", "load_sources"]

AuthType = Literal["none", "bearer", "smart"]
_SOURCE_KEYS = frozenset(
    {
        "url", "level", "group", "method", "types", "elements", "type_filters",
        "include_associated_data", "patients", "output_format", "since", "lenient",
        "parallel", "delete_after", "auth",
    }
)  # fmt: skip
_AUTH_KEYS = frozenset(
    {"type", "token_env", "client_id", "key_file", "key_env", "kid", "jku", "scope", "token_url"}
)
_SECRET_KEYS = {
    "token": "token_env",
    "key": "key_env",
    "private_key": "key_env",
    "secret": "token_env",
}


@dataclass(frozen=True, kw_only=True)
class SourceAuth:
    """How to authenticate to a source: ``none``, a ``bearer`` token, or SMART Backend Services."""

    type: AuthType = "none"
    token_env: str | None = None
    client_id: str | None = None
    key_file: Path | None = None
    key_env: str | None = None
    kid: str | None = None
    jku: str | None = None
    scope: str = "system/*.read"
    token_url: str | None = None

    def build(
        self,
        base_url: str,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> httpx.Auth | None:
        """The ``httpx.Auth`` for this source, reading secrets from the environment or key file."""
        env = os.environ if environ is None else environ
        if self.type == "none":
            return None
        if self.type == "bearer":
            assert self.token_env is not None  # checked on load
            token = env.get(self.token_env)
            if not token:
                raise AuthError(
                    f"environment variable {self.token_env} is not set (it should hold the bearer token)"
                )
            return BearerTokenAuth(token)
        assert self.client_id is not None  # checked on load
        if self.key_file is not None:
            key = SigningKey.from_file(self.key_file, kid=self.kid)
        else:
            assert self.key_env is not None  # checked on load
            key = SigningKey.from_env(self.key_env, kid=self.kid, environ=env)
        return SmartBackendAuth(
            client_id=self.client_id,
            key=key,
            scope=self.scope,
            fhir_base_url=base_url,
            token_url=self.token_url,
            jku=self.jku,
            clock=clock,
        )


@dataclass(frozen=True, kw_only=True)
class Source:
    """A named source: what to export from where, how to sign in, and how to download."""

    name: str
    request: ExportRequest
    auth: SourceAuth = field(default_factory=SourceAuth)
    since: str | None = None
    parallel: int | None = None
    delete_after: bool | None = None

    def with_since(self, since: str | None) -> Source:
        """The same source asking for changes after ``since``."""
        return replace(self, request=replace(self.request, since=since))


def load_sources(path: Path) -> dict[str, Source]:
    """Read and validate every source of a sources file."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SourceConfigError(
            where, "", "file not found (pass --sources or set FHIRLAKE_SOURCES)"
        ) from exc
    except OSError as exc:
        raise SourceConfigError(where, "", f"cannot be read ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise SourceConfigError(where, "", f"{line}not valid YAML") from exc
    if not isinstance(data, dict) or not isinstance(data.get("sources"), dict):
        raise SourceConfigError(
            where, "sources", "the file must hold a mapping 'sources:' of named sources"
        )
    unknown = set(data) - {"sources"}
    if unknown:
        raise SourceConfigError(
            where, sorted(unknown)[0], "unknown top-level key (expected only 'sources')"
        )
    sources = {}
    for name, raw in data["sources"].items():
        key = f"sources.{name}"
        try:
            validate_source_name(str(name))
        except SourceConfigError:
            raise SourceConfigError(
                where, key, "a source name uses letters, digits, '_', '.' or '-'"
            ) from None
        sources[str(name)] = _source(str(name), raw, where=where, key=key, base_dir=path.parent)
    return sources


def _source(name: str, raw: object, *, where: str, key: str, base_dir: Path) -> Source:
    reader = _Reader(raw, where=where, key=key, allowed=_SOURCE_KEYS)
    url = reader.string("url", required=True)
    assert url is not None
    level = reader.choice("level", ("system", "patient", "group"), default="system")
    try:
        request = ExportRequest(
            base_url=url,
            level=ExportLevel(level),
            group_id=reader.string("group"),
            method="POST"
            if reader.choice("method", ("GET", "POST"), default="GET") == "POST"
            else "GET",
            output_format=reader.string("output_format"),
            types=reader.strings("types"),
            elements=reader.strings("elements"),
            type_filters=reader.strings("type_filters", split=False),
            include_associated_data=reader.strings("include_associated_data"),
            patients=reader.strings("patients", split=False),
            lenient=reader.boolean("lenient", default=False),
        )
    except ConfigurationError as exc:
        raise SourceConfigError(where, key, str(exc)) from exc
    since = reader.string("since")
    if since is not None and since != "auto":
        try:
            replace(request, since=since)
        except ConfigurationError as exc:
            raise SourceConfigError(where, f"{key}.since", str(exc)) from exc
    parallel = reader.integer("parallel", minimum=1, maximum=64)
    delete_after = reader.boolean("delete_after", default=None)
    auth = _auth(reader.mapping("auth"), where=where, key=f"{key}.auth", base_dir=base_dir)
    return Source(
        name=name,
        request=request,
        auth=auth,
        since=since,
        parallel=parallel,
        delete_after=delete_after,
    )


def _auth(raw: Mapping[str, Any] | None, *, where: str, key: str, base_dir: Path) -> SourceAuth:
    if raw is None:
        return SourceAuth()
    for secret, instead in _SECRET_KEYS.items():
        if secret in raw:
            raise SourceConfigError(
                where,
                f"{key}.{secret}",
                f"secrets never go in this file; name an environment variable with {instead}",
            )
    reader = _Reader(raw, where=where, key=key, allowed=_AUTH_KEYS)
    kind = reader.choice("type", ("none", "bearer", "smart"), default="none")
    if kind == "none":
        return SourceAuth()
    if kind == "bearer":
        token_env = reader.string("token_env", required=True)
        return SourceAuth(type="bearer", token_env=token_env)
    client_id = reader.string("client_id", required=True)
    key_file = reader.string("key_file")
    key_env = reader.string("key_env")
    if (key_file is None) == (key_env is None):
        raise SourceConfigError(where, key, "SMART auth needs exactly one of key_file or key_env")
    return SourceAuth(
        type="smart",
        client_id=client_id,
        key_file=(base_dir / Path(key_file).expanduser()) if key_file else None,
        key_env=key_env,
        kid=reader.string("kid"),
        jku=reader.string("jku"),
        scope=reader.string("scope") or "system/*.read",
        token_url=reader.string("token_url"),
    )


class _Reader:
    """Typed access to one mapping of the YAML, with errors that name the file and dotted key."""

    def __init__(self, raw: object, *, where: str, key: str, allowed: frozenset[str]) -> None:
        if not isinstance(raw, dict):
            raise SourceConfigError(where, key, "must be a mapping")
        unknown = sorted(str(k) for k in raw if k not in allowed)
        if unknown:
            raise SourceConfigError(
                where, f"{key}.{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})"
            )
        self.raw, self.where, self.key = raw, where, key

    def _error(self, name: str, reason: str) -> SourceConfigError:
        return SourceConfigError(self.where, f"{self.key}.{name}", reason)

    def string(self, name: str, *, required: bool = False) -> str | None:
        value = self.raw.get(name)
        if value is None:
            if required:
                raise self._error(name, "is required")
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool) or str(value) == "":
            raise self._error(name, f"must be a non-empty string (got {value!r})")
        return str(value)

    def strings(self, name: str, *, split: bool = True) -> tuple[str, ...]:
        value = self.raw.get(name)
        if value is None:
            return ()
        if isinstance(value, str):
            items = [v.strip() for v in value.split(",")] if split else [value]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            items = [v.strip() for v in value]
        else:
            raise self._error(name, "must be a list of strings (or one comma-separated string)")
        return tuple(v for v in items if v)

    def choice(self, name: str, choices: tuple[str, ...], *, default: str) -> str:
        value = self.raw.get(name, default)
        if value not in choices:
            raise self._error(name, f"must be one of {', '.join(choices)} (got {value!r})")
        return str(value)

    def boolean(self, name: str, *, default: bool | None) -> Any:
        value = self.raw.get(name, default)
        if value is not None and not isinstance(value, bool):
            raise self._error(name, f"must be true or false (got {value!r})")
        return value

    def integer(self, name: str, *, minimum: int, maximum: int) -> int | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
            raise self._error(
                name, f"must be a whole number from {minimum} to {maximum} (got {value!r})"
            )
        return value

    def mapping(self, name: str) -> Mapping[str, Any] | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._error(name, "must be a mapping")
        return value
