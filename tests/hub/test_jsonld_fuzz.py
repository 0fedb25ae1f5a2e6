"""Fuzzing the JSON-LD side of the hub: whatever @context and entity a client sends, the
context processor and the entity parser answer with a result or an NGSI-LD error (a 4xx, or
503 for a context that cannot be had), never another exception (a 500), and quickly.

The loader stands in for ContextStore.load: it serves generated documents for some URLs
(including ones that import themselves) and refuses the rest, as a dead context server would.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from smartcity.hub.contexts import core_context
from smartcity.hub.entity import parse_entity
from smartcity.hub.errors import LdContextNotAvailable, NgsiError
from smartcity.hub.jsonld import ActiveContext, process_context

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")),
    deadline=2000,  # ms per input, with room for a loaded CI machine
    suppress_health_check=[HealthCheck.too_slow],
)

URLS = ["https://a.example/c.jsonld", "https://b.example/c.jsonld", "https://dead.example/c"]
KEYWORDS = ["@vocab", "@id", "@type", "@import", "@protected", "@container", "@language",
            "@context", "@version", "@base", "@reverse", "@propagate"]  # fmt: skip
TERMS = st.sampled_from(["name", "Car", "speed", "ex", "ex:speed", "a:b:c", "", "@", "@x"])
KEYS = st.sampled_from(KEYWORDS) | TERMS | st.text(max_size=12)
IRIS = st.sampled_from(
    ["https://x.example/", "https://x.example/name", "ex:thing", "name", "@id", "@vocab",
     "urn:a:b", "_:b0", "@json", "@set", "@list", "@language", *URLS]
) | st.text(max_size=20)  # fmt: skip
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | IRIS


def context_values() -> st.SearchStrategy[Any]:
    term_definition = st.dictionaries(
        st.sampled_from(["@id", "@type", "@container", "@context", "@language", "@reverse"]),
        SCALARS,
        max_size=3,
    )
    leaf = SCALARS | term_definition
    return st.recursive(
        leaf,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6),
        max_leaves=30,
    )


def loader_for(documents: dict[str, Any]) -> Callable[[str], Any]:
    def load(url: str) -> Any:
        if url in documents:
            return {"@context": documents[url]}
        raise LdContextNotAvailable(f"{url} did not answer")

    return load


def refuses_properly(exc: NgsiError) -> None:
    assert 400 <= exc.status < 500 or exc.status == 503, exc
    assert exc.detail


@FUZZ
@given(
    local=context_values() | st.sampled_from(URLS) | st.lists(st.sampled_from(URLS), max_size=3),
    documents=st.dictionaries(st.sampled_from(URLS[:2]), context_values(), max_size=2),
    names=st.lists(st.text(max_size=15) | TERMS, max_size=5),
)
def test_any_context_is_processed_or_refused(
    local: Any, documents: dict[str, Any], names: list[str]
) -> None:
    try:
        active = process_context(core_context(), local, loader_for(documents))
    except NgsiError as exc:
        refuses_properly(exc)
        return
    assert isinstance(active, ActiveContext)
    for name in names:  # whatever the context says, a name expands (or is refused) and compacts
        try:
            active.compact(active.expand(name))
        except NgsiError as exc:
            refuses_properly(exc)


ENTITY_KEYS = st.sampled_from(
    ["id", "type", "@context", "name", "speed", "location", "scope", "observedAt", "value",
     "object", "languageMap", "datasetId", "unitCode", "vocab", "json", "createdAt"]
) | st.text(max_size=10)  # fmt: skip
ATTRIBUTE_TYPES = st.sampled_from(
    ["Property", "Relationship", "GeoProperty", "LanguageProperty", "VocabProperty",
     "JsonProperty", "ListProperty", "ListRelationship", "Point", "Nope"]
)  # fmt: skip


def entity_values() -> st.SearchStrategy[Any]:
    scalar = SCALARS | ATTRIBUTE_TYPES | st.just("urn:ngsi-ld:Car:1")
    return st.recursive(
        scalar,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(ENTITY_KEYS | st.just("type"), inner, max_size=6)
        ),
        max_leaves=40,
    )


@FUZZ
@given(
    payload=entity_values()
    | st.fixed_dictionaries(
        {
            "id": st.just("urn:ngsi-ld:Car:1") | st.text(max_size=20),
            "type": TERMS | st.lists(TERMS),
        },
        optional={"name": entity_values(), "location": entity_values(), "speed": entity_values()},
    ),
    context=st.none() | context_values(),
)
# Found by this test: an attribute whose "type" is a list was a TypeError (a 500).
@example(
    payload={"id": "urn:ngsi-ld:Car:1", "type": "Car", "a": {"type": ["Property"]}}, context=None
)
# Found by this test too: a concise value whose "type" is a list was a TypeError (a 500).
@example(
    payload={"id": "urn:ngsi-ld:Car:1", "type": "Car", "name": {"value": {"type": []}}},
    context=None,
)
def test_any_entity_is_parsed_or_refused(payload: Any, context: Any) -> None:
    try:
        active = (
            core_context()
            if context is None
            else process_context(core_context(), context, loader_for({}))
        )
        parse_entity(payload, active)
    except NgsiError as exc:
        refuses_properly(exc)
