"""Fuzzing the query parsers: whatever a client sends, each parser answers with a result or a
BadRequestData (a 400 that says what was wrong), never another exception (a 500), and
quickly (the deadline). Inputs mix random text with the languages' own characters, so they
reach deep into each grammar; the budgets keep each test to a few seconds."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartcity.hub.api.params import parse_selection
from smartcity.hub.contexts import core_context
from smartcity.hub.errors import BadRequestData
from smartcity.hub.query.geo import parse_geo_query, validate_geometry
from smartcity.hub.query.order import parse_order_by
from smartcity.hub.query.qlang import parse_q
from smartcity.hub.query.qregex import check_pattern, compile_pattern
from smartcity.hub.query.scope import parse_scope_q
from smartcity.hub.types_expr import parse_type_selection

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")),
    # ms per input: parsing is bounded, so even a hostile input takes milliseconds; the
    # margin is for a loaded CI machine.
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow],
)


def text_of(alphabet: str, max_size: int = 200) -> st.SearchStrategy[str]:
    """Text that is mostly the language's own characters, with some of anything."""
    return st.text(st.sampled_from(alphabet) | st.characters(), max_size=max_size)


def nested(inner: str, max_depth: int = 2000) -> st.SearchStrategy[str]:
    """``inner`` inside up to ``max_depth`` parentheses (a parser that recurses per level and
    checks no depth overflows Python's stack: a 500)."""
    return st.integers(0, max_depth).map(lambda n: "(" * n + inner + ")" * n)


def answers_or_refuses(parse: Callable[[], Any]) -> None:
    try:
        parse()
    except BadRequestData as exc:
        assert exc.status == 400 and exc.detail


Q_ALPHABET = 'abcxyz_.[]()!=<>~;|,"\\-+:0123456789eETZ ^$*?{}'
# Repetitions of the tricky parts (nesting, lists, patterns), so long inputs hit the limits.
Q_PIECES = st.sampled_from(
    ["(", ")", "a", "a.b", "a[k]", "==", "!=", ">", "~=", "!~=", ";", "|", ",", "..", "1",
     "-2.5e3", '"x"', "true", "2026-01-01T00:00:00Z", "urn:a:b", "(.|.)*", "\\d+", "!"]
)  # fmt: skip


@FUZZ
@given(
    text=text_of(Q_ALPHABET)
    | st.lists(Q_PIECES, max_size=400).map("".join)
    | nested("a==1")
    | nested("a==1", 1000).map(lambda t: t.replace("(", "(a|"))
)
def test_q(text: str) -> None:
    answers_or_refuses(lambda: parse_q(text))


@FUZZ
@given(text=text_of("ab.()[]|*+?{},0123456789^$\\dwsbBAZ(?:i=!<>P)-") | nested("a", 600))
def test_regular_expressions(text: str) -> None:
    def parse() -> None:
        check_pattern(text)
        compile_pattern(text).search("ab0 c\n")

    answers_or_refuses(parse)


def expand(name: str) -> str:
    return core_context().expand(name)


TYPE_PIECES = st.sampled_from(["(", ")", "A", "B", "Car", ",", "|", ";", " ", "ex:T", "@x"])


@FUZZ
@given(
    text=text_of("AB(),|; :")
    | st.lists(TYPE_PIECES, max_size=3000).map("".join)
    | nested("A")
    | nested("A", 1000).map(lambda t: t.replace("(", "(B|"))
)
def test_type_expressions(text: str) -> None:
    answers_or_refuses(lambda: parse_type_selection(text, expand))


@FUZZ
@given(
    text=text_of("/ab+#(),|;_1")
    | st.lists(st.sampled_from(["/a", "/+", "/#", "(", ")", ";", "|", ","]), max_size=700).map(
        "".join
    )
    | nested("/a")
)
def test_scope_q(text: str) -> None:
    answers_or_refuses(lambda: parse_scope_q(text))


@FUZZ
@given(text=text_of("ab.;,:descasc id"))
def test_order_by(text: str) -> None:
    answers_or_refuses(lambda: parse_order_by(text))


@FUZZ
@given(
    attrs=st.none() | text_of("ab,:_ "),
    pick=st.none() | text_of("ab,:_ id"),
    omit=st.none() | text_of("ab,:_ type"),
)
def test_pick_omit_and_attrs(attrs: str | None, pick: str | None, omit: str | None) -> None:
    answers_or_refuses(lambda: parse_selection(core_context(), attrs, pick, omit))


# Any JSON value, with a bias towards what geometries are made of.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["Point", "Polygon", "MultiPolygon", "GeometryCollection", "x"]),
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(
            st.sampled_from(["type", "coordinates", "geometries", "x"]), inner, max_size=3
        )
    ),
    max_leaves=40,
)
GEOMETRY_TYPES = st.sampled_from(
    ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
     "GeometryCollection"]
)  # fmt: skip
positions = st.lists(st.floats(-200, 200) | st.integers(-200, 200), min_size=0, max_size=4)
coordinates = st.recursive(positions, lambda inner: st.lists(inner, max_size=6), max_leaves=60)


@FUZZ
@given(
    geometry=json_values
    | st.builds(lambda t, c: {"type": t, "coordinates": c}, GEOMETRY_TYPES, coordinates)
)
def test_geometries(geometry: Any) -> None:
    answers_or_refuses(lambda: validate_geometry(geometry, max_points=50))


@FUZZ
@given(
    georel=st.none()
    | st.sampled_from(["near;maxDistance==10", "near;minDistance==1e400", "within", "near"])
    | text_of("near;maxDistance=0123456789.e"),
    geometry=st.none() | GEOMETRY_TYPES | st.text(max_size=10),
    coords=st.none()
    | coordinates.map(lambda c: orjson.dumps(c).decode())
    | text_of("[],.-0123456789e ", max_size=100),
    geoproperty=st.none() | st.text(max_size=10),
)
def test_geo_queries(
    georel: str | None, geometry: str | None, coords: str | None, geoproperty: str | None
) -> None:
    answers_or_refuses(
        lambda: parse_geo_query(georel, geometry, coords, geoproperty, max_points=50)
    )
