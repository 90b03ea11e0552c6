"""The policy against the whole R4 registry: no identifying string passes through unseen."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirlake.pseudonymize.audit import load_safe_strings, unselected_strings
from fhirlake.pseudonymize.errors import PolicyError
from fhirlake.pseudonymize.fhirtypes import load_registry
from fhirlake.pseudonymize.plan import PlanBuilder
from fhirlake.pseudonymize.policy import DEFAULT_POLICY_PATH, Policy, parse_policy

SAFE_PATH = DEFAULT_POLICY_PATH.parent / "string-elements.yaml"

# Strings that identify a person or what they carry: each must be changed by a rule (never
# kept, never declared safe).
IDENTIFYING = [
    ("Device", "lotNumber"),
    ("Device", "serialNumber"),
    ("Device", "udiCarrier"),
    ("Device", "distinctIdentifier"),
    ("Immunization", "lotNumber"),
    ("Medication", "batch.lotNumber"),
    ("Coverage", "subscriberId"),
    ("Coverage", "dependent"),
    ("Claim", "insurance.preAuthRef"),
    ("FamilyMemberHistory", "name"),
    ("MolecularSequence", "observedSeq"),
    ("AuditEvent", "agent.name"),
    ("Patient", "name.family"),
    ("Patient", "telecom.value"),
    ("Patient", "address.line"),
    ("Patient", "identifier.value"),
]


def _rule_for(policy: Policy, resource: str, path: str) -> str | None:
    plans = PlanBuilder(policy, load_registry())
    node = plans.root(resource)
    rule = None
    for key in path.split("."):
        child = plans.child(node, key)
        assert child is not None, f"{resource}.{path}: no such element"
        node = child
        rule = node.rule or node.inherited or rule
    return rule.method if rule is not None else None


def test_every_string_element_is_handled_or_declared_safe(policy: Policy) -> None:
    safe = load_safe_strings(SAFE_PATH)
    left = unselected_strings(policy, safe)
    assert not left, (
        f"{len(left)} string elements pass through unseen; add a rule to policy.yaml or list "
        f"them in string-elements.yaml: {sorted(left.values())[:20]}"
    )


def test_the_safe_list_names_only_real_unhandled_elements(policy: Policy) -> None:
    safe = load_safe_strings(SAFE_PATH)
    everything = unselected_strings(policy, frozenset())
    stale = sorted(safe.elements - set(everything))
    assert not stale, f"listed as safe but handled by a rule or not a string: {stale}"
    registry = load_registry()
    assert all(registry.is_resource(r) for r in safe.resources)


@pytest.mark.parametrize(("resource", "path"), IDENTIFYING)
def test_identifying_strings_are_changed(policy: Policy, resource: str, path: str) -> None:
    method = _rule_for(policy, resource, path)
    assert method not in (None, "keep"), f"{resource}.{path} is kept verbatim"


def test_a_forgotten_element_fails_the_audit(policy: Policy) -> None:
    text = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    without = text.replace(
        "  - name: lot numbers\n    path: Element.lotNumber\n    method: pseudonym\n", ""
    )
    assert without != text
    weaker = parse_policy(without, DEFAULT_POLICY_PATH)
    left = unselected_strings(weaker, load_safe_strings(SAFE_PATH))
    assert "Device.lotNumber" in left and "Immunization.lotNumber" in left


def test_a_bad_safe_list_names_its_entry(tmp_path: Path) -> None:
    bad = tmp_path / "string-elements.yaml"
    bad.write_text(
        "version: 1\ndefinitionalResources: {x: [ValueSet]}\nsafe: {codes: Coding.display}\n"
    )
    with pytest.raises(PolicyError, match="/safe/codes"):
        load_safe_strings(bad)
