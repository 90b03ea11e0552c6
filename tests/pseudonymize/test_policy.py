"""The policy file: the default parses and means what it says; bad files fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fhirlake.pseudonymize.errors import PolicyError
from fhirlake.pseudonymize.policy import DEFAULT_POLICY_PATH, Policy, load_policy, parse_policy


def test_default_policy_is_valid_and_keeps_analytics(policy: Policy) -> None:
    methods = {rule.name: rule.method for rule in policy.rules}
    assert methods["resource ids"] == "pseudonym"
    assert methods["references"] == "pseudonym"
    assert methods["identifier values"] == "pseudonym"
    assert methods["human names"] == "redact"
    assert methods["birth dates"] == "generalize"
    assert methods["attachment data"] == "text"
    # no rule touches codes, values or units
    selected = {str(rule.selector) for rule in policy.rules}
    assert not selected & {
        "type Coding",
        "type CodeableConcept",
        "type Quantity",
        "Observation.value",
    }
    assert policy.text.analyzer.is_file()
    assert policy.uses_text and not policy.without_text().uses_text


def _policy_text(**changes: object) -> str:
    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        target = raw
        *parents, last = dotted.split("__")
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return yaml.safe_dump(raw, allow_unicode=True)


def _error(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, DEFAULT_POLICY_PATH)
    return caught.value


@pytest.mark.parametrize(
    ("changes", "pointer", "reason"),
    [
        ({"rules__0__method": "hash"}, "/rules/0 (resource ids)/method", "unknown method 'hash'"),
        (
            {"rules__0__path": "Resource.nope"},
            "/rules/0 (resource ids)/path",
            "'Resource' has no element 'nope'",
        ),
        (
            {"rules__0__path": "Wibble.id"},
            "/rules/0 (resource ids)/path",
            "not a FHIR resource or data type",
        ),
        (
            {"rules__0": {"type": "HumanName", "method": "dateShift"}},
            "/rules/0",
            "dateShift applies to date",
        ),
        (
            {"rules__0": {"path": "Patient.birthDate", "method": "generalize"}},
            "/rules/0/to",
            "generalize needs 'to'",
        ),
        (
            {"rules__0": {"type": "HumanName", "method": "substitute"}},
            "/rules/0",
            "substitute needs a 'value'",
        ),
        (
            {"rules__0": {"type": "Nope", "method": "redact"}},
            "/rules/0/type",
            "not a FHIR data type",
        ),
        (
            {"rules__0": {"path": "Patient.name", "type": "HumanName", "method": "redact"}},
            "/rules/0",
            "exactly one of",
        ),
        ({"rules__1__name": "resource ids"}, "/rules/1/name", "used twice"),
        ({"dateShift": {"maxDays": 0}}, "/dateShift/maxDays", "from 1 to 3650"),
        ({"colour": "blue"}, "/colour", "unknown setting"),
        ({"version": 2}, "/version", "expected version: 1"),
        ({"text__analyzer": "missing.yaml"}, "/text/analyzer", "not found"),
        ({"text__entities": {"PERSON": "shred"}}, "/text/entities/PERSON", "unknown operator"),
    ],
)
def test_invalid_policy_names_file_pointer_and_reason(
    changes: dict[str, object], pointer: str, reason: str
) -> None:
    error = _error(_policy_text(**changes))
    assert error.path == str(DEFAULT_POLICY_PATH)
    assert error.pointer == pointer
    assert reason in error.reason
    assert str(error).startswith(f"{DEFAULT_POLICY_PATH}: {pointer}: ")


def test_yaml_syntax_error_names_line() -> None:
    error = _error("version: 1\nrules: [\n  - {path: x\n")
    assert "not valid YAML" in error.reason and "line" in error.reason


def test_unreadable_policy(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the policy"):
        load_policy(tmp_path / "absent.yaml")
