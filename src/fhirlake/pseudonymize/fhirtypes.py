"""What type each element of a FHIR R4 resource has, from the project's element registry.

The policy selects elements by FHIR data type (``type: HumanName``) and the walk must know, for
every JSON key, which type the value has. That comes from the registry that
``fhirlake.sof._registry_build`` generates from the ``fhir.resources`` models
(``fhirlake/sof/r4_registry.json``), never from guessing on the data.

>>> reg = load_registry()
>>> reg.element("Observation", "valueString").base, reg.element("Observation", "valueString").type
('value', 'string')
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from fhirlake.pseudonymize.errors import PseudonymizeError

__all__ = ["ElementInfo", "TypeRegistry", "load_registry"]

# Edges left out of reachability: extensions are handled by the allow-list on every object,
# and contained resources are walked as resources of their own.
_SKIPPED_EDGES = frozenset({"extension", "modifierExtension", "contained"})


@dataclass(frozen=True, slots=True)
class ElementInfo:
    """One element of a type: its JSON key, its name without choice suffix, type, cardinality."""

    key: str
    base: str
    type: str
    array: bool


class TypeRegistry:
    """Element types of every FHIR R4 resource and data type."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._resources = frozenset(data["resources"])
        self._elements: dict[str, dict[str, ElementInfo]] = {}
        primitives: set[str] = set()
        for type_name, elements in data["types"].items():
            base_of = {
                concrete: base
                for base, entry in elements.items()
                if "choice" in entry
                for concrete in entry["choice"].values()
            }
            table: dict[str, ElementInfo] = {}
            for key, entry in elements.items():
                if "type" not in entry:
                    continue  # the abstract value[x] entry; its concrete keys carry the types
                table[key] = ElementInfo(key, base_of.get(key, key), entry["type"], entry["array"])
                if entry["type"] not in data["types"]:
                    primitives.add(entry["type"])
            self._elements[type_name] = table
        self._primitives = frozenset(primitives)

    def element(self, type_name: str, key: str) -> ElementInfo | None:
        """The element ``key`` (a JSON key such as ``valueString``) of ``type_name``, if any."""
        table = self._elements.get(type_name)
        return None if table is None else table.get(key)

    def elements(self, type_name: str) -> dict[str, ElementInfo]:
        """Every element of ``type_name`` by JSON key (empty for primitives)."""
        return self._elements.get(type_name, {})

    def type_names(self) -> list[str]:
        """Every complex type (resources, data types, backbone elements)."""
        return list(self._elements)

    def is_resource(self, name: str) -> bool:
        """Whether ``name`` is a resource type (``Patient``, also ``Resource``/``DomainResource``)."""
        return name in self._resources

    def is_type(self, name: str) -> bool:
        """Whether ``name`` is any known type, complex or primitive."""
        return name in self._elements or name in self._primitives

    def is_primitive(self, name: str) -> bool:
        """Whether ``name`` is a primitive type (``string``, ``date``, ``base64Binary``…)."""
        return name in self._primitives

    @functools.cache  # noqa: B019 - one registry per process, never freed
    def reachable(self, type_name: str) -> frozenset[str]:
        """Every type found strictly below ``type_name`` (not through extensions or contained)."""
        seen: set[str] = set()
        stack = [type_name]
        while stack:
            for name, info in self._elements.get(stack.pop(), {}).items():
                if name in _SKIPPED_EDGES or info.type in seen:
                    continue
                seen.add(info.type)
                stack.append(info.type)
        return frozenset(seen)


@functools.cache
def load_registry() -> TypeRegistry:
    """The registry shipped with ``fhirlake.sof`` (loaded once per process)."""
    # find_spec locates fhirlake.sof without importing it (its import pulls in sqlglot, duckdb)
    spec = importlib.util.find_spec("fhirlake.sof")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    try:
        if not folders:
            raise FileNotFoundError("fhirlake.sof")
        raw = (Path(folders[0]) / "r4_registry.json").read_bytes()
    except OSError as exc:
        raise PseudonymizeError(
            "the FHIR R4 element registry fhirlake/sof/r4_registry.json is missing "
            "(regenerate it with: python -m fhirlake.sof._registry_build)"
        ) from exc
    return TypeRegistry(orjson.loads(raw))
