"""Scopes and scopeQ (ETSI GS CIM 009 clauses 4.18, 4.19): validation, parsing, matching, SQL."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from smartcity.hub.errors import BadRequestData
from smartcity.hub.query.scope import (
    ScopeAnd,
    ScopeNode,
    ScopeOr,
    ScopePattern,
    parse_scope_q,
    scope_matches,
    scope_text,
    scope_to_sql,
    validate_scope,
)
from smartcity.storage.engine import Database
from smartcity.storage.schema import entities

# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/Madrid", ["/Madrid"]),
        (["/Madrid/Gardens", "/Company_1/Región2"], ["/Madrid/Gardens", "/Company_1/Región2"]),
    ],
)
def test_valid_scopes(value: Any, expected: list[str]) -> None:
    assert validate_scope(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "Madrid", "/", "/Madrid/", "//Madrid", "/A//B", "/A/#", "/A/+", "/A B", "/A-B", 5, [],
     [5], ["/A", None], {"a": 1}],
)  # fmt: skip
def test_invalid_scopes(value: Any) -> None:
    with pytest.raises(BadRequestData, match="scope"):
        validate_scope(value)


# -- parsing --------------------------------------------------------------------------------------


def pattern(text: str) -> ScopePattern:
    return ScopePattern(tuple(text[1:].split("/")))


PARSED: dict[str, ScopeNode] = {
    "/Madrid": pattern("/Madrid"),
    "/Madrid/Gardens/ParqueNorte": pattern("/Madrid/Gardens/ParqueNorte"),
    "/Madrid/#": pattern("/Madrid/#"),
    "/#": pattern("/#"),
    "/Madrid/+/Bench": pattern("/Madrid/+/Bench"),
    "/+/+/#": pattern("/+/+/#"),
    "/A;/B": ScopeAnd((pattern("/A"), pattern("/B"))),
    "/A|/B;/C": ScopeOr((pattern("/A"), ScopeAnd((pattern("/B"), pattern("/C"))))),
    "(/A|/B);/C": ScopeAnd((ScopeOr((pattern("/A"), pattern("/B"))), pattern("/C"))),
    "((/A))": pattern("/A"),
}


@pytest.mark.parametrize("text", list(PARSED))
def test_parses(text: str) -> None:
    node = parse_scope_q(text)
    assert node == PARSED[text]
    assert parse_scope_q(scope_text(node)) == node


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "scopeQ is empty"),
        ("Madrid", "expected a scope starting with '/' at position 1"),
        ("/", "expected a scope level"),
        ("/A/", "expected a scope level (letters, digits, '_'), '+' or '#' at position 4"),
        ("/A//B", "expected a scope level"),
        ("/A/#/B", "'#' must be the last level"),
        ("/A/#x", "expected ';', '|' or the end at position 5"),
        ("/A;", "expected a scope starting with '/' at position 4"),
        ("(/A", "expected ')' at position 4"),
        ("/A)", "expected ';', '|' or the end"),
        ("/A B", "expected ';', '|' or the end at position 3"),
        ("/" + "A" * 3000, "longer than"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_scope_q(text)
    assert message in info.value.detail


# -- matching -------------------------------------------------------------------------------------

SCOPES = ["/Madrid/Gardens/ParqueNorte", "/Company/Dept1"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("/Madrid/Gardens/ParqueNorte", True),
        ("/Madrid/Gardens", False),
        ("/Madrid/#", True),
        ("/Madrid/Gardens/ParqueNorte/#", True),  # the scope itself counts
        ("/Madrid/Gard/#", False),  # a prefix of a level is not an ancestor
        ("/#", True),
        ("/Madrid/+/ParqueNorte", True),
        ("/+/Dept1", True),
        ("/+", False),
        ("/+/+/+/#", True),
        ("/Madrid/#;/Company/#", True),
        ("/Madrid/#;/Other/#", False),
        ("/Other|/Company/Dept1", True),
        ("(/Other|/Company/#);/Madrid/+/+", True),
    ],
)
def test_scope_matches(query: str, expected: bool) -> None:
    assert scope_matches(parse_scope_q(query), SCOPES) is expected


def test_entities_without_scope_match_nothing() -> None:
    assert not scope_matches(parse_scope_q("/#"), None)
    assert not scope_matches(parse_scope_q("/#"), [])


# -- SQL equals Python, on both backends -----------------------------------------------------


@pytest.fixture
def db(bare_db: Database) -> Database:
    """Each test runs on SQLite and, when configured, PostgreSQL (tests/conftest.py)."""
    return bare_db


LEVELS = ["A", "B", "Año", "_1"]
scope_values = st.lists(st.sampled_from(LEVELS), min_size=1, max_size=3).map(
    lambda levels: "/" + "/".join(levels)
)
docs_scopes = st.lists(
    st.none() | st.lists(scope_values, max_size=3) | scope_values, min_size=1, max_size=5
)


@st.composite
def patterns(draw: st.DrawFn) -> ScopePattern:
    levels = draw(st.lists(st.sampled_from([*LEVELS, "+"]), min_size=1, max_size=3))
    if draw(st.booleans()):
        levels.append("#")
    return ScopePattern(tuple(levels))


def _canonical(kind: type[ScopeAnd] | type[ScopeOr], items: list[ScopeNode]) -> ScopeNode:
    flat: list[ScopeNode] = []
    for item in items:
        flat.extend(item.items if isinstance(item, kind) else (item,))
    return kind(tuple(flat))


scope_queries = st.recursive(
    patterns(),
    lambda inner: (
        st.lists(inner, min_size=2, max_size=3).map(lambda i: _canonical(ScopeAnd, i))
        | st.lists(inner, min_size=2, max_size=3).map(lambda i: _canonical(ScopeOr, i))
    ),
    max_leaves=4,
)


@settings(max_examples=100, deadline=None)
@given(scope_queries)
def test_round_trip(node: ScopeNode) -> None:
    assert parse_scope_q(scope_text(node)) == node


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(scopes=docs_scopes, node=scope_queries)
def test_sql_matches_python(db: Database, scopes: list[Any], node: ScopeNode) -> None:
    docs: list[dict[str, Any]] = []
    for index, scope in enumerate(scopes):
        doc: dict[str, Any] = {"id": f"urn:ngsi-ld:T:{index}", "type": ["T"], "attrs": {}}
        if scope is not None:
            doc["scope"] = scope
        docs.append(doc)
    with db.write() as conn:
        conn.execute(entities.delete())
        conn.execute(
            entities.insert(),
            [
                {"tenant": "", "entity_id": d["id"], "doc": d, "created_at": 0, "modified_at": 0}
                for d in docs
            ],
        )
    where = scope_to_sql(node, entities.c.doc, db.engine.dialect.name)
    with db.read() as conn:
        got = set(conn.execute(select(entities.c.entity_id).where(where)).scalars())
    expected = {d["id"] for d in docs if scope_matches(node, d.get("scope"))}
    assert got == expected, scope_text(node)


def test_unknown_dialect() -> None:
    with pytest.raises(ValueError, match="mysql"):
        scope_to_sql(parse_scope_q("/A"), entities.c.doc, "mysql")
