"""The FHIR R4 element registry: what type each element has and whether it repeats.

The data comes from ``r4_registry.json``, generated from the models of ``fhir.resources`` by
``_registry_build.py``. The compiler asks it three questions: is this a resource type, what is
element ``name`` of type ``T`` (type, array, choice), and which DuckDB type stores a primitive.

>>> element("Patient", "name")
Element(name='name', type='HumanName', array=True, choice=None)
>>> element("Observation", "value").choice["Quantity"]
'valueQuantity'
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "PRIMITIVE_TYPES",
    "Element",
    "element",
    "elements",
    "is_primitive",
    "is_resource",
    "output_sql_type",
    "read_sql_type",
    "resource_types",
]

_REGISTRY_PATH = Path(__file__).with_name("r4_registry.json")

# FHIR primitive -> DuckDB type used to read it from JSON.
_READ_TYPES = {
    "boolean": "BOOLEAN",
    "integer": "BIGINT",
    "integer64": "BIGINT",
    "positiveInt": "BIGINT",
    "unsignedInt": "BIGINT",
    "decimal": "DOUBLE",
}
PRIMITIVE_TYPES = frozenset({
    "base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id",
    "instant", "integer", "integer64", "markdown", "oid", "positiveInt", "string", "time",
    "unsignedInt", "uri", "url", "uuid", "xhtml",
})
# FHIR type -> DuckDB type of an output column (SQL-on-FHIR "Column Types": instant is a
# TIMESTAMPTZ, other dates stay text since they may be partial; decimal is a DOUBLE rather
# than text because analysts compute with it).
_OUTPUT_TYPES = {
    "boolean": "BOOLEAN",
    "integer": "INTEGER",
    "positiveInt": "INTEGER",
    "unsignedInt": "INTEGER",
    "integer64": "BIGINT",
    "decimal": "DOUBLE",
    "instant": "TIMESTAMPTZ",
}


@dataclass(frozen=True, slots=True)
class Element:
    """One element of a FHIR type. A choice element (``value[x]``) has ``choice`` set to
    {type: concrete element name} and ``type`` None."""

    name: str
    type: str | None
    array: bool
    choice: dict[str, str] | None = None


@cache
def _registry() -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(_REGISTRY_PATH.read_bytes())
    return data


@cache
def _resources() -> frozenset[str]:
    return frozenset(_registry()["resources"])


def is_resource(type_name: str) -> bool:
    """True if ``type_name`` is a FHIR R4 resource type."""
    return type_name in _resources()


def resource_types() -> list[str]:
    """Every FHIR R4 resource type, sorted."""
    return sorted(_resources())


def is_primitive(type_name: str | None) -> bool:
    """True if ``type_name`` is a FHIR primitive type (string, date, boolean, ...)."""
    return type_name in PRIMITIVE_TYPES


def is_known_type(type_name: str) -> bool:
    """True if the registry describes ``type_name`` (a resource, data type or backbone)."""
    return type_name in _registry()["types"]


@cache
def element(type_name: str, name: str) -> Element | None:
    """Element ``name`` of FHIR type ``type_name``, or None if the type has no such element."""
    entry = _registry()["types"].get(type_name, {}).get(name)
    if entry is None:
        return None
    return Element(name=name, type=entry.get("type"), array=entry["array"], choice=entry.get("choice"))


def elements(type_name: str) -> tuple[Element, ...]:
    """Every element of ``type_name`` (choice elements expanded to their concrete names)."""
    out = []
    for name in _registry()["types"].get(type_name, {}):
        found = element(type_name, name)
        if found is not None and found.choice is None:
            out.append(found)
    return tuple(out)


def read_sql_type(fhir_type: str) -> str:
    """The DuckDB type that reads a FHIR primitive from JSON (text unless numeric/boolean)."""
    return _READ_TYPES.get(fhir_type, "VARCHAR")


def output_sql_type(fhir_type: str | None) -> str | None:
    """The DuckDB type of an output column of FHIR type ``fhir_type`` (None: keep as computed)."""
    if fhir_type is None:
        return None
    if fhir_type in PRIMITIVE_TYPES:
        return _OUTPUT_TYPES.get(fhir_type, "VARCHAR")
    return None
