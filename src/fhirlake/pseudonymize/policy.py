"""The pseudonymisation policy: a YAML file a privacy officer can read, parsed once into a model.

The default policy is ``anonymization/policy.yaml``; its README explains every setting.
Rules are tried in file order and the **first rule that selects an element decides** what
happens to it and to everything inside it (the Microsoft FHIR anonymizer's semantics).
An element no rule selects is kept. A rule selects elements

* by path: ``Patient.birthDate`` (from a resource), ``Resource.id`` (any resource),
  ``Address.postalCode`` (wherever an Address is), ``Element.valueString`` (any element
  named so); a choice element can be named ``value`` (any type) or ``valueString``;
* or by FHIR data type: ``type: HumanName``, ``type: dateTime``.

Methods: ``keep``, ``redact``, ``pseudonym`` (keyed HMAC-SHA256), ``dateShift`` (the
patient's offset), ``generalize`` (``to: year | month | postalCode | ageGroup``),
``substitute`` (``value: …``) and ``text`` (Presidio). Every error names the file, the JSON
pointer of the entry and the reason.

>>> policy = load_policy(DEFAULT_POLICY_PATH)
>>> policy.rules[0].method
'pseudonym'
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from fhirlake.pseudonymize.errors import PolicyError
from fhirlake.pseudonymize.fhirtypes import TypeRegistry, load_registry

__all__ = [
    "DEFAULT_POLICY_PATH",
    "METHODS",
    "Policy",
    "Rule",
    "Selector",
    "TextSettings",
    "load_policy",
    "parse_policy",
]

DEFAULT_POLICY_PATH = Path(__file__).resolve().parents[3] / "anonymization" / "policy.yaml"

METHODS = ("keep", "redact", "pseudonym", "dateShift", "generalize", "substitute", "text")
TEXT_OPERATORS = ("pseudonym", "tag", "dateShift", "keep")
DATE_TYPES = frozenset({"date", "dateTime", "instant"})
TEXT_TYPES = frozenset({"string", "markdown", "xhtml", "base64Binary"})
# pseudonyms are strings, so they can replace only string-like primitives
PSEUDONYM_TYPES = frozenset({"id", "string", "uri", "url", "canonical", "code", "oid", "uuid"})
GENERALIZE_TARGETS: Mapping[str, frozenset[str]] = {
    "year": DATE_TYPES,
    "month": DATE_TYPES,
    "postalCode": frozenset({"string"}),
    "ageGroup": frozenset({"Age", "Quantity"}),
}
_ANY_RESOURCE = ("Resource", "DomainResource")


@dataclass(frozen=True, slots=True)
class Selector:
    """What a rule selects: a path (root + element names) or a data type."""

    root: str = ""
    elements: tuple[str, ...] = ()
    type: str = ""

    def __str__(self) -> str:
        return f"type {self.type}" if self.type else ".".join((self.root, *self.elements))


@dataclass(frozen=True, slots=True)
class Rule:
    """One policy rule; ``name`` is what the privacy report counts under."""

    index: int
    name: str
    selector: Selector
    method: str
    to: str = ""
    value: Any = None


@dataclass(frozen=True, slots=True)
class TextSettings:
    """How free text goes through Presidio."""

    analyzer: Path
    default_language: str = "en"
    score_threshold: float = 0.35
    default_operator: str = "pseudonym"
    entities: Mapping[str, str] = field(default_factory=dict)
    cache_size: int = 100_000
    batch_size: int = 32
    clinical_terms: Path | None = None  # headings, drugs, abbreviations never replaced

    def operator(self, entity: str) -> str:
        """What happens to an entity found in text: pseudonym, tag, dateShift or keep."""
        return self.entities.get(entity, self.default_operator)


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed, validated policy."""

    path: Path
    sha256: str
    rules: tuple[Rule, ...]
    text: TextSettings
    max_shift_days: int = 180
    max_age: int = 89
    restricted_zip3: frozenset[str] = frozenset()
    keep_extensions: frozenset[str] = frozenset()

    @property
    def uses_text(self) -> bool:
        """Whether any rule sends text to Presidio (the models are loaded only then)."""
        return any(rule.method == "text" for rule in self.rules)

    def without_text(self) -> Policy:
        """The same policy with every ``text`` rule turned into ``redact`` (structured-only runs)."""
        rules = tuple(
            replace(rule, method="redact") if rule.method == "text" else rule for rule in self.rules
        )
        return replace(self, rules=rules)


