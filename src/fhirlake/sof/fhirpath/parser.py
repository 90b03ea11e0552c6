"""The FHIRPath parser: a precedence-climbing parser over the tokens of ``tokens.py``.

Each grammar rule is a ``_parse_<rule>`` method. Operator precedence follows the FHIRPath
specification (§ Operator precedence), from loosest to tightest: implies; or/xor; and;
in/contains; equality; comparison; union; is/as; additive; multiplicative; unary; invocation.

Function names are checked here against :data:`KNOWN_FUNCTIONS`, so an unknown function is
reported with its position when the view is validated, not when it runs.
"""

from __future__ import annotations

from decimal import Decimal

from fhirlake.sof.errors import FhirPathSyntaxError
from fhirlake.sof.fhirpath.ast import (
    Binary,
    Call,
    EnvVar,
    Indexer,
    Literal,
    Member,
    Node,
    This,
    Unary,
)
from fhirlake.sof.fhirpath.tokens import Token, TokenType, tokenize

# name -> (fewest arguments, most arguments)
KNOWN_FUNCTIONS: dict[str, tuple[int, int]] = {
    "where": (1, 1),
    "exists": (0, 1),
    "empty": (0, 0),
    "first": (0, 0),
    "last": (0, 0),
    "count": (0, 0),
    "not": (0, 0),
    "ofType": (1, 1),
    "extension": (1, 1),
    "join": (0, 1),
    "getResourceKey": (0, 0),
    "getReferenceKey": (0, 1),
    "lowBoundary": (0, 1),
    "highBoundary": (0, 1),
    "startsWith": (1, 1),
    "endsWith": (1, 1),
    "contains": (1, 1),
    "lower": (0, 0),
    "upper": (0, 0),
    "length": (0, 0),
    "toString": (0, 0),
    "substring": (1, 2),
    "toInteger": (0, 0),
    "toDecimal": (0, 0),
}

# Binary operators by precedence level, loosest first.
_LEVELS: tuple[frozenset[str], ...] = (
    frozenset({"implies"}),
    frozenset({"or", "xor"}),
    frozenset({"and"}),
    frozenset({"in", "contains"}),
    frozenset({"=", "~", "!=", "!~"}),
    frozenset({"<", ">", "<=", ">="}),
    frozenset({"|"}),
    frozenset({"is", "as"}),
    frozenset({"+", "-", "&"}),
    frozenset({"*", "/", "div", "mod"}),
)
_KEYWORD_OPERATORS = frozenset({"implies", "or", "xor", "and", "in", "contains", "is", "as",
                                "div", "mod"})


def parse(expression: str) -> Node:
    """Parse a FHIRPath expression into a syntax tree.

    >>> parse("name.family").name
    'family'
    """
    if not isinstance(expression, str):
        raise FhirPathSyntaxError(str(expression), 0, "a FHIRPath expression must be a string")
    return _Parser(expression).parse()


