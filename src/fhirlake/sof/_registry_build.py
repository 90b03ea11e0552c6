"""Build the FHIR R4 element registry from the models in ``fhir.resources``.

The compiler must know, for every element, whether it repeats and what type it has (and, for
a choice element such as ``Observation.value[x]``, which concrete types it allows). Guessing
from data or from names is how other runners go wrong, so the registry is generated from an
authoritative source: the pydantic models of ``fhir.resources`` (package ``R4B``, whose
clinical resources match FHIR R4 4.0.1 element for element).

Run ``python -m fhirlake.sof._registry_build`` to regenerate ``r4_registry.json``; a test checks
that the committed file is current.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import types
import typing
from pathlib import Path
from typing import Any

REGISTRY_PATH = Path(__file__).with_name("r4_registry.json")

# fhir.resources annotates primitives with a marker class per FHIR primitive (Code(), Uri()...).
_PYTHON_PRIMITIVES = {bool: "boolean", str: "string", int: "integer", float: "decimal"}


# Marker classes that are pydantic's own rather than a FHIR primitive's.
_MARKER_ALIASES = {"UuidVersion": "uuid"}


def _fhir_primitive(metadata: tuple[object, ...]) -> str:
    """The FHIR primitive named by the last marker of an ``Annotated[...]`` (Code() → code)."""
    name = type(metadata[-1]).__name__
    name = _MARKER_ALIASES.get(name, name)
    return name[0].lower() + name[1:]


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """Strip Optional[...] and List[...] off an annotation; return (inner, is_array)."""
    is_array = False
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:  # e.g. fhir_comments: Union[str, List[str]]
                return None, False
            annotation = args[0]
        elif origin is list:
            is_array = True
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation, is_array


def _type_name(inner: Any) -> str | None:
    """The FHIR type name of an unwrapped annotation, or None if it is not an element."""
    if typing.get_origin(inner) is typing.Annotated:
        return _fhir_primitive(inner.__metadata__)
    if inner in _PYTHON_PRIMITIVES:
        return _PYTHON_PRIMITIVES[inner]
    name = getattr(inner, "__name__", "")
    if name.endswith("Type") and getattr(inner, "__module__", "") == "abc":
        return str(name[: -len("Type")])
    return None


def _elements(model: Any) -> dict[str, dict[str, Any]]:
    elements: dict[str, dict[str, Any]] = {}
    for field in model.model_fields.values():
        extra = field.json_schema_extra or {}
        if not isinstance(extra, dict) or not extra.get("element_property"):
            continue
        inner, is_array = _unwrap(field.annotation)
        type_name = _type_name(inner)
        if type_name is None:
            continue
        name = field.alias
        choice = extra.get("one_of_many")
        if choice:
            entry = elements.setdefault(str(choice), {"array": False, "choice": {}})
            entry["choice"][type_name] = name
        elements[name] = {"type": type_name, "array": is_array}
    return dict(sorted(elements.items()))


def build_registry() -> dict[str, Any]:
    """Walk every model class of fhir.resources R4B and describe its elements."""
    package = importlib.import_module("fhir.resources.R4B")
    registry: dict[str, Any] = {"source": "fhir.resources R4B", "resources": [], "types": {}}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name in {"fhirtypes", "fhirtypesvalidators"}:
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            if not isinstance(value, type) or value.__module__ != module.__name__:
                continue
            if not hasattr(value, "model_fields") or not hasattr(value, "get_resource_type"):
                continue
            type_name = value.__name__
            if type_name in registry["types"]:
                continue
            registry["types"][type_name] = _elements(value)
            fields = value.model_fields
            if "resourceType" in fields or (
                "meta" in fields and "implicitRules" in fields
            ):
                registry["resources"].append(type_name)
    registry["resources"].sort()
    registry["types"] = dict(sorted(registry["types"].items()))
    return registry


def main() -> None:
    """Regenerate r4_registry.json next to this module."""
    text = json.dumps(build_registry(), indent=0, sort_keys=False, separators=(",", ":"))
    REGISTRY_PATH.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {REGISTRY_PATH}")


if __name__ == "__main__":
    main()
