"""The `where` expressions of `GET /v1/jobs`: one comparison of a value in the job's spec, parsed here
(no SQL; core/jobs/search.py turns a `Condition` into SQL for each database).

The grammar, spaces allowed around the operator:

    expression := path operator value
    path       := segment ("." segment)*          model.dropout, model.hidden_layers.0
    segment    := name | index                    name: [A-Za-z_][A-Za-z0-9_]*, index: [0-9]+ (of a list)
    operator   := "=" | "!=" | "<" | "<=" | ">" | ">="
    value      := number | string | true | false | null | word
    number     := a JSON number                   0.2, -3, 1e-4
    string     := a JSON string, double-quoted    "adam", "a b"
    word       := [A-Za-z_][A-Za-z0-9_.:/-]*      adam: a string without quotes (but true, false, null)

What a comparison means:
1. `=` matches a job whose value at `path` is of the same JSON type and equal (the number 1 equals 1.0; the
   string "1" is not the number 1). `= null` matches a null or a missing value.
2. `!=` matches every job that `=` does not (so also one without the path).
3. `<`, `<=`, `>` and `>=` compare numbers only: a job whose value is not a number never matches.

A malformed expression raises `WhereError`, whose `position` is the character (from 1) where it goes wrong.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Literal

Operator = Literal["=", "!=", "<", "<=", ">", ">="]
Scalar = float | str | bool | None
ORDERED: frozenset[Operator] = frozenset({"<", "<=", ">", ">="})
MAX_LENGTH = 200
MAX_DEPTH = 16

_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_OPERATOR = re.compile(r"!=|<=|>=|=|<|>")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"')
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.:/-]*")
_LITERALS: dict[str, Scalar] = {"true": True, "false": False, "null": None}


class WhereError(ValueError):
    """A malformed expression; `position` counts characters from 1."""

    def __init__(self, expression: str, position: int, expected: str) -> None:
        super().__init__(f"`{expression}`: at character {position}, expected {expected}")
        self.position = position


@dataclass(frozen=True)
class Condition:
    """`path operator value`: list indices in the path are ints, object keys strings."""

    path: tuple[str | int, ...]
    operator: Operator
    value: Scalar


def parse(expression: str) -> Condition:
    """The condition `expression` states, or a WhereError at the first character that breaks the grammar."""
    if len(expression) > MAX_LENGTH:
        raise WhereError(expression, MAX_LENGTH + 1, f"the end: an expression has at most {MAX_LENGTH} characters")
    scanner = _Scanner(expression)
    path = scanner.path()
    scanner.spaces()
    operator = scanner.operator()
    scanner.spaces()
    value_at = scanner.at
    value = scanner.value()
    scanner.spaces()
    scanner.end()
    if operator in ORDERED and not isinstance(value, float):
        raise WhereError(expression, value_at + 1, f"a number: `{operator}` compares numbers only")
    return Condition(path, operator, value)


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text, self.at = text, 0

    def fail(self, expected: str) -> WhereError:
        return WhereError(self.text, self.at + 1, expected)

    def take(self, pattern: re.Pattern[str], expected: str) -> str:
        found = pattern.match(self.text, self.at)
        if found is None:
            raise self.fail(expected)
        self.at = found.end()
        return found.group()

    def spaces(self) -> None:
        while self.at < len(self.text) and self.text[self.at] == " ":
            self.at += 1

    def path(self) -> tuple[str | int, ...]:
        segments: list[str | int] = []
        while True:
            if len(segments) == MAX_DEPTH:
                raise self.fail(f"an operator: a path has at most {MAX_DEPTH} segments")
            segment = self.take(_SEGMENT, "a field name or a list index")
            segments.append(int(segment) if segment.isdigit() else segment)
            if not self.text.startswith(".", self.at):
                return tuple(segments)
            self.at += 1

    def operator(self) -> Operator:
        return self.take(_OPERATOR, "an operator: = != < <= > >=")  # type: ignore[return-value]

    def value(self) -> Scalar:
        expected = 'a value: a number, a "string", true, false, null or a word'
        if self.text.startswith('"', self.at):
            string: str = json.loads(self.take(_STRING, 'a string closed by "'))
            return string
        if _NUMBER.match(self.text, self.at):
            start = self.at
            number = float(self.take(_NUMBER, expected))
            if not math.isfinite(number):
                self.at = start
                raise self.fail("a number of at most about 1.8e308")
            return number
        word = self.take(_WORD, expected)
        return _LITERALS.get(word, word)

    def end(self) -> None:
        if self.at != len(self.text):
            raise self.fail("the end of the expression")
