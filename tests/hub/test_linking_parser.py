"""The parsers of join/joinLevel and of nested pick/omit (hub/linking.py), property-tested."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcity.hub.errors import BadRequestData
from smartcity.hub.linking import (
    MAX_JOIN_LEVEL,
    Join,
    Projection,
    parse_join,
    parse_projection,
    parse_request,
)

# Attribute names start with a letter or '_' (hub/entity.py check_name).
NAMES = st.from_regex(r"[abcxyzAB_][abcxyzAB_09]{0,5}", fullmatch=True)


def projections(depth: int = 3) -> st.SearchStrategy[Projection]:
    def build(names: list[str], data: st.DataObject, level: int) -> Projection:
        nested = {}
        if level < depth:
            for name in names:
                if name not in ("id", "type", "scope") and data.draw(st.booleans()):
                    inner = data.draw(st.lists(NAMES, min_size=1, max_size=3, unique=True))
                    nested[name] = build(inner, data, level + 1)
        return Projection(tuple(names), nested)

    return st.builds(
        build,
        st.lists(NAMES, min_size=1, max_size=4, unique=True),
        st.data(),
        st.just(0),
    )


def write(p: Projection) -> str:
    return ",".join(n + ("{" + write(p.nested[n]) + "}" if n in p.nested else "") for n in p.names)


@given(projections())
def test_a_written_projection_parses_back_to_itself(p: Projection) -> None:
    assert parse_projection(write(p), "pick") == p


@given(st.text(alphabet="ab,{} ;", max_size=20))
def test_any_text_parses_or_is_a_bad_request(text: str) -> None:
    try:
        p = parse_projection(text, "pick")
    except BadRequestData:
        return
    assert parse_projection(write(p), "pick") == p  # what is accepted is well-formed


@given(projections())
def test_omit_keeps_members_with_braces_on_the_parent(p: Projection) -> None:
    request = parse_request(None, None, None, write(p))
    plain = [n for n in p.names if n not in p.nested]
    assert request.omit == (",".join(plain) or None)
    assert dict(request.nested) == dict(p.nested)
    picked = parse_request(None, None, write(p), None)
    assert picked.pick == ",".join(p.names)


@given(st.sampled_from(["inline", "flat"]), st.integers(1, MAX_JOIN_LEVEL))
def test_valid_join_levels_are_taken(mode: str, level: int) -> None:
    assert parse_join(mode, str(level)) == Join(mode, level)


@given(st.one_of(st.none(), st.text(max_size=8)), st.one_of(st.none(), st.text(max_size=8)))
def test_join_parameters_parse_or_are_a_bad_request(join: str | None, level: str | None) -> None:
    try:
        parsed = parse_join(join, level)
    except BadRequestData:
        assert join not in (None, "", "@none", "inline", "flat") or level
        return
    if join in (None, "", "@none"):
        assert parsed is None
    else:
        assert parsed is not None and parsed.mode == join
        assert 1 <= parsed.level <= MAX_JOIN_LEVEL


def test_a_member_named_twice_counts_once_but_cannot_take_two_projections() -> None:
    assert parse_projection("id,name,id", "pick") == Projection(("id", "name"))
    with pytest.raises(BadRequestData):
        parse_projection("a{b},a{c}", "pick")


def test_join_level_defaults_to_one() -> None:
    assert parse_join("inline", None) == Join("inline", 1)
    assert parse_join("inline", "") == Join("inline", 1)  # empty = absent
    assert parse_join("", "2") is None
    with pytest.raises(BadRequestData):
        parse_join("inline", "0")


# -- braces in notification.pick / omit (hub/subscriptions/model.py) --------------------------


def _notified(key: str, p: Projection) -> dict[str, Any]:
    """A subscription with notification.<key> written one member per entry, parsed, stored
    and rendered back."""
    from smartcity.config import Limits
    from smartcity.hub.contexts import core_context
    from smartcity.hub.subscriptions.model import parse_subscription, render_subscription

    entries = [n + ("{" + write(p.nested[n]) + "}" if n in p.nested else "") for n in p.names]
    payload = {
        "type": "Subscription",
        "entities": [{"type": "Sensor"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}, key: entries},
    }
    ctx = core_context()
    doc = parse_subscription(payload, ctx, context=None, limits=Limits(), now_us=0)
    shown = render_subscription(doc, {}, ctx, sys_attrs=False, now_us=0)
    assert shown["notification"][key] == entries  # shown back as written
    stored: dict[str, Any] = doc["notification"]
    return stored


@given(projections(), st.sampled_from(["pick", "omit"]))
def test_notification_projections_are_the_query_parameters_projections(
    p: Projection, key: str
) -> None:
    from smartcity.hub.contexts import core_context
    from smartcity.hub.subscriptions.model import linked_projection

    stored = _notified(key, p)
    nested, picking = linked_projection(stored)
    ctx = core_context()

    def expanded(q: Projection) -> Projection:
        return Projection(
            tuple(n if n in ("id", "type", "scope") else ctx.expand(n) for n in q.names),
            {ctx.expand(n): expanded(inner) for n, inner in q.nested.items()},
        )

    assert nested == expanded(p).nested
    assert picking == (key == "pick") or not nested
