"""The policy compiled against the FHIR type registry: which rule applies to which element.

Matching a rule against an element needs the element's path from the resource root and its
type. Doing that for every node of every resource would dominate the run, so it is done once
per distinct path and remembered in a tree of :class:`Node` objects that grows lazily as new
paths are met in the data (a few thousand nodes for a whole Bulk export).

Each node also knows whether any rule can apply *below* it (``prune``). The walk skips a pruned
subtree (a CodeableConcept under the default policy, say) unless the resource has extensions,
which can appear anywhere and must always be checked against the allow-list.

First match wins, in file order, also across levels: when a ``redact`` or ``keep`` rule selects
an element but an *earlier* rule selects something inside it (``keep HumanName.family`` before
``redact type HumanName``), the element is not handled whole. It is walked with the later rule
``inherited``: each part takes the first earlier rule that selects it, else the inherited one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhirlake.pseudonymize.fhirtypes import TypeRegistry
from fhirlake.pseudonymize.policy import Policy, Rule

__all__ = ["Node", "PlanBuilder", "Step"]

_ANY_RESOURCE = frozenset({"Resource", "DomainResource"})


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a path: the parent's type, the JSON key, and the key without choice suffix."""

    parent: str
    key: str
    base: str


@dataclass(slots=True, eq=False)
class Node:
    """The plan for one path: its type, the rule that selects it (if any), its children."""

    type: str
    steps: tuple[Step, ...]
    rule: Rule | None
    prune: bool
    children: dict[str, Node | None] = field(default_factory=dict)
    action: Any = None  # the rule compiled for this path by fhirlake.pseudonymize.rules
    # a redact/keep rule from an ancestor, for the parts no earlier rule selects
    inherited: Rule | None = None
    descend: bool = False  # a complex type (not a primitive, not a contained resource)

    @property
    def is_root(self) -> bool:
        return not self.steps


class PlanBuilder:
    """Builds plan nodes on demand and remembers them."""

    def __init__(self, policy: Policy, registry: TypeRegistry) -> None:
        self.policy = policy
        self.registry = registry
        self._roots: dict[str, Node] = {}
        self._active = [r for r in policy.rules if r.method != "keep"]
        # per Element-rooted rule: the types that have its first element
        having: dict[str, set[str]] = {}  # element name -> the types that have it
        for t in registry.type_names():
            for info in registry.elements(t).values():
                having.setdefault(info.key, set()).add(t)
                having.setdefault(info.base, set()).add(t)
        self._element_rule_types = {
            r.index: frozenset(having.get(r.selector.elements[0], ()))
            for r in policy.rules
            if r.selector.root == "Element"
        }

    def root(self, resource_type: str) -> Node:
        """The plan of a resource of this type (the caller has checked the type exists)."""
        node = self._roots.get(resource_type)
        if node is None:
            node = Node(resource_type, (), None, False)
            self._roots[resource_type] = node
        return node

    def child(self, node: Node, key: str) -> Node | None:
        """The plan of ``key`` under ``node``; ``None`` if the type has no such element."""
        try:
            return node.children[key]
        except KeyError:
            pass
        result = self.build(node, key)
        node.children[key] = result
        return result

    def build(self, node: Node, key: str) -> Node | None:
        """A new plan node for ``key`` under ``node``, not remembered in ``node.children``."""
        info = self.registry.element(node.type, key)
        if info is None:
            return None
        steps = (*node.steps, Step(node.type, key, info.base))
        rules = self.policy.rules
        limit = node.inherited.index if node.inherited is not None else len(rules)
        rule = next(
            (r for r in rules[:limit] if self._matches(r, steps, info.type)), node.inherited
        )
        if (
            rule is not None
            and rule.method in ("redact", "keep")
            and self._may_apply_below(info.type, steps, rules[: rule.index])
        ):
            return Node(
                info.type, steps, None, False, inherited=rule, descend=self._descend(info.type)
            )
        prune = rule is not None or not self._may_apply_below(info.type, steps, self._active)
        return Node(info.type, steps, rule, prune, descend=self._descend(info.type))

    def _descend(self, type_name: str) -> bool:
        return type_name != "Resource" and not self.registry.is_primitive(type_name)

    def _matches(self, rule: Rule, steps: tuple[Step, ...], type_name: str) -> bool:
        sel = rule.selector
        if sel.type:
            return sel.type == type_name
        k = len(sel.elements)
        if k > len(steps):
            return False
        tail = steps[len(steps) - k :]
        if any(
            name not in (step.key, step.base) for step, name in zip(tail, sel.elements, strict=True)
        ):
            return False
        at_root = len(steps) == k
        if sel.root == "Element":
            return True
        if sel.root in _ANY_RESOURCE:
            return at_root and self.registry.is_resource(tail[0].parent)
        if self.registry.is_resource(sel.root):
            return at_root and tail[0].parent == sel.root
        return tail[0].parent == sel.root

    def _may_apply_below(
        self, type_name: str, steps: tuple[Step, ...], rules: list[Rule] | tuple[Rule, ...]
    ) -> bool:
        """Whether any of ``rules`` could select something strictly below this node."""
        below = self.registry.reachable(type_name)
        around = below | {type_name}
        for rule in rules:
            sel = rule.selector
            if sel.type:
                if sel.type in below:
                    return True
            elif sel.root == "Element":
                if self._element_rule_types[rule.index] & around:
                    return True
            elif sel.root in _ANY_RESOURCE or self.registry.is_resource(sel.root):
                if sel.root not in _ANY_RESOURCE and sel.root != steps[0].parent:
                    continue
                depth = len(steps)
                if len(sel.elements) > depth and all(
                    name in (step.key, step.base)
                    for step, name in zip(steps, sel.elements[:depth], strict=True)
                ):
                    return True
            elif sel.root in around:
                return True
        return False
