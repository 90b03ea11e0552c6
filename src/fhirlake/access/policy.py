"""The access policy: who may reach the serving layer, and what each client may see.

A YAML file (``anonymization/access-policy.example.yaml`` is the annotated example), parsed once
at server start into frozen dataclasses; any mistake stops the start with one line naming the
file, the JSON pointer and the reason. The five levels it configures:

1. ``network.allow``: CIDRs allowed to connect at all (and ``clients[].networks`` per client);
2. identity: ``clients[].identity`` is a bearer token's SHA-256 (``token_sha256``) or a JWT
   subject/claims match, validated against the ``jwt`` settings (issuer, audience, JWKS);
3. scopes: ``tools`` and ``views`` a client may use;
4. cohort: ``cohort`` (a name from ``cohorts:`` or an inline definition) every query is
   restricted to;
5. attributes: ``hide`` (columns removed) and ``generalise`` (columns coarsened) per view.

Tenants (``tenants: {name: {sources: [...]}}``) group the lake's sources; a client sees only its
tenant's sources. ``local`` is the grant of the trusted local user on stdio (still under
small-cell suppression and audit).

>>> policy = parse_policy({"clients": []}, path="inline.yaml")
>>> policy.local.k >= K_FLOOR
True
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fhirlake.access.errors import AccessPolicyError

__all__ = [
    "ALL",
    "DEFAULT_K",
    "GENERALISERS",
    "K_FLOOR",
    "AccessPolicy",
    "Client",
    "CohortRestriction",
    "Grant",
    "JwtIdentity",
    "JwtSettings",
    "Network",
    "NetworkSettings",
    "TokenIdentity",
    "load_policy",
    "parse_policy",
]

#: No policy may set a minimum cell size below this: a cell of fewer patients is never shown.
K_FLOOR = 5
DEFAULT_K = 11
#: ``None`` in a grant means "everything" (all tools, all views, all sources).
ALL = None
#: Ways a column can be coarsened: a date to its year or month (first 4 or 7 characters), a text
#: to its first N characters (``prefix:N``, e.g. a postal code to its département).
GENERALISERS = ("year", "month", "prefix:N")
_PREFIX = re.compile(r"^prefix:([1-9][0-9]?)$")
_ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class CohortRestriction:
    """The cohort a client is confined to: a named definition from ``cohorts:`` or an inline one.

    ``definition`` is the cohort in the cohort compiler's format; the serving layer compiles it
    at start, so a definition it cannot compile also stops the start.
    """

    name: str
    definition: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Grant:
    """What one client may do and see. ``None`` for tools, views or sources means all of them."""

    tools: frozenset[str] | None = ALL
    views: frozenset[str] | None = ALL
    tenant: str | None = None
    sources: frozenset[str] | None = ALL
    cohort: CohortRestriction | None = None
    hidden: Mapping[str, frozenset[str]] = field(default_factory=dict)
    generalised: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    k: int = DEFAULT_K
    epsilon_per_day: float | None = None  # the client's privacy budget per day (None: the server's)

    def allows_tool(self, tool: str) -> bool:
        """Whether the tool is in the client's scope."""
        return self.tools is None or tool in self.tools

    def allows_view(self, view: str) -> bool:
        """Whether the gold view is in the client's scope."""
        return self.views is None or view in self.views


@dataclass(frozen=True, slots=True)
class TokenIdentity:
    """A static bearer token, known only by its SHA-256 (hex)."""

    token_sha256: str


@dataclass(frozen=True, slots=True)
class JwtIdentity:
    """A JWT whose ``sub`` (when given) and claims all match; a claim holding a list matches when
    it contains the expected value (e.g. ``groups: oncology``)."""

    subject: str | None
    claims: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Client:
    """A network client: its identity, the networks it may come from, and its grant."""

    id: str
    identity: TokenIdentity | JwtIdentity
    networks: tuple[Network, ...]
    grant: Grant


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    """The global allow-list, and the proxies whose ``X-Forwarded-For`` is believed."""

    allow: tuple[Network, ...]
    trusted_proxies: tuple[Network, ...] = ()


