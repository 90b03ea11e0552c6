"""The ViewDefinition model: parsed once from JSON into immutable, validated objects.

Parsing checks everything that can be checked without data, and every error names the JSON
pointer of the culprit (``/select/0/column/2/name: 'a b' is not a valid SQL name``):

* ``resource`` is a known FHIR R4 resource type; ``select`` is a non-empty list;
* view, constant and column names follow the ``sql-name`` rule; column names are unique;
* each select has at most one of forEach / forEachOrNull / repeat;
* unionAll branches produce the same columns in the same order;
* constants have exactly one ``value[x]`` of a FHIR primitive type;
* every FHIRPath expression parses and calls only known functions.

>>> view = parse_view({"resource": "Patient", "select": [{"column": [
...     {"name": "id", "path": "getResourceKey()"}]}]})
>>> view.column_names
('id',)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from fhirlake.errors import ConfigurationError
from fhirlake.sof import registry
from fhirlake.sof.errors import FhirPathSyntaxError, ViewDefinitionError
from fhirlake.sof.fhirpath import Node, parse
from fhirlake.sof.roles import BOUNDS_TAG, ROLE_TAG, ColumnRole, parse_role

__all__ = [
    "Column",
    "Constant",
    "PathExpression",
    "Select",
    "Tag",
    "ViewDefinition",
    "Where",
    "load_view",
    "parse_view",
]

_SQL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

# value[x] suffix of a constant -> FHIR primitive type
_CONSTANT_TYPES = {
    "Base64Binary": "base64Binary", "Boolean": "boolean", "Canonical": "canonical",
    "Code": "code", "Date": "date", "DateTime": "dateTime", "Decimal": "decimal", "Id": "id",
    "Instant": "instant", "Integer": "integer", "Integer64": "integer64", "Oid": "oid",
    "String": "string", "PositiveInt": "positiveInt", "Time": "time",
    "UnsignedInt": "unsignedInt", "Uri": "uri", "Url": "url", "Uuid": "uuid",
}


@dataclass(frozen=True, slots=True)
class Tag:
    """A column tag such as ``{"name": "ansi/type", "value": "DATE"}``."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Column:
    """One output column: its name, FHIRPath (parsed), declared type and cardinality."""

    name: str
    path: str
    expression: Node
    pointer: str
    type: str | None = None
    collection: bool = False
    description: str | None = None
    tags: tuple[Tag, ...] = ()

    def tag(self, name: str) -> str | None:
        """The value of the first tag called ``name``, if any."""
        return next((t.value for t in self.tags if t.name == name), None)

    @property
    def role(self) -> ColumnRole | None:
        """The column's declared role (:mod:`fhirlake.sof.roles`), None when it declares none."""
        return parse_role(self.tag(ROLE_TAG), self.tag(BOUNDS_TAG), pointer=self.pointer)


@dataclass(frozen=True, slots=True)
class PathExpression:
    """A FHIRPath expression of a view: its text and its parsed syntax tree."""

    text: str
    expression: Node
    pointer: str


@dataclass(frozen=True, slots=True)
class Select:
    """A selection: its columns, nested selects, unionAll branches and iteration.

    ``for_each``, ``for_each_or_null`` and ``repeat`` are mutually exclusive.
    """

    pointer: str
    columns: tuple[Column, ...] = ()
    selects: tuple[Select, ...] = ()
    union_all: tuple[Select, ...] = ()
    for_each: PathExpression | None = None
    for_each_or_null: PathExpression | None = None
    repeat: tuple[PathExpression, ...] = ()

    @property
    def all_columns(self) -> tuple[Column, ...]:
        """The columns this select produces, in the spec's order: own, nested, unionAll."""
        out = list(self.columns)
        for nested in self.selects:
            out.extend(nested.all_columns)
        if self.union_all:
            out.extend(self.union_all[0].all_columns)
        return tuple(out)



