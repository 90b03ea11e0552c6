"""The access policy: the example file is valid, and each kind of mistake is named precisely."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from fhirlake.access import (
    K_FLOOR,
    AccessPolicyError,
    JwtIdentity,
    TokenIdentity,
    load_policy,
    parse_policy,
)
from fhirlake.access.catalog import library_catalog

EXAMPLE = Path(__file__).resolve().parents[2] / "anonymization" / "access-policy.example.yaml"
HASH = "a" * 64


@pytest.fixture(scope="module")
def catalog() -> Any:
    return library_catalog()


def base() -> dict[str, Any]:
    return {
        "tenants": {"north": {"sources": ["site-a"]}, "south": {"sources": ["site-b"]}},
        "cohorts": {"diabetes": {"criteria": {"kind": "condition", "codes": ["44054006"]}}},
        "clients": [
            {"id": "onco", "identity": {"token_sha256": HASH}, "tenant": "north", "tools": ["count_patients"],
             "views": ["patient"], "cohort": "diabetes", "hide": {"patient": ["region"]},
             "generalise": {"patient": {"birth_date": "year"}}},
        ],
    }


def test_the_example_policy_is_valid(catalog: Any) -> None:
    policy = load_policy(EXAMPLE, catalog=catalog)
    onco = policy.client("onco-team")
    assert onco is not None and isinstance(onco.identity, TokenIdentity)
    assert onco.grant.sources == frozenset({"site-a"}) and onco.grant.cohort is not None
    assert onco.grant.hidden["patient"] == frozenset({"region"})
    assert onco.grant.generalised["patient"] == {"birth_date": "year"}
    partner = policy.client("partner-registry")
    assert partner is not None and isinstance(partner.identity, JwtIdentity)
    assert policy.jwt is not None and policy.jwt.audience == "fhirlake-mcp"
    assert policy.local.tools is None and policy.local.sources is None


def test_a_parsed_grant_carries_tenant_sources_scopes_and_k(catalog: Any) -> None:
    policy = parse_policy(base(), catalog=catalog)
    grant = policy.clients[0].grant
    assert grant.allows_tool("count_patients") and not grant.allows_tool("run_aggregate_sql")
    assert grant.allows_view("patient") and not grant.allows_view("condition")
    assert grant.tenant == "north" and grant.sources == frozenset({"site-a"})
    assert grant.k >= K_FLOOR
    assert policy.token_clients() == {HASH: policy.clients[0]}


def _set(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(document)
    node: Any = document
    keys = path.strip("/").split("/")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    last = keys[-1]
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return document


_DELETE = object()

MISTAKES = [
    ("/k", 3, "/k", "below the floor"),
    ("/clients/0/k", 2, "/clients/0/k", "below the floor"),
    ("/clients/0/identity/token_sha256", 123, "/clients/0/identity/token_sha256", "64 lowercase hex"),
    ("/clients/0/identity", {"token_sha256": HASH, "jwt": {"subject": "x"}}, "/clients/0/identity", "exactly one"),
    ("/clients/0/identity", {"jwt": {"subject": "x"}}, "/clients/0/identity/jwt", "top-level 'jwt'"),
    ("/clients/0/tenant", "west", "/clients/0/tenant", "unknown tenant 'west'"),
    ("/clients/0/tenant", _DELETE, "/clients/0", "missing required key 'tenant'"),
    ("/clients/0/cohort", "oncology", "/clients/0/cohort", "unknown cohort 'oncology'"),
    ("/clients/0/views", ["patient", "patients"], "/clients/0/views/1", "unknown view 'patients'"),
    ("/clients/0/hide", {"patient": ["address"]}, "/clients/0/hide/patient/0", "no column 'address'"),
    ("/clients/0/generalise", {"patient": {"birth_date": "decade"}}, "/clients/0/generalise/patient/birth_date", "unknown generalisation"),
    ("/clients/0/networks", ["10.0.0.300/8"], "/clients/0/networks/0", "not a CIDR"),
    ("/clients/0/networks", ["10.0.0.1/8"], "/clients/0/networks/0", "host bits"),
    ("/clients/0/id", "local", "/clients/0/id", "reserved"),
    ("/clients/0/colour", "blue", "/clients/0/colour", "unknown key"),
    ("/tenants/south/sources", ["site-a"], "/tenants/south/sources/0", "already belongs to tenant 'north'"),
    ("/network", {"allow": ["::1/128", "fe80::/1O"]}, "/network/allow/1", "not a CIDR"),
    ("/jwt", {"issuer": "https://idp", "audience": "a"}, "/jwt", "exactly one of 'jwks_url' and 'jwks_file'"),
    ("/jwt", {"issuer": "https://idp", "audience": "a", "jwks_url": "http://idp/certs"}, "/jwt/jwks_url", "https"),
    ("/jwt", {"issuer": "i", "audience": "a", "jwks_url": "https://idp/c", "algorithms": ["HS256"]}, "/jwt/algorithms/0", "asymmetric"),
    ("/version", 2, "/version", "only version 1"),
    ("/clients/0/epsilon_per_day", 0, "/clients/0/epsilon_per_day", "positive number"),
    ("/clients/0/epsilon_per_day", "lots", "/clients/0/epsilon_per_day", "positive number"),
]


def test_a_client_has_its_own_privacy_budget(catalog: Any, tmp_path: Path) -> None:
    from fhirlake.access.serve import AccessControl
    from fhirlake.audit import AuditTrail

    policy = parse_policy(_set(base(), "/clients/0/epsilon_per_day", 5), catalog=catalog)
    assert policy.clients[0].grant.epsilon_per_day == 5.0 and policy.local.epsilon_per_day is None
    control = AccessControl(load_policy(EXAMPLE, catalog=catalog), AuditTrail.for_lake(tmp_path / "lake", fsync=False))
    try:
        assert control.budgets() == {"partner-registry": 5.0}  # the example's; the others use the server's
    finally:
        control.close()


@pytest.mark.parametrize(("path", "value", "pointer", "reason"), MISTAKES, ids=[m[2] + ":" + m[3] for m in MISTAKES])
def test_a_mistake_names_the_file_pointer_and_reason(catalog: Any, path: str, value: Any, pointer: str, reason: str) -> None:
    with pytest.raises(AccessPolicyError) as caught:
        parse_policy(_set(base(), path, value), path="policy.yaml", catalog=catalog)
    assert caught.value.path == "policy.yaml"
    assert caught.value.pointer == pointer
    assert reason in caught.value.reason
    assert "\n" not in str(caught.value)


def test_two_clients_cannot_share_an_id_or_a_token(catalog: Any) -> None:
    document = base()
    document["clients"].append({**document["clients"][0], "identity": {"token_sha256": "b" * 64}})
    with pytest.raises(AccessPolicyError, match=r"/clients/1/id: client id 'onco' is used twice"):
        parse_policy(document, catalog=catalog)
    document["clients"][1]["id"] = "other"
    document["clients"][1]["identity"] = {"token_sha256": HASH}
    with pytest.raises(AccessPolicyError, match=r"/clients/1/identity/token_sha256: this token hash"):
        parse_policy(document, catalog=catalog)


def test_an_unquoted_numeric_hash_in_yaml_is_refused(tmp_path: Path) -> None:
    text = yaml.safe_dump(base()).replace(f"'{HASH}'", "1" * 64).replace(HASH, "1" * 64)
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(AccessPolicyError, match=r"policy.yaml: /clients/0/identity/token_sha256: must be 64 lowercase hex digits in quotes"):
        load_policy(path)


def test_bad_yaml_and_missing_files_are_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("clients: [\n  - id: x\n")
    with pytest.raises(AccessPolicyError, match=r"policy.yaml: line \d+: not valid YAML"):
        load_policy(path)
    with pytest.raises(AccessPolicyError, match="cannot read the policy"):
        load_policy(tmp_path / "absent.yaml")


def test_the_jwks_file_is_relative_to_the_policy(tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text('{"keys": []}')
    document = {"jwt": {"issuer": "https://idp", "audience": "fhirlake", "jwks_file": "keys.json"}}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    policy = load_policy(path)
    assert policy.jwt is not None and policy.jwt.jwks_file == tmp_path / "keys.json"
    document["jwt"]["jwks_file"] = "nope.json"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(AccessPolicyError, match=r"/jwt/jwks_file: no such file"):
        load_policy(path)
