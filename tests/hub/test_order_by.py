"""orderBy on GET /entities and POST /entityOperations/query: parser and ordering."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from smartcity.hub.errors import BadRequestData
from smartcity.hub.query.order import SortKey, parse_order_by

JSON = {"Content-Type": "application/json"}
ENTITIES = "/ngsi-ld/v1/entities"

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,8}", fullmatch=True)
paths = st.one_of(
    st.sampled_from([("id",), ("type",), ("createdAt",), ("modifiedAt",)]),
    st.lists(names, min_size=1, max_size=3).map(tuple),
)
keys = st.builds(SortKey, paths, st.booleans())


@given(st.lists(keys, min_size=1, max_size=8))
def test_parse_round_trips(order: list[SortKey]) -> None:
    text = ",".join(str(k) for k in order)
    assert parse_order_by(text) == order


@given(st.text(max_size=30))
def test_parser_answers_or_refuses_cleanly(text: str) -> None:
    try:
        parsed = parse_order_by(text)
    except BadRequestData:
        return
    assert parsed and all(k.path for k in parsed)


def test_explicit_asc_is_the_default() -> None:
    assert parse_order_by("a.b;asc,id;desc") == [SortKey(("a", "b")), SortKey(("id",), True)]


@pytest.mark.parametrize(
    "text", ["", ",", "a;up", "a;;desc", "a..b", "a,", ";desc", "na$me", "a,b,c,d,e,f,g,h,i"]
)
def test_bad_order_by_is_refused(text: str) -> None:
    with pytest.raises(BadRequestData):
        parse_order_by(text)


SHOPS = [
    ("urn:ngsi-ld:Shop:b", {"rating": 4, "address": {"value": "x", "city": "Oslo"}}),
    ("urn:ngsi-ld:Shop:a", {"rating": 5, "address": {"value": "x", "city": "Bergen"}}),
    ("urn:ngsi-ld:Shop:d", {"rating": 4, "address": {"value": "x", "city": "Alta"}}),
    ("urn:ngsi-ld:Shop:c", {"address": {"value": "x", "city": "Zug"}}),
]


@pytest.fixture
def shops(client: TestClient) -> TestClient:
    for entity_id, attrs in SHOPS:
        body: dict[str, object] = {"id": entity_id, "type": "Shop"}
        if "rating" in attrs:
            body["rating"] = attrs["rating"]
        address = attrs["address"]
        assert isinstance(address, dict)
        body["address"] = {
            "type": "Property",
            "value": address["value"],
            "city": {"type": "Property", "value": address["city"]},
        }
        assert client.post(ENTITIES, json=body, headers=JSON).status_code == 201
    return client


def _order(client: TestClient, order_by: str, **extra: str) -> list[str]:
    r = client.get(ENTITIES, params={"type": "Shop", "orderBy": order_by, **extra})
    assert r.status_code == 200, r.text
    return [e["id"][-1] for e in r.json()]


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ("id", "abcd"),
        ("id;desc", "dcba"),
        ("rating", "bdac"),  # ties keep insertion order; no rating comes last
        ("rating;desc", "abdc"),
        ("rating;desc,id;desc", "adbc"),
        ("address.city", "dabc"),
        ("address.city;desc", "cbad"),
    ],
)
def test_get_orders_results(shops: TestClient, order_by: str, expected: str) -> None:
    assert "".join(_order(shops, order_by)) == expected


def test_order_applies_before_paging(shops: TestClient) -> None:
    assert _order(shops, "rating;desc", limit="2", offset="1") == ["b", "d"]
    r = shops.get(ENTITIES, params={"type": "Shop", "orderBy": "id", "limit": 1, "count": "true"})
    assert r.headers["NGSILD-Results-Count"] == "4" and r.json()[0]["id"].endswith("a")


def test_post_query_orders_too(shops: TestClient) -> None:
    body = {"type": "Query", "entities": [{"type": "Shop"}], "orderBy": "address.city"}
    r = shops.post("/ngsi-ld/v1/entityOperations/query", json=body, headers=JSON)
    assert r.status_code == 200, r.text
    assert [e["id"][-1] for e in r.json()] == list("dabc")
    r = shops.post(
        "/ngsi-ld/v1/entityOperations/query?orderBy=id;desc",
        json={"type": "Query", "entities": [{"type": "Shop"}]},
        headers=JSON,
    )
    assert [e["id"][-1] for e in r.json()] == list("dcba")


def test_bad_order_by_over_http_is_bad_request_data(shops: TestClient) -> None:
    r = shops.get(ENTITIES, params={"type": "Shop", "orderBy": "rating;sideways"})
    assert r.status_code == 400 and r.json()["type"].endswith("BadRequestData")
