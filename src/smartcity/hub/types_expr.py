"""The v1.8 entity type selection language: ``A,B`` or ``A|B`` (any), ``A;B`` (all), parentheses.

Parsed into disjunctive normal form: a list of alternatives, each a set of types an entity must
all have. ``(A;B)|C`` becomes ``[{A, B}, {C}]``. The repository turns that into index lookups.

Size limits are checked while parsing, before the work they bound: the text's length, the
nesting of parentheses (the parser recurses once per level) and the number of alternatives
(each one an index lookup; ``;`` of alternatives multiplies them out).
"""

from __future__ import annotations

from collections.abc import Callable

from smartcity.hub.errors import BadRequestData

TypeSelection = list[frozenset[str]]

MAX_LENGTH = 4096
MAX_DEPTH = 32
MAX_ALTERNATIVES = 64


def parse_type_selection(text: str, expand: Callable[[str], str]) -> TypeSelection:
    if len(text) > MAX_LENGTH:
        raise BadRequestData(
            f"type: the type selection is {len(text)} characters long; the limit is {MAX_LENGTH}"
        )
    tokens = _tokenise(text)
    pos, result = _parse_or(tokens, 0, expand, 0)
    if pos != len(tokens):
        raise BadRequestData(f"type: unexpected {tokens[pos]!r} in {_shown(text)}")
    return result


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _check_size(alternatives: int) -> None:
    if alternatives > MAX_ALTERNATIVES:
        raise BadRequestData(
            f"type: the type selection is too complex: over {MAX_ALTERNATIVES} alternatives "
            "(types joined by ',' or '|', with ';' multiplied out); split the query"
        )


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
    tokens: list[str], pos: int, expand: Callable[[str], str], depth: int
) -> tuple[int, TypeSelection]:
    pos, alternatives = _parse_and(tokens, pos, expand, depth)
    while pos < len(tokens) and tokens[pos] in ",|":
        pos, more = _parse_and(tokens, pos + 1, expand, depth)
        alternatives = list(dict.fromkeys(alternatives + more))
        _check_size(len(alternatives))
    return pos, alternatives


def _parse_and(
    tokens: list[str], pos: int, expand: Callable[[str], str], depth: int
) -> tuple[int, TypeSelection]:
    pos, result = _parse_atom(tokens, pos, expand, depth)
    while pos < len(tokens) and tokens[pos] == ";":
        pos, right = _parse_atom(tokens, pos + 1, expand, depth)
        # (A|B);(C|D) = A;C | A;D | B;C | B;D; checked before it is built.
        _check_size(len(result) * len(right))
        result = [left | other for left in result for other in right]
    return pos, result


def _parse_atom(
    tokens: list[str], pos: int, expand: Callable[[str], str], depth: int
) -> tuple[int, TypeSelection]:
    if pos >= len(tokens):
        raise BadRequestData("type: the type selection ends where a type was expected")
    token = tokens[pos]
    if token == "(":
        if depth >= MAX_DEPTH:
            raise BadRequestData(
                f"type: parentheses nest deeper than {MAX_DEPTH} levels in the type selection"
            )
        pos, inner = _parse_or(tokens, pos + 1, expand, depth + 1)
        if pos >= len(tokens) or tokens[pos] != ")":
            raise BadRequestData("type: missing ')' in the type selection")
        return pos + 1, inner
    if token in ",|;)":
        raise BadRequestData(f"type: expected a type name, found {token!r}")
    from smartcity.hub.entity import check_name

    return pos + 1, [frozenset({expand(check_name(token, "type"))})]
