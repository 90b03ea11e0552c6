"""The structured rules: one walk over a resource that applies the compiled policy.

:meth:`StructuredRules.apply` changes a resource in place: ids and references pseudonymised,
names removed, dates shifted by the patient's offset, quasi-identifiers generalised, unknown
extensions removed, and ``meta.security`` labels added for what was done. Free text is not
scrubbed here: each text element is left as it is and handed back as a :class:`TextSlot`, so
the texts of many resources can go to Presidio in one batch (see ``fhirlake.pseudonymize.text``).

A resource that cannot be processed (a date that is not a date, an object where a string
belongs) raises :class:`RecordError` with the JSON pointer of the element; the caller
quarantines the resource.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fhirlake.pseudonymize.dates import age_in_years, generalize_date, parse_date, shift_date
from fhirlake.pseudonymize.errors import RecordError
from fhirlake.pseudonymize.fhirtypes import TypeRegistry
from fhirlake.pseudonymize.generalize import generalize_postal_code, top_code_age
from fhirlake.pseudonymize.keys import PseudonymKey
from fhirlake.pseudonymize.patients import PatientDirectory, PatientInfo, compartment_patient
from fhirlake.pseudonymize.plan import Node, PlanBuilder
from fhirlake.pseudonymize.policy import Policy, Rule
from fhirlake.pseudonymize.references import BundleUrls, rewrite_reference

__all__ = ["SECURITY_SYSTEM", "ResourceContext", "RuleStats", "StructuredRules", "TextSlot"]

SECURITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
# What each method did, as v3 ObservationValue security-integrity codes. Every processed
# resource also gets PSEUDED; date shifting is covered by it.
_LABELS: dict[str, tuple[str, str]] = {
    "redact": ("REDACTED", "redacted"),
    "substitute": ("REDACTED", "redacted"),
    "pseudonym": ("CRYTOHASH", "cryptographic hash function"),
    "generalize": ("ABSTRED", "abstracted"),
    "text": ("MASKED", "masked"),
}
_PSEUDED = ("PSEUDED", "pseudonymized")
_EXTENSION_KEYS = ("extension", "modifierExtension")
# Bundle elements that hold a resource's address, pseudonymised like references
_BUNDLE_URLS = frozenset(
    {("BundleEntry", "fullUrl"), ("BundleEntryRequest", "url"), ("BundleEntryResponse", "location")}
)


class _Drop:
    """Returned by an action to remove the element."""


DROP = _Drop()
_MISSING = object()
_UNPLANNED = Node("", (), None, False)  # "not in node.children yet"
Action = Callable[[Any, dict[str, Any], "ResourceContext", Any, Any], Any]


@dataclass(slots=True)
class TextSlot:
    """A free-text element waiting for Presidio: where it is, its text, and its patient."""

    container: Any  # the dict or list that holds the value
    slot: Any  # the key or index in ``container``
    text: str
    kind: str  # "plain", "xhtml" or "base64"
    parent: dict[str, Any]
    rule: str
    patient: PatientInfo | None
    offset: int
    language: str | None


@dataclass(slots=True)
class RuleStats:
    """Counts for the privacy report: values per rule, and other events by name."""

    rules: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)

    def merge(self, other: RuleStats) -> None:
        self.rules.update(other.rules)
        self.events.update(other.events)


@dataclass(slots=True)
class ResourceContext:
    """What the walk of one resource needs and collects."""

    patient: PatientInfo | None
    offset: int
    bundle_urls: BundleUrls | None
    labels: set[str] = field(default_factory=set)
    slots: list[TextSlot] = field(default_factory=list)
    deceased: str | None = None


class StructuredRules:
    """Applies a policy to resources, one at a time."""

    def __init__(
        self,
        policy: Policy,
        key: PseudonymKey,
        registry: TypeRegistry,
        patients: PatientDirectory,
        today: dt.date,
    ) -> None:
        self.policy = policy
        self.key = key
        self.registry = registry
        self.patients = patients
        self.today = today
        self.plans = PlanBuilder(policy, registry)
        self.stats = RuleStats()
        self._counts = [0] * len(policy.rules)  # per rule index; cheaper than a Counter
        self._element_root = self.plans.root("Element")
        self._offsets: dict[str, int] = {}
        self._extension_nodes: dict[Node, Node | None] = {}
        self._reference_cache: dict[int, dict[str, Any]] = {}
        self._label_cache: dict[frozenset[str], list[dict[str, str]]] = {}
        self._resource_types = frozenset(
            t for t in registry.type_names() if registry.is_resource(t)
        )
        self._no_patient_offset = key.day_offset("", policy.max_shift_days)

    # --- entry point -------------------------------------------------------------------------

    def apply(
        self, resource: dict[str, Any], *, full: bool = True, bundle_urls: BundleUrls | None = None
    ) -> ResourceContext:
        """Pseudonymise ``resource`` in place; return its context (text slots, labels).

        ``full=False`` promises that the resource has no extension and no ``_element``
        anywhere, which lets the walk skip subtrees no rule applies to.
        """
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str) or not self.registry.is_resource(resource_type):
            raise RecordError(f"unknown resourceType {resource_type!r}")
        patient_id = compartment_patient(resource, bundle_urls)
        ctx = ResourceContext(self.patients.get(patient_id), self._offset(patient_id), bundle_urls)
        if resource_type == "Patient" and isinstance(resource.get("deceasedDateTime"), str):
            ctx.deceased = resource["deceasedDateTime"]
        self._walk(resource, self.plans.root(resource_type), ctx, full)
        self._label(resource, ctx.labels)
        return ctx

    def take_stats(self) -> RuleStats:
        """The counts since the last call (per chunk), and start counting afresh."""
        stats, self.stats = self.stats, RuleStats()
        for rule, count in zip(self.policy.rules, self._counts, strict=True):
            if count:
                stats.rules[rule.name] += count
        self._counts = [0] * len(self.policy.rules)
        return stats

    def _offset(self, patient_id: str | None) -> int:
        if patient_id is None:
            return self._no_patient_offset
        offset = self._offsets.get(patient_id)
        if offset is None:
            offset = self.key.day_offset(patient_id, self.policy.max_shift_days)
            if len(self._offsets) > 100_000:
                self._offsets.clear()
            self._offsets[patient_id] = offset
        return offset

    # --- the walk ----------------------------------------------------------------------------

    def _walk(self, obj: dict[str, Any], node: Node, ctx: ResourceContext, full: bool) -> None:
        # The hot loop of the whole run: keep it flat (see the benchmark before changing it).
        # Only "_element" companions can vanish while we loop (with their element), and those
        # are looked up again in _special; every other value in the snapshot is current.
        children = node.children
        counts = self._counts
        for key, value in list(obj.items()):
            child = children.get(key, _UNPLANNED)
            if child is _UNPLANNED:
                if key == "resourceType":
                    continue
                if key in _EXTENSION_KEYS or key[0] == "_":
                    self._special(obj, key, node, ctx)
                    continue
                child = self.plans.child(node, key)
            try:
                if child is None:
                    self._element(obj, key, child, ctx, full)
                elif child.rule is None:
                    if child.prune and not full:
                        continue  # nothing to do below this element
                    if child.descend and type(value) is dict:  # the common case, inlined
                        self._walk(value, child, ctx, full)
                        if not value:
                            del obj[key]  # everything in it was removed
                    else:
                        self._element(obj, key, child, ctx, full)
                elif child.action is not None and type(value) is not list:
                    result = child.action(value, obj, ctx, obj, key)
                    if result is DROP:
                        del obj[key]
                        obj.pop("_" + key, None)
                    else:
                        obj[key] = result
                    counts[child.rule.index] += 1
                    ctx.labels.add(child.rule.method)
                else:
                    self._element(obj, key, child, ctx, full)
            except RecordError as exc:
                exc.parts.append(key)
                raise

    def _special(self, obj: dict[str, Any], key: str, node: Node, ctx: ResourceContext) -> None:
        """Extensions and the ``_element`` companions of primitives."""
        try:
            if key in _EXTENSION_KEYS:
                self._extensions(obj, key, node, ctx)
            elif key in obj:
                self._primitive_extension(obj, key, ctx)
        except RecordError as exc:
            exc.parts.append(key)
            raise

    def _element(
        self, obj: dict[str, Any], key: str, child: Node | None, ctx: ResourceContext, full: bool
    ) -> None:
        value = obj[key]
        if child is None:
            del obj[key]
            obj.pop("_" + key, None)
            self.stats.events["unknown elements removed"] += 1
            ctx.labels.add("redact")
        elif child.rule is not None:
            self._apply(child, obj, key, value, ctx, full)
        elif child.type == "Resource":
            self._contained(value, ctx, full)
        elif self.registry.is_primitive(child.type):
            return
        elif isinstance(value, dict):
            self._walk(value, child, ctx, full)
            if not value:
                del obj[key]  # everything in it was removed: an empty object is not FHIR
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    raise RecordError(f"expected an object ({child.type})", [i])
                try:
                    self._walk(item, child, ctx, full)
                except RecordError as exc:
                    exc.parts.append(i)
                    raise
            if not all(value):
                value[:] = [item for item in value if item]
                if not value:
                    del obj[key]
        else:
            raise RecordError(f"expected an object ({child.type})")

    def _contained(self, value: Any, ctx: ResourceContext, full: bool) -> None:
        if not isinstance(value, list):
            raise RecordError("expected an array of resources")
        for i, item in enumerate(value):
            resource_type = item.get("resourceType") if isinstance(item, dict) else None
            if not isinstance(resource_type, str) or not self.registry.is_resource(resource_type):
                raise RecordError("contained resource without a known resourceType", [i])
            try:
                self._walk(item, self.plans.root(resource_type), ctx, full)
            except RecordError as exc:
                exc.parts.append(i)
                raise

    def _extensions(self, obj: dict[str, Any], key: str, node: Node, ctx: ResourceContext) -> None:
        """Keep extensions on the allow-list (and everything nested in them); drop the rest."""
        value = obj[key]
        if not isinstance(value, list):
            raise RecordError("expected an array of extensions")
        nested = node.type == "Extension"
        ext_node = self._extension_nodes.get(node)
        if ext_node is None:
            # built outside node.children, so that the walk never takes extensions for elements
            ext_node = self.plans.build(node, "extension")
            self._extension_nodes[node] = ext_node
        kept = []
        for i, ext in enumerate(value):
            if not isinstance(ext, dict):
                raise RecordError("expected an extension object", [i])
            if nested or ext.get("url") in self.policy.keep_extensions:
                if ext_node is not None:
                    try:
                        self._walk(ext, ext_node, ctx, True)
                    except RecordError as exc:
                        exc.parts.append(i)
                        raise
                kept.append(ext)
            else:
                self.stats.events["extensions removed"] += 1
                ctx.labels.add("redact")
        if kept:
            obj[key] = kept
        else:
            del obj[key]

    def _primitive_extension(self, obj: dict[str, Any], key: str, ctx: ResourceContext) -> None:
        """``_birthDate`` and the like: only ``id`` and ``extension`` live there."""
        value = obj[key]
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict):
                self._walk(item, self._element_root, ctx, True)
            elif item is not None:
                raise RecordError("expected an object or null")
        if not any(items):
            del obj[key]  # nothing left in it

    def _apply(
        self,
        node: Node,
        obj: dict[str, Any],
        key: str,
        value: Any,
        ctx: ResourceContext,
        full: bool,
    ) -> None:
        rule = node.rule
        assert rule is not None
        if rule.method == "keep":
            if full:
                self._filter_extensions(value, ctx)
            return
        action: Action = node.action or self._compile(node, rule)
        if isinstance(value, list):
            new: list[Any] = []
            for i, item in enumerate(value):
                try:
                    result = action(item, obj, ctx, new, len(new))
                except RecordError as exc:
                    exc.parts.append(i)
                    raise
                if result is not DROP:
                    new.append(result)
            count = len(value)
            result = new if new else DROP
        else:
            result = action(value, obj, ctx, obj, key)
            count = 1
        if result is DROP:
            del obj[key]
            obj.pop("_" + key, None)
        else:
            obj[key] = result
        self._counts[rule.index] += count
        ctx.labels.add(rule.method)

    def _filter_extensions(self, value: Any, ctx: ResourceContext) -> None:
        """Drop extensions not on the allow-list anywhere inside a subtree a rule keeps."""
        if isinstance(value, list):
            for item in value:
                self._filter_extensions(item, ctx)
        elif isinstance(value, dict):
            for key in _EXTENSION_KEYS:
                if isinstance(value.get(key), list):
                    kept = [
                        e
                        for e in value[key]
                        if isinstance(e, dict) and e.get("url") in self.policy.keep_extensions
                    ]
                    self.stats.events["extensions removed"] += len(value[key]) - len(kept)
                    if kept:
                        value[key] = kept
                    else:
                        del value[key]
            for child in value.values():
                if isinstance(child, dict | list):
                    self._filter_extensions(child, ctx)

    # --- labels ------------------------------------------------------------------------------

    def _label(self, resource: dict[str, Any], methods: set[str]) -> None:
        key = frozenset(methods)
        codings = self._label_cache.get(key)
        if codings is None:
            wanted = [_PSEUDED, *sorted({_LABELS[m] for m in methods if m in _LABELS})]
            codings = [{"system": SECURITY_SYSTEM, "code": c, "display": d} for c, d in wanted]
            self._label_cache[key] = codings
        meta = resource.get("meta")
        if not isinstance(meta, dict):
            resource["meta"] = {"security": list(codings)}
            return
        security = meta.get("security")
        if not isinstance(security, list):
            meta["security"] = list(codings)
            return
        present = {(c.get("system"), c.get("code")) for c in security if isinstance(c, dict)}
        security.extend(c for c in codings if (c["system"], c["code"]) not in present)

    # --- actions -----------------------------------------------------------------------------

    def _compile(self, node: Node, rule: Rule) -> Action:
        factory = {
            "redact": self._redact,
            "substitute": self._substitute,
            "pseudonym": self._pseudonym,
            "dateShift": self._date_shift,
            "generalize": self._generalize,
            "text": self._text,
        }[rule.method]
        action = factory(node, rule)
        node.action = action
        return action

    def _redact(self, node: Node, rule: Rule) -> Action:
        return lambda value, parent, ctx, container, slot: DROP

    def _substitute(self, node: Node, rule: Rule) -> Action:
        return lambda value, parent, ctx, container, slot: copy.deepcopy(rule.value)

    def _pseudonym(self, node: Node, rule: Rule) -> Action:
        last = node.steps[-1]
        key = self.key

        def string(value: Any) -> str:
            if not isinstance(value, str):
                raise RecordError(f"expected a string ({node.type})")
            return value

        if (last.parent, last.key) in _BUNDLE_URLS:
            return self._bundle_url

        if (last.parent, last.key) == ("Reference", "reference"):

            def reference(
                value: Any, parent: Any, ctx: ResourceContext, container: Any, slot: Any
            ) -> Any:
                # references repeat (every Observation names its Patient): remember them
                cache = self._reference_cache.get(id(ctx.bundle_urls))
                if cache is None or len(cache) > 200_000:
                    cache = self._reference_cache[id(ctx.bundle_urls)] = {}
                new = cache.get(value, _MISSING)
                if new is _MISSING:
                    new = rewrite_reference(
                        string(value), key.resource_id, ctx.bundle_urls, self._resource_types
                    )
                    cache[value] = new
                if new is None:
                    self.stats.events["references removed (not literal)"] += 1
                    return DROP
                return new

            return reference
        if len(node.steps) == 1 and last.key == "id":
            return lambda value, parent, ctx, container, slot: key.resource_id(string(value))
        if (last.parent, last.key) == ("Identifier", "value"):

            def identifier(
                value: Any, parent: Any, ctx: ResourceContext, container: Any, slot: Any
            ) -> Any:
                system = parent.get("system")
                return key.identifier(system if isinstance(system, str) else "", string(value))

            return identifier
        return lambda value, parent, ctx, container, slot: key.hexdigest("value", string(value))

    def _bundle_url(
        self, value: Any, parent: Any, ctx: ResourceContext, container: Any, slot: Any
    ) -> Any:
        """A Bundle entry's fullUrl, request url or response location: rewritten as a reference
        (``Patient/123``, ``urn:uuid:…``); a bare type (``POST Patient``) stays.

        Bulk Data lists deleted resources as Bundles of ``DELETE Patient/123`` entries: their
        ids must become the same pseudonyms as everywhere else, or a deletion would name the
        patient's original id (and not match the pseudonymised resource it deletes).
        """
        if not isinstance(value, str):
            raise RecordError("expected a string (uri)")
        if value in self._resource_types:
            return value
        new = rewrite_reference(value, self.key.resource_id, ctx.bundle_urls, self._resource_types)
        if new is None:
            self.stats.events["bundle urls removed (not a literal reference)"] += 1
            return DROP
        return new

    def _date_shift(self, node: Node, rule: Rule) -> Action:
        def shift(value: Any, parent: Any, ctx: ResourceContext, container: Any, slot: Any) -> Any:
            try:
                return shift_date(value, ctx.offset)
            except (ValueError, TypeError, AttributeError):
                raise RecordError(f"not a valid FHIR {node.type}") from None

        return shift

    def _generalize(self, node: Node, rule: Rule) -> Action:
        if rule.to in ("year", "month"):
            is_birth_date = [(s.parent, s.key) for s in node.steps] == [("Patient", "birthDate")]
            return self._generalize_date(node, rule.to, is_birth_date)
        if rule.to == "postalCode":

            def postal(
                value: Any, parent: Any, ctx: ResourceContext, container: Any, slot: Any
            ) -> Any:
                if not isinstance(value, str):
                    raise RecordError("expected a string (postal code)")
                country = parent.get("country")
                return generalize_postal_code(
                    value,
                    country if isinstance(country, str) else None,
                    self.policy.restricted_zip3,
                )

            return postal

        def age_group(
            value: Any, parent: Any, ctx: ResourceContext, container: Any, slot: Any
        ) -> Any:
            if not isinstance(value, dict):
                raise RecordError(f"expected an object ({node.type})")
            years = value.get("value")
            floor = (
                top_code_age(years, self.policy.max_age) if isinstance(years, int | float) else None
            )
            if floor is None:
                return value
            return {**value, "value": floor, "comparator": ">="}

        return age_group

    def _generalize_date(self, node: Node, to: str, is_birth_date: bool) -> Action:
        max_age = self.policy.max_age

        def generalize(
            value: Any, parent: Any, ctx: ResourceContext, container: Any, slot: Any
        ) -> Any:
            try:
                result = generalize_date(value, ctx.offset, to)
                if is_birth_date:
                    on = parse_date(ctx.deceased)[0] if ctx.deceased else self.today
                    if age_in_years(value, on) > max_age:
                        result = f"{on.year - max_age - 1:04d}"
            except (ValueError, TypeError, AttributeError):
                raise RecordError(f"not a valid FHIR {node.type}") from None
            return result

        return generalize

    def _text(self, node: Node, rule: Rule) -> Action:
        kind = {"xhtml": "xhtml", "base64Binary": "base64"}.get(node.type, "plain")

        def text(value: Any, parent: Any, ctx: ResourceContext, container: Any, slot: Any) -> Any:
            if not isinstance(value, str):
                raise RecordError(f"expected a string ({node.type})")
            language = ctx.patient.language if ctx.patient else None
            content = value
            if kind == "base64":
                decoded = self._decode_attachment(value, parent)
                if decoded is None:
                    return DROP
                content = decoded
                if isinstance(parent.get("language"), str):
                    language = parent["language"].split("-")[0].lower()
            ctx.slots.append(
                TextSlot(
                    container,
                    slot,
                    content,
                    kind,
                    parent,
                    rule.name,
                    ctx.patient,
                    ctx.offset,
                    language,
                )
            )
            return value

        return text

    def _decode_attachment(self, value: str, parent: dict[str, Any]) -> str | None:
        """The text of a base64 attachment; ``None`` (removed) for non-text content."""
        content_type = parent.get("contentType")
        media, _, params = (content_type or "").partition(";")
        if not media.strip().lower().startswith("text/"):
            self.stats.events["attachments removed (not text)"] += 1
            return None
        charset = "utf-8"
        for param in params.split(";"):
            name, _, arg = param.partition("=")
            if name.strip().lower() == "charset" and arg.strip():
                charset = arg.strip().strip('"')
        try:
            return base64.b64decode(value, validate=True).decode(charset)
        except (binascii.Error, ValueError, LookupError):
            self.stats.events["attachments removed (undecodable)"] += 1
            return None
