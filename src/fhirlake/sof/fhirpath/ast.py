"""The FHIRPath syntax tree: small immutable nodes, each with its position in the source.

A path such as ``name.where(use = 'official').family`` becomes a chain in which every
navigation step or function call holds the expression it applies to (``target``); a ``None``
target means "the current focus" (``$this``), as at the start of a path.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Node:
    """Base of all FHIRPath nodes; ``position`` is the 0-based offset in the expression."""

    position: int


@dataclass(frozen=True, slots=True)
class Literal(Node):
    """A literal: ``type`` is a FHIRPath system type (string, integer, decimal, boolean, date,
    dateTime, time) or ``empty`` for ``{}``; ``value`` is its Python value (text for dates)."""

    value: object
    type: str


@dataclass(frozen=True, slots=True)
class EnvVar(Node):
    """An environment variable such as ``%rowIndex`` or a view constant ``%name_use``."""

    name: str


@dataclass(frozen=True, slots=True)
class This(Node):
    """``$this``: the item being evaluated inside where(), exists(), select()..."""


@dataclass(frozen=True, slots=True)
class Member(Node):
    """Navigation to a child element: ``target.name`` (or ``name`` from the focus)."""

    target: Node | None
    name: str


@dataclass(frozen=True, slots=True)
class Call(Node):
    """A function call: ``target.name(args...)``."""

    target: Node | None
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Indexer(Node):
    """``target[index]``: the item at a 0-based index."""

    target: Node
    index: Node


@dataclass(frozen=True, slots=True)
class Unary(Node):
    """``-operand`` or ``+operand``."""

    operator: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    """An operator between two expressions: arithmetic, comparison, equality, boolean, union."""

    operator: str
    left: Node
    right: Node