class _Parser:
    """Validates the parsed YAML, raising PolicyError with the file and a JSON pointer."""

    def __init__(self, path: Path, registry: TypeRegistry) -> None:
        self.path = path
        self.registry = registry
        self._all_names: frozenset[str] | None = None

    def fail(self, pointer: str, reason: str) -> PolicyError:
        return PolicyError(str(self.path), pointer, reason)

    def mapping(self, value: Any, pointer: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(pointer, f"expected a mapping, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    f"{pointer}/{key}", f"unknown setting (expected one of {', '.join(allowed)})"
                )
        return value

    def integer(self, value: Any, pointer: str, low: int, high: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(pointer, f"expected an integer from {low} to {high}, got {value!r}")
        return value

    def strings(self, value: Any, pointer: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(pointer, "expected a list of non-empty strings")
        return value

    # --- selectors -----------------------------------------------------------------------

    def element_names(self) -> frozenset[str]:
        if self._all_names is None:
            self._all_names = frozenset(
                name
                for type_name in self.registry.type_names()
                for info in self.registry.elements(type_name).values()
                for name in (info.key, info.base)
            )
        return self._all_names

    def resolve_path(self, selector: Selector, pointer: str) -> set[str]:
        """The possible types of what the path selects; raises if an element does not exist."""
        root = selector.root
        if root == "Element":
            first = selector.elements[0]
            if first not in self.element_names():
                raise self.fail(pointer, f"no FHIR type has an element '{first}'")
            return {"*"}  # any type: checked against methods when the data is walked
        if root in _ANY_RESOURCE:
            current = {"DomainResource"}
        elif self.registry.is_type(root) and not self.registry.is_primitive(root):
            current = {root}
        else:
            raise self.fail(
                pointer, f"'{root}' is not a FHIR resource or data type (nor Resource, Element)"
            )
        walked = root
        for name in selector.elements:
            following: set[str] = set()
            for type_name in current:
                for info in self.registry.elements(type_name).values():
                    if name in (info.key, info.base):
                        following.add(info.type)
            if not following:
                raise self.fail(pointer, f"'{walked}' has no element '{name}'")
            current = following
            walked += "." + name
        return current

    def selector(self, raw: dict[str, Any], pointer: str) -> tuple[Selector, set[str]]:
        if ("path" in raw) == ("type" in raw):
            raise self.fail(pointer, "a rule needs exactly one of 'path' or 'type'")
        if "type" in raw:
            type_name = raw["type"]
            if not isinstance(type_name, str) or not self.registry.is_type(type_name):
                raise self.fail(f"{pointer}/type", f"'{type_name}' is not a FHIR data type")
            return Selector(type=type_name), {type_name}
        path = raw["path"]
        parts = path.split(".") if isinstance(path, str) else []
        if len(parts) < 2 or not all(parts):
            raise self.fail(f"{pointer}/path", f"expected Root.element[.element…], got {path!r}")
        selector = Selector(root=parts[0], elements=tuple(p.removesuffix("[x]") for p in parts[1:]))
        return selector, self.resolve_path(selector, f"{pointer}/path")

    # --- rules ---------------------------------------------------------------------------

    def rule(self, index: int, raw: Any) -> Rule:
        pointer = f"/rules/{index}"
        raw = self.mapping(raw, pointer, ("name", "path", "type", "method", "to", "value"))
        name = raw.get("name")
        if name is not None and not isinstance(name, str):
            raise self.fail(f"{pointer}/name", "expected a string")
        if name:
            pointer = f"{pointer} ({name})"
        selector, types = self.selector(raw, pointer)
        method = raw.get("method")
        if method not in METHODS:
            raise self.fail(
                f"{pointer}/method",
                f"unknown method {method!r} (expected one of {', '.join(METHODS)})",
            )
        to = raw.get("to", "")
        if method == "generalize":
            if to not in GENERALIZE_TARGETS:
                raise self.fail(
                    f"{pointer}/to", f"generalize needs 'to' among {', '.join(GENERALIZE_TARGETS)}"
                )
            self.check_types(types, GENERALIZE_TARGETS[to], pointer, f"generalize to {to}")
        elif "to" in raw:
            raise self.fail(f"{pointer}/to", f"'to' is only for generalize, not {method}")
        if method == "substitute" and "value" not in raw:
            raise self.fail(pointer, "substitute needs a 'value'")
        if method != "substitute" and "value" in raw:
            raise self.fail(f"{pointer}/value", f"'value' is only for substitute, not {method}")
        if method == "dateShift":
            self.check_types(types, DATE_TYPES, pointer, method)
        elif method == "text":
            self.check_types(types, TEXT_TYPES, pointer, method)
        elif method == "pseudonym":
            self.check_types(types, PSEUDONYM_TYPES, pointer, method)
        return Rule(index, name or f"{selector} → {method}", selector, method, to, raw.get("value"))

    def check_types(
        self, types: set[str], allowed: frozenset[str], pointer: str, what: str
    ) -> None:
        wrong = sorted(t for t in types if t != "*" and t not in allowed)
        if wrong:
            raise self.fail(
                pointer,
                f"{what} applies to {', '.join(sorted(allowed))}, not to {', '.join(wrong)}",
            )

    # --- sections ------------------------------------------------------------------------

    def text(self, raw: Any) -> TextSettings:
        raw = self.mapping(
            raw,
            "/text",
            (
                "analyzer",
                "defaultLanguage",
                "scoreThreshold",
                "replace",
                "entities",
                "cacheSize",
                "batchSize",
                "clinicalTerms",
            ),
        )
        analyzer = raw.get("analyzer")
        if not isinstance(analyzer, str) or not analyzer:
            raise self.fail("/text/analyzer", "expected the path of the Presidio analyzer YAML")
        analyzer_path = (self.path.parent / analyzer).resolve()
        if not analyzer_path.is_file():
            raise self.fail("/text/analyzer", f"analyzer file {analyzer_path} not found")
        threshold = raw.get("scoreThreshold", 0.35)
        if (
            not isinstance(threshold, int | float)
            or isinstance(threshold, bool)
            or not 0 <= threshold <= 1
        ):
            raise self.fail(
                "/text/scoreThreshold", f"expected a number from 0 to 1, got {threshold!r}"
            )
        default_operator = raw.get("replace", "pseudonym")
        if default_operator not in ("pseudonym", "tag"):
            raise self.fail("/text/replace", "expected 'pseudonym' or 'tag'")
        entities = raw.get("entities", {}) or {}
        if not isinstance(entities, dict):
            raise self.fail("/text/entities", "expected a mapping of entity type to operator")
        for entity, operator in entities.items():
            if operator not in TEXT_OPERATORS:
                raise self.fail(
                    f"/text/entities/{entity}",
                    f"unknown operator {operator!r} (expected one of {', '.join(TEXT_OPERATORS)})",
                )
        clinical: Path | None = None
        if "clinicalTerms" in raw:
            name = raw["clinicalTerms"]
            if not isinstance(name, str) or not name:
                raise self.fail("/text/clinicalTerms", "expected the path of a YAML file")
            clinical = (self.path.parent / name).resolve()
            if not clinical.is_file():
                raise self.fail("/text/clinicalTerms", f"clinical terms file {clinical} not found")
        language = raw.get("defaultLanguage", "en")
        if not isinstance(language, str) or not language:
            raise self.fail("/text/defaultLanguage", "expected a language code such as en or fr")
        return TextSettings(
            analyzer=analyzer_path,
            default_language=language,
            score_threshold=float(threshold),
            default_operator=default_operator,
            entities=dict(entities),
            cache_size=self.integer(
                raw.get("cacheSize", 100_000), "/text/cacheSize", 0, 10_000_000
            ),
            batch_size=self.integer(raw.get("batchSize", 32), "/text/batchSize", 1, 4096),
            clinical_terms=clinical,
        )

    def policy(self, raw: Any, sha256: str) -> Policy:
        raw = self.mapping(
            raw,
            "",
            (
                "version",
                "description",
                "dateShift",
                "ages",
                "postalCodes",
                "extensions",
                "text",
                "rules",
            ),
        )
        if raw.get("version") != 1:
            raise self.fail("/version", f"expected version: 1, got {raw.get('version')!r}")
        date_shift = self.mapping(raw.get("dateShift", {}), "/dateShift", ("maxDays",))
        ages = self.mapping(raw.get("ages", {}), "/ages", ("maxAge",))
        postal = self.mapping(raw.get("postalCodes", {}), "/postalCodes", ("restrictedZip3",))
        extensions = self.mapping(raw.get("extensions", {}), "/extensions", ("keep",))
        if "text" not in raw:
            raise self.fail("/text", "missing the text section (the Presidio analyzer settings)")
        rules_raw = raw.get("rules")
        if not isinstance(rules_raw, list) or not rules_raw:
            raise self.fail("/rules", "expected a non-empty list of rules")
        rules = tuple(self.rule(i, r) for i, r in enumerate(rules_raw))
        names = [r.name for r in rules]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise self.fail(f"/rules/{i}/name", f"rule name {name!r} is used twice")
        zip3 = self.strings(postal.get("restrictedZip3", []), "/postalCodes/restrictedZip3")
        return Policy(
            path=self.path,
            sha256=sha256,
            rules=rules,
            text=self.text(raw["text"]),
            max_shift_days=self.integer(
                date_shift.get("maxDays", 180), "/dateShift/maxDays", 1, 3650
            ),
            max_age=self.integer(ages.get("maxAge", 89), "/ages/maxAge", 1, 150),
            restricted_zip3=frozenset(zip3),
            keep_extensions=frozenset(self.strings(extensions.get("keep", []), "/extensions/keep")),
        )


def parse_policy(text: str, path: Path, registry: TypeRegistry | None = None) -> Policy:
    """Parse and validate a policy given as YAML text (``path`` names it in errors)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise PolicyError(str(path), "", f"not valid YAML: {problem}{where}") from None
    sha256 = hashlib.sha256(text.encode()).hexdigest()
    return _Parser(path, registry or load_registry()).policy(raw, sha256)


def load_policy(path: Path | str = DEFAULT_POLICY_PATH) -> Policy:
    """Read, parse and validate the policy file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(
            str(path), "", f"cannot read the policy ({exc.strerror or type(exc).__name__})"
        ) from None
    return parse_policy(text, path)