class _Parser:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = tokenize(expression)
        self.index = 0

    # -- helpers -------------------------------------------------------------------------
    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def _advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _error(self, reason: str, token: Token | None = None) -> FhirPathSyntaxError:
        return FhirPathSyntaxError(self.expression, (token or self.current).position, reason)

    def _is_operator(self, text: str) -> bool:
        return self.current.type is TokenType.OPERATOR and self.current.text == text

    def _expect(self, text: str) -> Token:
        if not self._is_operator(text):
            found = self.current.text or self.current.type.value
            raise self._error(f"expected {text!r} but found {found!r}")
        return self._advance()

    def _binary_operator(self) -> str | None:
        token = self.current
        if token.type is TokenType.OPERATOR and token.text not in ".,()[]{}":
            return token.text
        if token.type is TokenType.IDENTIFIER and token.text in _KEYWORD_OPERATORS:
            return token.text
        return None

    # -- grammar -------------------------------------------------------------------------
    def _at_end(self) -> bool:
        return self.current.type is TokenType.EOF

    def parse(self) -> Node:
        if self._at_end():
            raise self._error("empty expression")
        node = self._parse_binary(0)
        if not self._at_end():
            raise self._error(f"unexpected {self.current.text!r}")
        return node

    def _parse_binary(self, level: int) -> Node:
        if level == len(_LEVELS):
            return self._parse_unary()
        left = self._parse_binary(level + 1)
        while (operator := self._binary_operator()) in _LEVELS[level]:
            token = self._advance()
            if operator in ("is", "as"):
                right: Node = self._parse_type_specifier()
            else:
                right = self._parse_binary(level + 1)
            left = Binary(token.position, operator, left, right)
        return left

    def _parse_unary(self) -> Node:
        if self._is_operator("-") or self._is_operator("+"):
            token = self._advance()
            return Unary(token.position, token.text, self._parse_unary())
        return self._parse_invocations(self._parse_term())

    def _parse_invocations(self, node: Node) -> Node:
        while True:
            if self._is_operator("."):
                self._advance()
                node = self._parse_member_or_call(node)
            elif self._is_operator("["):
                token = self._advance()
                index = self._parse_binary(0)
                self._expect("]")
                node = Indexer(token.position, node, index)
            else:
                return node

    def _parse_term(self) -> Node:
        token = self.current
        if token.type is TokenType.STRING:
            self._advance()
            return Literal(token.position, token.text, "string")
        if token.type is TokenType.NUMBER:
            self._advance()
            if "." in token.text:
                return Literal(token.position, Decimal(token.text), "decimal")
            return Literal(token.position, int(token.text), "integer")
        if token.type is TokenType.DATETIME:
            self._advance()
            return self._datetime_literal(token)
        if token.type is TokenType.ENV_VAR:
            self._advance()
            return EnvVar(token.position, token.text)
        if token.type is TokenType.SPECIAL:
            self._advance()
            if token.text == "this":
                return This(token.position)
            raise self._error(f"${token.text} is not supported", token)
        if self._is_operator("("):
            self._advance()
            node = self._parse_binary(0)
            self._expect(")")
            return node
        if self._is_operator("{"):
            self._advance()
            self._expect("}")
            return Literal(token.position, None, "empty")
        if token.type is TokenType.IDENTIFIER and token.text in ("true", "false"):
            self._advance()
            return Literal(token.position, token.text == "true", "boolean")
        if token.type in (TokenType.IDENTIFIER, TokenType.DELIMITED_IDENTIFIER):
            return self._parse_member_or_call(None)
        found = token.text or token.type.value
        raise self._error(f"unexpected {found!r}")

    def _parse_member_or_call(self, target: Node | None) -> Node:
        token = self.current
        if token.type not in (TokenType.IDENTIFIER, TokenType.DELIMITED_IDENTIFIER):
            raise self._error("expected a name")
        self._advance()
        if token.type is TokenType.IDENTIFIER and self._is_operator("("):
            return self._parse_call(target, token)
        return Member(token.position, target, token.text)

    def _parse_call(self, target: Node | None, name: Token) -> Node:
        if name.text not in KNOWN_FUNCTIONS:
            raise self._error(f"unknown function {name.text}()", name)
        self._expect("(")
        args: list[Node] = []
        if not self._is_operator(")"):
            args.append(self._parse_binary(0))
            while self._is_operator(","):
                self._advance()
                args.append(self._parse_binary(0))
        self._expect(")")
        fewest, most = KNOWN_FUNCTIONS[name.text]
        if not fewest <= len(args) <= most:
            wanted = str(fewest) if fewest == most else f"{fewest} to {most}"
            raise self._error(f"{name.text}() takes {wanted} argument(s), got {len(args)}", name)
        return Call(name.position, target, name.text, tuple(args))

    def _parse_type_specifier(self) -> Node:
        token = self.current
        if token.type not in (TokenType.IDENTIFIER, TokenType.DELIMITED_IDENTIFIER):
            raise self._error("expected a type name")
        node: Node = Member(self._advance().position, None, token.text)
        while self._is_operator("."):
            self._advance()
            part = self._advance()
            node = Member(part.position, node, part.text)
        return node

    def _datetime_literal(self, token: Token) -> Literal:
        text = token.text
        if text.startswith("T"):
            return Literal(token.position, text[1:], "time")
        if "T" in text:
            return Literal(token.position, text, "dateTime")
        return Literal(token.position, text, "date")
