"""The v1.8 entity type selection language: ``A,B`` or ``A|B`` (any), ``A;B`` (all), parentheses.

Parsed into disjunctive normal form: a list of alternatives, each a set of types an entity must
all have. ``(A;B)|C`` becomes ``[{A, B}, {C}]``. The repository turns that into index lookups.
"""

from __future__ import annotations

from collections.abc import Callable

from smartcity.hub.errors import BadRequestData

TypeSelection = list[frozenset[str]]


def parse_type_selection(text: str, expand: Callable[[str], str]) -> TypeSelection:
    tokens = _tokenise(text)
    pos, result = _parse_or(tokens, 0, expand)
    if pos != len(tokens):
        raise BadRequestData(f"type: unexpected {tokens[pos]!r} in {text!r}")
    return result


def _tokenise(text: str) -> list[str]:
    tokens: list[str] = []
    name = ""
    for char in text:
        if char in ",|;()":
            if name.strip():
                tokens.append(name.strip())
            name = ""
            tokens.append(char)
        else:
            name += char
    if name.strip():
        tokens.append(name.strip())
    if not tokens:
        raise BadRequestData("type: the type selection is empty")
    return tokens


def _parse_or(
    tokens: list[str], pos: int, expand: Callable[[str], str]
) -> tuple[int, TypeSelection]:
    pos, alternatives = _parse_and(tokens, pos, expand)
    while pos < len(tokens) and tokens[pos] in ",|":
        pos, more = _parse_and(tokens, pos + 1, expand)
        alternatives = alternatives + more
    return pos, alternatives


def _parse_and(
    tokens: list[str], pos: int, expand: Callable[[str], str]
) -> tuple[int, TypeSelection]:
    pos, result = _parse_atom(tokens, pos, expand)
    while pos < len(tokens) and tokens[pos] == ";":
        pos, right = _parse_atom(tokens, pos + 1, expand)
        # (A|B);(C|D) = A;C | A;D | B;C | B;D
        result = [left | other for left in result for other in right]
        if len(result) > 64:
            raise BadRequestData("type: the type selection is too complex (over 64 alternatives)")
    return pos, result


def _parse_atom(
    tokens: list[str], pos: int, expand: Callable[[str], str]
) -> tuple[int, TypeSelection]:
    if pos >= len(tokens):
        raise BadRequestData("type: the type selection ends where a type was expected")
    token = tokens[pos]
    if token == "(":
        pos, inner = _parse_or(tokens, pos + 1, expand)
        if pos >= len(tokens) or tokens[pos] != ")":
            raise BadRequestData("type: missing ')' in the type selection")
        return pos + 1, inner
    if token in ",|;)":
        raise BadRequestData(f"type: expected a type name, found {token!r}")
    from smartcity.hub.entity import check_name

    return pos + 1, [frozenset({expand(check_name(token, "type"))})]
