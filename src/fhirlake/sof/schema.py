"""The read schema: which parts of a resource a view touches, as DuckDB column types (and as a
nested structure, from which Spark's ``StructType`` is made: :mod:`fhirlake.sof.engines.spark`).

DuckDB parses JSON fastest when told exactly which fields to read and their types. While the
compiler walks a view's paths, every element it navigates is recorded here; the tree is then
rendered as the ``columns`` argument of ``read_json``. Elements the view never mentions are
never parsed.

>>> root = SchemaNode("Patient")
>>> name = root.child("name")
>>> _ = name.child("family")
>>> root.read_columns()["name"]
'STRUCT("family" VARCHAR)[]'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fhirlake.sof import registry

__all__ = ["SchemaNode"]

# How deep a column that returns a whole complex element (say a CodeableConcept) is expanded.
_WHOLE_DEPTH = 4
_SKIPPED_IN_WHOLE = frozenset({"extension", "modifierExtension", "contained"})


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(eq=False)
class SchemaNode:
    """One element of the read schema. ``fhir_type`` is its FHIR type, ``array`` whether it
    repeats; ``children`` are the sub-elements the view uses."""

    fhir_type: str | None
    array: bool = False
    children: dict[str, SchemaNode] = field(default_factory=dict)
    whole: bool = False  # a column returns the entire element
    as_text: bool = False  # read a number as its literal text (to keep a decimal's precision)
    as_json: bool = False  # read as raw JSON (existence checks, depth guards)

    def child(self, name: str) -> SchemaNode:
        """The node of sub-element ``name``, added from the registry on first use."""
        node = self.children.get(name)
        if node is None:
            found = registry.element(self.fhir_type or "", name)
            fhir_type = found.type if found is not None else None
            node = SchemaNode(fhir_type, array=found.array if found is not None else False)
            self.children[name] = node
        return node

    def adopt(self, name: str, node: SchemaNode) -> None:
        """Make ``node`` the node of sub-element ``name`` (used to share recursive levels)."""
        self.children[name] = node

    def merge(self, other: SchemaNode) -> None:
        """Add everything ``other`` reads to this node (same element, read by another path)."""
        self.whole |= other.whole
        self.as_text |= other.as_text
        self.as_json |= other.as_json
        for name, node in other.children.items():
            if name in self.children:
                if self.children[name] is not node:
                    self.children[name].merge(node)
            else:
                self.children[name] = node

    # -- rendering -----------------------------------------------------------------------
    def structure(self) -> Structure:
        """This element's type as a JSON structure (``json_transform``'s form): a type name,
        a one-item list for a repeating element, or a dict of fields."""
        item = self.item_structure()
        return [item] if self.array else item

    def item_structure(self) -> Structure:
        """The structure of one item of this element."""
        if self.as_json:
            return "JSON"
        if registry.is_primitive(self.fhir_type):
            return "VARCHAR" if self.as_text else registry.read_sql_type(self.fhir_type or "")
        if self.whole:
            return _whole_structure(self.fhir_type or "", _WHOLE_DEPTH, self.children)
        if not self.children:
            return "JSON"  # only its presence matters
        return {name: child.structure() for name, child in self.children.items()}

    def sql_type(self) -> str:
        """The DuckDB type of this element (``T[]`` when it repeats)."""
        return render_sql_type(self.structure())

    def read_columns(self) -> dict[str, str]:
        """The top-level columns of a resource with their DuckDB types (for ``read_json``)."""
        return {name: node.sql_type() for name, node in self.children.items()}

    def read_structure(self) -> dict[str, Structure]:
        """The top-level columns as a JSON structure (for ``json_transform``)."""
        return {name: node.structure() for name, node in self.children.items()}


Structure = str | list["Structure"] | dict[str, "Structure"]


def render_sql_type(structure: Structure) -> str:
    """A JSON structure as a DuckDB type: ``[{"a": "VARCHAR"}]`` → ``STRUCT("a" VARCHAR)[]``."""
    if isinstance(structure, str):
        return structure
    if isinstance(structure, list):
        return render_sql_type(structure[0]) + "[]"
    fields = ", ".join(f"{_quote(n)} {render_sql_type(v)}" for n, v in structure.items())
    return f"STRUCT({fields})"


def _whole_structure(fhir_type: str, depth: int, used: dict[str, SchemaNode]) -> Structure:
    """Every element of ``fhir_type`` (to ``depth`` levels of nesting), keeping any element
    the view also reads by path so both uses share one type."""
    fields: dict[str, Structure] = {}
    for element in registry.elements(fhir_type):
        if element.name in used:
            fields[element.name] = used[element.name].structure()
            continue
        if element.name in _SKIPPED_IN_WHOLE or element.type is None:
            continue
        item: Structure
        if registry.is_primitive(element.type):
            item = registry.read_sql_type(element.type)
        elif depth > 1 and registry.is_known_type(element.type):
            item = _whole_structure(element.type, depth - 1, {})
        else:
            item = "JSON"
        fields[element.name] = [item] if element.array else item
    return fields or "JSON"
