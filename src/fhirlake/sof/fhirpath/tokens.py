"""The FHIRPath tokenizer: turns an expression into a list of typed tokens with positions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from fhirlake.sof.errors import FhirPathSyntaxError


class TokenType(Enum):
    IDENTIFIER = "identifier"
    DELIMITED_IDENTIFIER = "`identifier`"
    STRING = "string"
    NUMBER = "number"
    DATETIME = "date/time literal"
    ENV_VAR = "%variable"
    SPECIAL = "$variable"
    OPERATOR = "operator"
    EOF = "end of expression"


@dataclass(frozen=True, slots=True)
class Token:
    type: TokenType
    text: str
    position: int


# Longest operators first so that "<=" wins over "<".
_OPERATORS = ("<=", ">=", "!=", "!~", "=", "~", "<", ">", "+", "-", "*", "/", "&", "|",
              ".", ",", "(", ")", "[", "]", "{", "}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")
_DATETIME = re.compile(
    r"@(T[0-9]{2}(:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?"
    r"|[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?"
    r"(T([0-9]{2}(:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?)"
)
_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "f": "\f", "n": "\n",
            "r": "\r", "t": "\t"}


def _read_quoted(expression: str, start: int) -> tuple[str, int]:
    """Read a quoted string or delimited identifier starting at ``start``; return (text, end)."""
    quote = expression[start]
    out: list[str] = []
    i = start + 1
    while i < len(expression):
        char = expression[i]
        if char == quote:
            return "".join(out), i + 1
        if char == "\\" and i + 1 < len(expression):
            nxt = expression[i + 1]
            if nxt == "u" and i + 5 < len(expression):
                out.append(chr(int(expression[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(char)
        i += 1
    raise FhirPathSyntaxError(expression, start, "unterminated string")


def tokenize(expression: str) -> list[Token]:
    """Split a FHIRPath expression into tokens; raise FhirPathSyntaxError on a bad character."""
    tokens: list[Token] = []
    i = 0
    while i < len(expression):
        char = expression[i]
        if char.isspace():
            i += 1
            continue
        if expression.startswith("//", i):  # line comment
            end = expression.find("\n", i)
            i = len(expression) if end < 0 else end
            continue
        if expression.startswith("/*", i):
            end = expression.find("*/", i + 2)
            if end < 0:
                raise FhirPathSyntaxError(expression, i, "unterminated comment")
            i = end + 2
            continue
        if char == "'":
            text, end = _read_quoted(expression, i)
            tokens.append(Token(TokenType.STRING, text, i))
            i = end
            continue
        if char == "`":
            text, end = _read_quoted(expression, i)
            tokens.append(Token(TokenType.DELIMITED_IDENTIFIER, text, i))
            i = end
            continue
        if char in "%$":
            if i + 1 < len(expression) and expression[i + 1] in "`'":
                text, end = _read_quoted(expression, i + 1)
            else:
                match = _IDENTIFIER.match(expression, i + 1)
                if match is None:
                    raise FhirPathSyntaxError(expression, i, f"expected a name after {char!r}")
                text, end = match.group(), match.end()
            kind = TokenType.ENV_VAR if char == "%" else TokenType.SPECIAL
            tokens.append(Token(kind, text, i))
            i = end
            continue
        if char == "@":
            match = _DATETIME.match(expression, i)
            if match is None or match.end() == i + 1:
                raise FhirPathSyntaxError(expression, i, "malformed date/time literal")
            tokens.append(Token(TokenType.DATETIME, match.group()[1:], i))
            i = match.end()
            continue
        if char.isdigit():
            match = _NUMBER.match(expression, i)
            assert match is not None
            tokens.append(Token(TokenType.NUMBER, match.group(), i))
            i = match.end()
            continue
        match = _IDENTIFIER.match(expression, i)
        if match is not None:
            tokens.append(Token(TokenType.IDENTIFIER, match.group(), i))
            i = match.end()
            continue
        for operator in _OPERATORS:
            if expression.startswith(operator, i):
                tokens.append(Token(TokenType.OPERATOR, operator, i))
                i += len(operator)
                break
        else:
            raise FhirPathSyntaxError(expression, i, f"unexpected character {char!r}")
    tokens.append(Token(TokenType.EOF, "", len(expression)))
    return tokens
