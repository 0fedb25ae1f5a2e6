"""@context processing: expansion and compaction are each other's inverse (property tests),
and the JSON-LD term-definition rules the hub relies on."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from smartcity.hub.contexts import core_context
from smartcity.hub.entity import parse_entity, render_entity
from smartcity.hub.errors import BadRequestData
from smartcity.hub.jsonld import ActiveContext, process_context


def no_remote(url: str) -> Any:
    raise AssertionError(f"unexpected fetch of {url}")


def with_core(local: Any) -> ActiveContext:
    """User context first, core last, as the hub does (core terms are protected)."""
    user = process_context(ActiveContext(), local, no_remote)
    merged = user.copy()
    merged.terms.update(core_context().terms)
    merged.vocab = merged.vocab or core_context().vocab
    return merged


names = st.from_regex(r"[a-z][a-zA-Z0-9_]{0,12}", fullmatch=True)
iri_paths = st.from_regex(r"[a-z][a-zA-Z0-9_/#-]{0,20}", fullmatch=True)
bases = st.sampled_from(
    ["https://smartdatamodels.org/dataModel.Parking/", "https://example.org/ns#", "urn:city:"]
)


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, Any]:
    prefix = draw(st.sampled_from(["sdm", "ex", "city"]))
    base = draw(bases)
    terms = draw(st.dictionaries(names, iri_paths, max_size=8))
    ctx: dict[str, Any] = {prefix: base}
    for term, path in terms.items():
        if term == prefix:
            continue
        style = draw(st.sampled_from(["absolute", "compact", "expanded"]))
        if style == "absolute":
            ctx[term] = base + path
        elif style == "compact":
            ctx[term] = f"{prefix}:{path}"
        else:
            ctx[term] = {"@id": f"{prefix}:{path}", "@type": "@vocab"}
    if draw(st.booleans()):
        ctx["@vocab"] = "https://vocab.example.org/"
    return ctx


@settings(max_examples=150, deadline=None)
@given(contexts(), st.lists(names | iri_paths.map(lambda p: "https://other.org/" + p), max_size=6))
def test_expand_then_compact_then_expand_is_stable(local: dict[str, Any], extra: list[str]) -> None:
    ctx = with_core(local)
    for name in [*local, *extra]:
        if name.startswith("@"):
            continue
        iri = ctx.expand(name)
        assert ctx.expand(ctx.compact(iri)) == iri


@settings(max_examples=150, deadline=None)
@given(contexts(), st.lists(iri_paths, max_size=6), bases)
def test_compaction_never_loses_an_iri(local: dict[str, Any], paths: list[str], base: str) -> None:
    ctx = with_core(local)
    for path in paths:
        iri = base + path
        compacted = ctx.compact(iri)
        assert ctx.expand(compacted) == iri


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(min_size=1, max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
).filter(lambda v: v is not None)


@st.composite
def attributes(draw: st.DrawFn, name: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Property", "Relationship", "LanguageProperty", "GeoProperty"]))
    if kind == "Property":
        attr: dict[str, Any] = {"type": "Property", "value": draw(values)}
        if draw(st.booleans()):
            attr["observedAt"] = "2026-11-26T08:00:00Z"
        if draw(st.booleans()):
            attr["unitCode"] = "CEL"
    elif kind == "Relationship":
        attr = {"type": "Relationship", "object": f"urn:ngsi-ld:Thing:{draw(names)}"}
    elif kind == "LanguageProperty":
        attr = {
            "type": "LanguageProperty",
            "languageMap": {"en": draw(st.text(max_size=8)), "zh-Hant": "停車場"},
        }
    else:
        lon, lat = draw(st.floats(113.8, 114.4)), draw(st.floats(22.1, 22.6))
        attr = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}
    return attr


@settings(max_examples=150, deadline=None)
@given(st.data(), contexts())
def test_entities_read_back_unchanged_with_their_context(
    data: st.DataObject, local: dict[str, Any]
) -> None:
    ctx = with_core(local)
    attr_names = data.draw(
        st.lists(
            st.sampled_from([t for t in local if not t.startswith("@")] or ["x"]) | names,
            max_size=5,
            unique=True,
        )
    )
    reserved = {"id", "type", "scope", "createdAt", "modifiedAt", "deletedAt"}
    attr_names = [n for n in attr_names if n not in reserved]
    # Two names that expand to the same IRI are one attribute; the test needs distinct ones.
    assume(len({ctx.expand(n) for n in attr_names}) == len(attr_names))
    entity = {
        "id": "urn:ngsi-ld:Thing:1",
        "type": data.draw(st.sampled_from([*local, "Thing"]) if local else st.just("Thing")),
    }
    assume(not str(entity["type"]).startswith("@"))
    for name in attr_names:
        entity[name] = data.draw(attributes(name))
    doc = parse_entity(entity, ctx)
    back = render_entity(doc, ctx)
    # A name that several terms share compacts to the shortest of them: compare expanded.
    assert {ctx.expand(k): v for k, v in back.items() if k not in ("id", "type")} == {
        ctx.expand(k): v for k, v in entity.items() if k not in ("id", "type")
    }
    assert ctx.expand(back["type"]) == ctx.expand(entity["type"])


def test_core_terms_win_over_user_redefinitions() -> None:
    ctx = with_core(
        {"location": "https://example.org/myLocation", "speed": "https://example.org/speed"}
    )
    assert ctx.expand("location") == "https://uri.etsi.org/ngsi-ld/location"
    assert ctx.expand("speed") == "https://example.org/speed"


def test_vocab_and_prefixes() -> None:
    ctx = with_core({"sdm": "https://smartdatamodels.org/", "@vocab": "https://city.example/"})
    assert ctx.expand("sdm:dataModel.Parking/OffStreetParking") == (
        "https://smartdatamodels.org/dataModel.Parking/OffStreetParking"
    )
    assert ctx.compact("https://smartdatamodels.org/x") == "sdm:x"
    assert ctx.expand("urn:ngsi-ld:absolute") == "urn:ngsi-ld:absolute"


def test_cyclic_and_malformed_contexts_are_rejected() -> None:
    with pytest.raises(BadRequestData):
        process_context(ActiveContext(), {"a": "b:x", "b": "a:y"}, no_remote)
    with pytest.raises(BadRequestData):
        process_context(ActiveContext(), {"a": 5}, no_remote)
    with pytest.raises(BadRequestData):
        process_context(ActiveContext(), 42, no_remote)