@dataclass(frozen=True, slots=True)
class Where:
    """A filter: every ``where`` path must be true for a resource to produce rows."""

    path: str
    expression: Node
    pointer: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Constant:
    """A view constant, used in paths as ``%name``; ``type`` is its FHIR primitive type."""

    name: str
    value: object
    type: str


@dataclass(frozen=True, slots=True)
class ViewDefinition:
    """A parsed, validated SQL-on-FHIR v2 ViewDefinition. Never mutated after parsing."""

    resource: str
    select: Select
    name: str | None = None
    url: str | None = None
    title: str | None = None
    description: str | None = None
    status: str | None = None
    fhir_version: tuple[str, ...] = ()
    constants: tuple[Constant, ...] = ()
    where: tuple[Where, ...] = ()
    source: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def columns(self) -> tuple[Column, ...]:
        """Every output column, in output order."""
        return self.select.all_columns

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def constant(self, name: str) -> Constant | None:
        return next((c for c in self.constants if c.name == name), None)


def load_view(path: str | Path) -> ViewDefinition:
    """Read and parse a ViewDefinition JSON file; errors are prefixed with the file name."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ViewDefinitionError(f"{path}", f"not valid JSON: {exc}") from exc
    except OSError as exc:
        raise ViewDefinitionError(f"{path}", f"cannot read: {exc.strerror}") from exc
    try:
        return parse_view(data)
    except ViewDefinitionError as exc:
        raise ViewDefinitionError(f"{path}#{exc.pointer}", exc.reason) from exc


def parse_view(data: Any) -> ViewDefinition:
    """Parse and validate a ViewDefinition given as a JSON object (a dict)."""
    return _ViewParser().parse(data)


class _ViewParser:
    """Turns a ViewDefinition dict into the model, checking it as it goes."""

    def parse(self, data: Any) -> ViewDefinition:
        if not isinstance(data, Mapping):
            raise ViewDefinitionError("/", "a ViewDefinition must be a JSON object")
        resource = data.get("resource")
        if not isinstance(resource, str) or not resource:
            raise ViewDefinitionError("/resource", "missing: the FHIR resource type the view runs over")
        if not registry.is_resource(resource):
            raise ViewDefinitionError("/resource", f"{resource!r} is not a FHIR R4 resource type")
        name = self._optional_str(data, "name", "/name")
        if name is not None and not _SQL_NAME.match(name):
            raise ViewDefinitionError("/name", f"{name!r} is not a valid SQL name")
        selects = data.get("select")
        if not isinstance(selects, list) or not selects:
            raise ViewDefinitionError("/select", "a view needs at least one select")
        root = Select(
            pointer="",
            selects=tuple(self._select(s, f"/select/{i}") for i, s in enumerate(selects)),
        )
        self._check_unique_columns(root)
        view = ViewDefinition(
            resource=resource,
            select=root,
            name=name,
            url=self._optional_str(data, "url", "/url"),
            title=self._optional_str(data, "title", "/title"),
            description=self._optional_str(data, "description", "/description"),
            status=self._optional_str(data, "status", "/status"),
            fhir_version=tuple(self._str_list(data.get("fhirVersion", []), "/fhirVersion")),
            constants=tuple(
                self._constant(c, f"/constant/{i}")
                for i, c in enumerate(self._list(data.get("constant", []), "/constant"))
            ),
            where=tuple(
                self._where(w, f"/where/{i}")
                for i, w in enumerate(self._list(data.get("where", []), "/where"))
            ),
            source=data,
        )
        self._check_unique_constants(view)
        return view

    # -- pieces ------------------------------------------------------------------------------
    def _select(self, data: Any, pointer: str) -> Select:
        if not isinstance(data, Mapping):
            raise ViewDefinitionError(pointer, "a select must be a JSON object")
        iterations = [k for k in ("forEach", "forEachOrNull", "repeat") if k in data]
        if len(iterations) > 1:
            raise ViewDefinitionError(
                pointer, f"a select may have only one of forEach, forEachOrNull, repeat (has {', '.join(iterations)})"
            )
        repeat: tuple[PathExpression, ...] = ()
        if "repeat" in data:
            paths = data["repeat"]
            if not isinstance(paths, list) or not paths:
                raise ViewDefinitionError(f"{pointer}/repeat", "repeat must be a non-empty list of FHIRPath expressions")
            repeat = tuple(self._iteration(p, f"{pointer}/repeat/{i}") for i, p in enumerate(paths))
        select = Select(
            pointer=pointer,
            columns=tuple(
                self._column(c, f"{pointer}/column/{i}")
                for i, c in enumerate(self._list(data.get("column", []), f"{pointer}/column"))
            ),
            selects=tuple(
                self._select(s, f"{pointer}/select/{i}")
                for i, s in enumerate(self._list(data.get("select", []), f"{pointer}/select"))
            ),
            union_all=tuple(
                self._select(s, f"{pointer}/unionAll/{i}")
                for i, s in enumerate(self._list(data.get("unionAll", []), f"{pointer}/unionAll"))
            ),
            for_each=self._iteration(data["forEach"], f"{pointer}/forEach") if "forEach" in data else None,
            for_each_or_null=(
                self._iteration(data["forEachOrNull"], f"{pointer}/forEachOrNull")
                if "forEachOrNull" in data
                else None
            ),
            repeat=repeat,
        )
        if not (select.columns or select.selects or select.union_all):
            raise ViewDefinitionError(pointer, "a select needs at least one column, select or unionAll")
        self._check_union(select)
        return select

    def _column(self, data: Any, pointer: str) -> Column:
        if not isinstance(data, Mapping):
            raise ViewDefinitionError(pointer, "a column must be a JSON object")
        name = data.get("name")
        if not isinstance(name, str):
            raise ViewDefinitionError(f"{pointer}/name", "missing: every column needs a name")
        if not _SQL_NAME.match(name):
            raise ViewDefinitionError(f"{pointer}/name", f"{name!r} is not a valid SQL name")
        if "path" not in data:
            raise ViewDefinitionError(f"{pointer}/path", "missing: every column needs a path")
        collection = data.get("collection", False)
        if not isinstance(collection, bool):
            raise ViewDefinitionError(f"{pointer}/collection", "collection must be true or false")
        tags_data = data.get("tag", data.get("tags", []))
        tags = []
        for i, tag in enumerate(self._list(tags_data, f"{pointer}/tag")):
            if not isinstance(tag, Mapping) or not isinstance(tag.get("name"), str):
                raise ViewDefinitionError(f"{pointer}/tag/{i}", "a tag needs a name and a value")
            tags.append(Tag(tag["name"], str(tag.get("value", ""))))
        self._check_role(tags, pointer)
        return Column(
            name=name,
            path=data["path"],
            expression=self._path(data["path"], f"{pointer}/path"),
            pointer=pointer,
            type=self._optional_str(data, "type", f"{pointer}/type"),
            collection=collection,
            description=self._optional_str(data, "description", f"{pointer}/description"),
            tags=tuple(tags),
        )

    @staticmethod
    def _check_role(tags: list[Tag], pointer: str) -> None:
        """A ``fhirlake/role`` tag must name a known role (and a measure its bounds)."""
        values = {t.name: t.value for t in tags}
        try:
            parse_role(values.get(ROLE_TAG), values.get(BOUNDS_TAG), pointer=pointer)
        except ConfigurationError as exc:
            raise ViewDefinitionError(f"{pointer}/tag", str(exc).removeprefix(f"{pointer}: ")) from exc

    def _where(self, data: Any, pointer: str) -> Where:
        if not isinstance(data, Mapping) or "path" not in data:
            raise ViewDefinitionError(pointer, "a where needs a path")
        return Where(
            path=data["path"],
            expression=self._path(data["path"], f"{pointer}/path"),
            pointer=f"{pointer}/path",
            description=self._optional_str(data, "description", f"{pointer}/description"),
        )

    def _constant(self, data: Any, pointer: str) -> Constant:
        if not isinstance(data, Mapping):
            raise ViewDefinitionError(pointer, "a constant must be a JSON object")
        name = data.get("name")
        if not isinstance(name, str) or not _SQL_NAME.match(name):
            raise ViewDefinitionError(f"{pointer}/name", f"{name!r} is not a valid SQL name")
        values = [k for k in data if k.startswith("value")]
        if len(values) != 1:
            found = "none" if not values else ", ".join(values)
            raise ViewDefinitionError(pointer, f"a constant needs exactly one value[x] (found {found})")
        key = values[0]
        fhir_type = _CONSTANT_TYPES.get(key[len("value") :])
        if fhir_type is None:
            raise ViewDefinitionError(f"{pointer}/{key}", f"{key} is not a primitive value[x] a constant may have")
        value = data[key]
        self._check_constant_value(value, fhir_type, f"{pointer}/{key}")
        if fhir_type == "decimal" and not isinstance(value, bool):
            value = Decimal(str(value))
        return Constant(name=name, value=value, type=fhir_type)

    @staticmethod
    def _check_constant_value(value: Any, fhir_type: str, pointer: str) -> None:
        if fhir_type == "boolean":
            ok = isinstance(value, bool)
        elif fhir_type in ("integer", "integer64", "positiveInt", "unsignedInt"):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif fhir_type == "decimal":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ViewDefinitionError(pointer, f"{value!r} is not a valid {fhir_type}")

    def _iteration(self, value: Any, pointer: str) -> PathExpression:
        return PathExpression(text=value, expression=self._path(value, pointer), pointer=pointer)

    @staticmethod
    def _path(value: Any, pointer: str) -> Node:
        if not isinstance(value, str):
            raise ViewDefinitionError(pointer, f"a FHIRPath expression must be a string, not {type(value).__name__}")
        try:
            return parse(value)
        except FhirPathSyntaxError as exc:
            raise exc.at(pointer) from None

    # -- checks ------------------------------------------------------------------------------
    @staticmethod
    def _check_union(select: Select) -> None:
        if not select.union_all:
            return
        first = [c.name for c in select.union_all[0].all_columns]
        for branch in select.union_all[1:]:
            names = [c.name for c in branch.all_columns]
            if names != first:
                problem = "in a different order" if sorted(names) == sorted(first) else "different columns"
                raise ViewDefinitionError(
                    branch.pointer,
                    f"unionAll branches must have the same columns in the same order: {names} has {problem} than {first}",
                )

    @staticmethod
    def _check_unique_columns(root: Select) -> None:
        seen: dict[str, str] = {}
        for column in root.all_columns:
            if column.name in seen:
                raise ViewDefinitionError(
                    f"{column.pointer}/name",
                    f"column {column.name!r} is already defined at {seen[column.name]}",
                )
            seen[column.name] = column.pointer

    @staticmethod
    def _check_unique_constants(view: ViewDefinition) -> None:
        names = [c.name for c in view.constants]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ViewDefinitionError(f"/constant/{i}/name", f"constant {name!r} is defined twice")

    # -- small readers -------------------------------------------------------------------
    @staticmethod
    def _optional_str(data: Mapping[str, Any], key: str, pointer: str) -> str | None:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise ViewDefinitionError(pointer, f"{key} must be a string")
        return value

    @staticmethod
    def _list(value: Any, pointer: str) -> list[Any]:
        if not isinstance(value, list):
            raise ViewDefinitionError(pointer, "must be a list")
        return value

    @staticmethod
    def _str_list(value: Any, pointer: str) -> Sequence[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ViewDefinitionError(pointer, "must be a list of strings")
        return value
