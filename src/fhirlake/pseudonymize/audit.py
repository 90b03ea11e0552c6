"""The audit of the policy against the whole FHIR R4 registry: which strings go through as is?

A policy is a list of what to change; anything it does not select is kept. A string element
nobody thought of (``Device.lotNumber`` was one) therefore passes through verbatim. This audit
walks every element of every resource type in the registry and lists the ``string`` and
``markdown`` elements that no rule selects. Each must be declared safe in
``anonymization/string-elements.yaml``, either as an element (``Device.modelNumber``) or as
a whole definitional resource (a ValueSet holds no patient); the test
``tests/pseudonymize/test_registry_audit.py`` fails on any other.

>>> from fhirlake.pseudonymize.policy import load_policy
>>> "Device.lotNumber" in unselected_strings(load_policy(), frozenset())
False
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from fhirlake.pseudonymize.errors import PolicyError
from fhirlake.pseudonymize.fhirtypes import TypeRegistry, load_registry
from fhirlake.pseudonymize.plan import Node, PlanBuilder
from fhirlake.pseudonymize.policy import Policy

__all__ = ["SafeStrings", "load_safe_strings", "unselected_strings"]

_STRING_TYPES = frozenset({"string", "markdown"})
_SKIPPED = frozenset({"extension", "modifierExtension", "contained", "id"})
_MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class SafeStrings:
    """What the audit accepts unselected: whole resources, and ``Type.element`` names."""

    resources: frozenset[str]
    elements: frozenset[str]


def load_safe_strings(path: Path) -> SafeStrings:
    """Read ``string-elements.yaml``; errors name the file and the entry."""
    where = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(where, "", f"cannot read the safe string elements ({exc})") from None
    if not isinstance(raw, dict) or raw.get("version") != 1:
        raise PolicyError(where, "/version", "expected a mapping with version: 1")
    found: dict[str, set[str]] = {"definitionalResources": set(), "safe": set()}
    for section in found:
        groups = raw.get(section)
        if not isinstance(groups, dict):
            raise PolicyError(where, f"/{section}", "expected a mapping of reason to names")
        for reason, names in groups.items():
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise PolicyError(where, f"/{section}/{reason}", "expected a list of names")
            found[section].update(names)
    return SafeStrings(frozenset(found["definitionalResources"]), frozenset(found["safe"]))


def unselected_strings(
    policy: Policy, safe: SafeStrings | frozenset[str], registry: TypeRegistry | None = None
) -> dict[str, str]:
    """Every string element of patient data no rule selects: ``Type.element`` → an example path.

    ``Type`` is the element's parent type (a backbone element has its own type name, such as
    ``AllergyIntoleranceReaction``). Elements and resources in ``safe`` are left out.
    """
    registry = registry or load_registry()
    plans = PlanBuilder(policy, registry)
    if isinstance(safe, SafeStrings):
        resources, elements = safe.resources, safe.elements
    else:
        resources, elements = frozenset(), safe
    found: dict[str, str] = {}
    for type_name in registry.type_names():
        if not registry.is_resource(type_name) or type_name in ("Resource", "DomainResource"):
            continue
        if type_name in resources:
            continue
        _walk(plans, registry, plans.root(type_name), type_name, frozenset(), found, elements)
    return found


def _walk(
    plans: PlanBuilder,
    registry: TypeRegistry,
    node: Node,
    path: str,
    seen: frozenset[str],
    found: dict[str, str],
    safe: frozenset[str],
) -> None:
    if len(node.steps) > _MAX_DEPTH:
        return
    for key, info in registry.elements(node.type).items():
        if key in _SKIPPED:
            continue
        child = plans.child(node, key)
        if child is None or child.rule is not None:
            continue
        if info.type in _STRING_TYPES:
            name = f"{node.type}.{key}"
            if name not in safe:
                found.setdefault(name, f"{path}.{key}")
        elif child.descend and info.type not in seen:
            _walk(plans, registry, child, f"{path}.{key}", seen | {info.type}, found, safe)
