"""What a compiled FHIRPath expression is: SQL plus what the compiler knows about it."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlglot import exp

from fhirlake.sof.registry import Element
from fhirlake.sof.schema import SchemaNode


@dataclass(frozen=True, slots=True)
class Value:
    """A compiled FHIRPath expression.

    ``sql`` is the SQL expression (a sqlglot tree): a scalar (NULL when empty) or, when ``many``, a LIST
    (NULL or [] when empty, never holding NULL items). ``type`` is the FHIR or FHIRPath type
    when known. ``node`` is the read-schema node the value comes from, so that navigating
    further records what to read.

    Two special forms have no SQL of their own:

    * the resource itself (``root``), whose elements are the columns of the input relation;
      ``guard`` holds the condition of a ``where()`` applied to it;
    * a choice element not yet resolved (``value`` before ``.ofType(Quantity)``): ``choice``
      is the element and ``parent`` the value that owns it.
    """

    sql: exp.Expression | None
    type: str | None
    many: bool = False
    node: SchemaNode | None = None
    root: bool = False
    guard: exp.Expression | None = None
    choice: Element | None = None
    parent: Value | None = None
    text: exp.Expression | None = None  # a decimal's literal text (for lowBoundary...)

    def with_sql(self, sql: exp.Expression, *, many: bool | None = None) -> Value:
        """The same value (type, node) computed by other SQL."""
        return replace(
            self, sql=sql, many=self.many if many is None else many, root=False, guard=None, text=None
        )


@dataclass(frozen=True, slots=True)
class Scope:
    """Where an expression is compiled: its focus (``$this``), ``%rowIndex``, and the JSON
    pointer and text of the path being compiled (for error messages)."""

    focus: Value
    row_index: exp.Expression
    pointer: str
    expression: str