@dataclass(frozen=True, slots=True)
class JwtSettings:
    """How OAuth 2 access tokens (JWTs) are validated."""

    issuer: str
    audience: str
    jwks_url: str | None
    jwks_file: Path | None
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    leeway_seconds: int = 30
    cache_seconds: int = 300


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """A parsed, validated access policy."""

    path: str
    sha256: str
    network: NetworkSettings
    jwt: JwtSettings | None
    tenants: Mapping[str, frozenset[str]]
    clients: tuple[Client, ...]
    local: Grant

    def client(self, client_id: str) -> Client | None:
        """The client with that id, if any."""
        return next((c for c in self.clients if c.id == client_id), None)

    def token_clients(self) -> dict[str, Client]:
        """Clients identified by a static token, keyed by the token's SHA-256."""
        return {c.identity.token_sha256: c for c in self.clients if isinstance(c.identity, TokenIdentity)}

    def jwt_clients(self) -> tuple[Client, ...]:
        """Clients identified by a JWT, in file order (the first that matches a token wins)."""
        return tuple(c for c in self.clients if isinstance(c.identity, JwtIdentity))


def load_policy(path: str | Path, *, catalog: Mapping[str, frozenset[str]] | None = None) -> AccessPolicy:
    """Read and validate a policy file. ``catalog`` (view → columns), when given, is used to check
    the view and column names the policy mentions."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AccessPolicyError(str(path), "", f"cannot read the policy: {exc.strerror}") from exc
    try:
        document = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise AccessPolicyError(str(path), "", f"{where}not valid YAML") from exc
    return parse_policy(document, path=str(path), catalog=catalog, sha256=hashlib.sha256(raw).hexdigest(), base=path.parent)


def parse_policy(
    document: Any,
    *,
    path: str = "<policy>",
    catalog: Mapping[str, frozenset[str]] | None = None,
    sha256: str = "",
    base: Path | None = None,
) -> AccessPolicy:
    """Validate a policy already read as Python data (see :func:`load_policy`)."""
    return _Parser(path, catalog, base or Path.cwd()).policy(document, sha256)


class _Parser:
    """Walks the document once, raising :class:`AccessPolicyError` at the first mistake."""

    def __init__(self, path: str, catalog: Mapping[str, frozenset[str]] | None, base: Path) -> None:
        self.path = path
        self.catalog = catalog
        self.base = base
        self.tenants: dict[str, frozenset[str]] = {}
        self.cohorts: dict[str, Mapping[str, Any]] = {}
        self.default_k = DEFAULT_K

    def fail(self, pointer: str, reason: str) -> AccessPolicyError:
        return AccessPolicyError(self.path, pointer, reason)

    def mapping(self, value: Any, pointer: str, keys: Sequence[str], required: Sequence[str] = ()) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(pointer, f"must be a mapping, not {_kind(value)}")
        for key in value:
            if key not in keys:
                raise self.fail(f"{pointer}/{key}", f"unknown key (expected one of: {', '.join(keys)})")
        for key in required:
            if key not in value:
                raise self.fail(pointer, f"missing required key {key!r}")
        return value

    def policy(self, document: Any, sha256: str) -> AccessPolicy:
        if document is None:
            document = {}
        top = self.mapping(document, "", ("version", "k", "network", "jwt", "tenants", "cohorts", "clients", "local"))
        if top.get("version", 1) != 1:
            raise self.fail("/version", "only version 1 is supported")
        self.default_k = self.k(top.get("k", DEFAULT_K), "/k")
        self.tenants = self.tenant_map(top.get("tenants", {}))
        self.cohorts = self.cohort_map(top.get("cohorts", {}))
        jwt = self.jwt(top["jwt"]) if top.get("jwt") is not None else None
        clients = self.clients(top.get("clients", []), jwt is not None)
        local = self.grant(top.get("local", {}), "/local", local=True)
        return AccessPolicy(
            path=self.path,
            sha256=sha256,
            network=self.network(top.get("network", {})),
            jwt=jwt,
            tenants=self.tenants,
            clients=clients,
            local=local,
        )

    def k(self, value: Any, pointer: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(pointer, f"must be an integer, not {_kind(value)}")
        if value < K_FLOOR:
            raise self.fail(pointer, f"k={value} is below the floor of {K_FLOOR} patients per cell")
        return value

    def epsilon(self, value: Any, pointer: str) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
            raise self.fail(pointer, f"must be a positive number, not {_kind(value) if not isinstance(value, int | float) else value}")
        return float(value)

    def string(self, value: Any, pointer: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(pointer, f"must be a non-empty string, not {_kind(value)}")
        return value

    def identifier(self, value: Any, pointer: str) -> str:
        text = self.string(value, pointer)
        if not _ID.match(text):
            raise self.fail(pointer, f"{text!r} is not a valid name (letters, digits, '.', '_', '-')")
        return text

    def strings(self, value: Any, pointer: str) -> list[str]:
        if not isinstance(value, list):
            raise self.fail(pointer, f"must be a list, not {_kind(value)}")
        return [self.string(item, f"{pointer}/{i}") for i, item in enumerate(value)]

    def networks(self, value: Any, pointer: str) -> tuple[Network, ...]:
        result = []
        for i, text in enumerate(self.strings(value, pointer)):
            try:
                result.append(ipaddress.ip_network(text, strict=True))
            except ValueError as exc:
                raise self.fail(f"{pointer}/{i}", f"{text!r} is not a CIDR network ({exc})") from exc
        return tuple(result)

    def network(self, value: Any) -> NetworkSettings:
        node = self.mapping(value, "/network", ("allow", "trusted_proxies"))
        allow = node.get("allow", ["127.0.0.0/8", "::1/128"])
        return NetworkSettings(
            allow=self.networks(allow, "/network/allow"),
            trusted_proxies=self.networks(node.get("trusted_proxies", []), "/network/trusted_proxies"),
        )

    def jwt(self, value: Any) -> JwtSettings:
        keys = ("issuer", "audience", "jwks_url", "jwks_file", "algorithms", "leeway_seconds", "cache_seconds")
        node = self.mapping(value, "/jwt", keys, required=("issuer", "audience"))
        if ("jwks_url" in node) == ("jwks_file" in node):
            raise self.fail("/jwt", "give exactly one of 'jwks_url' and 'jwks_file'")
        url = self.string(node["jwks_url"], "/jwt/jwks_url") if "jwks_url" in node else None
        if url is not None and not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise self.fail("/jwt/jwks_url", "must be an https:// URL (plain http only on loopback)")
        file = self.base / self.string(node["jwks_file"], "/jwt/jwks_file") if "jwks_file" in node else None
        if file is not None and not file.is_file():
            raise self.fail("/jwt/jwks_file", f"no such file: {file}")
        algorithms = self.strings(node.get("algorithms", ["RS256", "ES256"]), "/jwt/algorithms")
        for i, name in enumerate(algorithms):
            if name not in _ASYMMETRIC:
                raise self.fail(f"/jwt/algorithms/{i}", f"{name!r} is not an asymmetric JWS algorithm ({', '.join(sorted(_ASYMMETRIC))})")
        return JwtSettings(
            issuer=self.string(node["issuer"], "/jwt/issuer"),
            audience=self.string(node["audience"], "/jwt/audience"),
            jwks_url=url,
            jwks_file=file,
            algorithms=tuple(algorithms),
            leeway_seconds=self.seconds(node.get("leeway_seconds", 30), "/jwt/leeway_seconds"),
            cache_seconds=self.seconds(node.get("cache_seconds", 300), "/jwt/cache_seconds"),
        )

    def seconds(self, value: Any, pointer: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(pointer, f"must be a whole number of seconds >= 0, not {value!r}")
        return value

    def tenant_map(self, value: Any) -> dict[str, frozenset[str]]:
        if not isinstance(value, Mapping):
            raise self.fail("/tenants", f"must be a mapping of tenant name to sources, not {_kind(value)}")
        owner: dict[str, str] = {}
        tenants: dict[str, frozenset[str]] = {}
        for name, node in value.items():
            pointer = f"/tenants/{name}"
            self.identifier(name, pointer)
            body = self.mapping(node, pointer, ("sources",), required=("sources",))
            sources = self.strings(body["sources"], f"{pointer}/sources")
            if not sources:
                raise self.fail(f"{pointer}/sources", "a tenant needs at least one source")
            for i, source in enumerate(sources):
                if source in owner:
                    raise self.fail(f"{pointer}/sources/{i}", f"source {source!r} already belongs to tenant {owner[source]!r}")
                owner[source] = name
            tenants[name] = frozenset(sources)
        return tenants

    def cohort_map(self, value: Any) -> dict[str, Mapping[str, Any]]:
        if not isinstance(value, Mapping):
            raise self.fail("/cohorts", f"must be a mapping of cohort name to definition, not {_kind(value)}")
        cohorts: dict[str, Mapping[str, Any]] = {}
        for name, definition in value.items():
            self.identifier(name, f"/cohorts/{name}")
            if not isinstance(definition, Mapping) or not definition:
                raise self.fail(f"/cohorts/{name}", "a cohort definition must be a non-empty mapping")
            cohorts[name] = definition
        return cohorts

    def clients(self, value: Any, has_jwt: bool) -> tuple[Client, ...]:
        if not isinstance(value, list):
            raise self.fail("/clients", f"must be a list, not {_kind(value)}")
        clients: list[Client] = []
        seen_ids: set[str] = set()
        seen_hashes: set[str] = set()
        for i, node in enumerate(value):
            client = self.client(node, f"/clients/{i}", has_jwt)
            if client.id in seen_ids:
                raise self.fail(f"/clients/{i}/id", f"client id {client.id!r} is used twice")
            if isinstance(client.identity, TokenIdentity):
                if client.identity.token_sha256 in seen_hashes:
                    raise self.fail(f"/clients/{i}/identity/token_sha256", "this token hash is already another client's")
                seen_hashes.add(client.identity.token_sha256)
            seen_ids.add(client.id)
            clients.append(client)
        return tuple(clients)

    def client(self, value: Any, pointer: str, has_jwt: bool) -> Client:
        keys = ("id", "identity", "networks", *_GRANT_KEYS)
        node = self.mapping(value, pointer, keys, required=("id", "identity"))
        client_id = self.identifier(node["id"], f"{pointer}/id")
        if client_id == "local":
            raise self.fail(f"{pointer}/id", "'local' is reserved for the stdio user")
        grant_node = {key: node[key] for key in _GRANT_KEYS if key in node}
        if self.tenants and "tenant" not in grant_node:
            raise self.fail(pointer, "missing required key 'tenant' (the policy declares tenants)")
        return Client(
            id=client_id,
            identity=self.identity(node["identity"], f"{pointer}/identity", has_jwt),
            networks=self.networks(node.get("networks", []), f"{pointer}/networks"),
            grant=self.grant(grant_node, pointer, local=False),
        )

    def identity(self, value: Any, pointer: str, has_jwt: bool) -> TokenIdentity | JwtIdentity:
        node = self.mapping(value, pointer, ("token_sha256", "jwt"))
        if len(node) != 1:
            raise self.fail(pointer, "give exactly one of 'token_sha256' and 'jwt'")
        if "token_sha256" in node:
            digest = node["token_sha256"]
            if not isinstance(digest, str) or not _SHA256.match(digest):
                raise self.fail(f"{pointer}/token_sha256", "must be 64 lowercase hex digits in quotes (run `fhirlake access token`)")
            return TokenIdentity(digest)
        if not has_jwt:
            raise self.fail(f"{pointer}/jwt", "a JWT identity needs the top-level 'jwt' settings")
        match = self.mapping(node["jwt"], f"{pointer}/jwt", ("subject", "claims"))
        claims = self.mapping(match.get("claims", {}), f"{pointer}/jwt/claims", tuple(match.get("claims", {}) or ()))
        subject = self.string(match["subject"], f"{pointer}/jwt/subject") if "subject" in match else None
        if subject is None and not claims:
            raise self.fail(f"{pointer}/jwt", "give a 'subject' or at least one claim to match")
        return JwtIdentity(subject, {str(k): self.string(v, f"{pointer}/jwt/claims/{k}") for k, v in claims.items()})

    def grant(self, value: Any, pointer: str, *, local: bool) -> Grant:
        node = self.mapping(value, pointer, _GRANT_KEYS)
        tenant = self.identifier(node["tenant"], f"{pointer}/tenant") if node.get("tenant") is not None else None
        if tenant is not None and tenant not in self.tenants:
            raise self.fail(f"{pointer}/tenant", f"unknown tenant {tenant!r} (declared: {', '.join(self.tenants) or 'none'})")
        views = self.view_scope(node.get("views", "all"), f"{pointer}/views")
        return Grant(
            tools=self.scope(node.get("tools", "all" if local else []), f"{pointer}/tools"),
            views=views,
            tenant=tenant,
            sources=self.tenants[tenant] if tenant is not None else ALL,
            cohort=self.cohort(node["cohort"], f"{pointer}/cohort") if node.get("cohort") is not None else None,
            hidden=self.hidden(node.get("hide", {}), f"{pointer}/hide"),
            generalised=self.generalised(node.get("generalise", {}), f"{pointer}/generalise"),
            k=self.k(node.get("k", self.default_k), f"{pointer}/k"),
            epsilon_per_day=self.epsilon(node["epsilon_per_day"], f"{pointer}/epsilon_per_day")
            if node.get("epsilon_per_day") is not None else None,
        )

    def scope(self, value: Any, pointer: str) -> frozenset[str] | None:
        if value == "all":
            return ALL
        return frozenset(self.strings(value, pointer))

    def view_scope(self, value: Any, pointer: str) -> frozenset[str] | None:
        views = self.scope(value, pointer)
        for i, name in enumerate(sorted(views or ())):
            self.known_view(name, f"{pointer}/{i}")
        return views

    def known_view(self, name: str, pointer: str) -> frozenset[str]:
        if self.catalog is None:
            return frozenset()
        if name not in self.catalog:
            raise self.fail(pointer, f"unknown view {name!r} (views: {', '.join(sorted(self.catalog))})")
        return self.catalog[name]

    def known_column(self, view: str, column: str, pointer: str) -> None:
        columns = self.known_view(view, pointer)
        if self.catalog is not None and column not in columns:
            raise self.fail(pointer, f"view {view!r} has no column {column!r}")

    def cohort(self, value: Any, pointer: str) -> CohortRestriction:
        if isinstance(value, str):
            if value not in self.cohorts:
                raise self.fail(pointer, f"unknown cohort {value!r} (declared: {', '.join(self.cohorts) or 'none'})")
            return CohortRestriction(value, self.cohorts[value])
        if isinstance(value, Mapping) and value:
            return CohortRestriction("inline", value)
        raise self.fail(pointer, "must be a cohort name or an inline cohort definition")

    def hidden(self, value: Any, pointer: str) -> dict[str, frozenset[str]]:
        node = self.mapping(value, pointer, tuple(value) if isinstance(value, Mapping) else ())
        hidden: dict[str, frozenset[str]] = {}
        for view, columns in node.items():
            names = self.strings(columns, f"{pointer}/{view}")
            for i, column in enumerate(names):
                self.known_column(view, column, f"{pointer}/{view}/{i}")
            hidden[view] = frozenset(names)
        return hidden

    def generalised(self, value: Any, pointer: str) -> dict[str, dict[str, str]]:
        node = self.mapping(value, pointer, tuple(value) if isinstance(value, Mapping) else ())
        result: dict[str, dict[str, str]] = {}
        for view, columns in node.items():
            body = self.mapping(columns, f"{pointer}/{view}", tuple(columns) if isinstance(columns, Mapping) else ())
            result[view] = {}
            for column, rule in body.items():
                self.known_column(view, column, f"{pointer}/{view}/{column}")
                kind = self.string(rule, f"{pointer}/{view}/{column}")
                if kind not in ("year", "month") and not _PREFIX.match(kind):
                    raise self.fail(f"{pointer}/{view}/{column}", f"unknown generalisation {kind!r} (year, month or prefix:N)")
                result[view][column] = kind
        return result


_GRANT_KEYS = ("tools", "views", "tenant", "cohort", "hide", "generalise", "k", "epsilon_per_day")


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
