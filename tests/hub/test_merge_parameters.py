"""Merge Entity's own parameters (clause 5.6.17, the v1.8.1 OpenAPI's mergeEntity): a fragment
in the simplified representation (``format=keyValues``), the language of its texts (``lang``),
and the ``observedAt`` given to merged attributes that had one. Before, all three were accepted
and ignored: a keyValues fragment turned a Relationship into a Property holding its URI."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
E = "/ngsi-ld/v1/entities"
ID = "urn:ngsi-ld:ParkingSpot:merge-1"
AT = "2026-11-26T08:00:00Z"


@pytest.fixture
def spot(client: TestClient) -> TestClient:
    body = {
        "id": ID,
        "type": "ParkingSpot",
        "status": {"type": "Property", "value": "free", "observedAt": AT, "unitCode": "C62"},
        "name": {"type": "LanguageProperty", "languageMap": {"en": "Spot 1", "zh-Hant": "一號"}},
        "parkedCar": {"type": "Relationship", "object": "urn:ngsi-ld:Car:1"},
        "category": {"type": "VocabProperty", "vocab": "onStreet"},
        "meta": {"type": "JsonProperty", "json": {"a": 1}},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}},
        "note": {"type": "Property", "value": "no observedAt"},
    }
    assert client.post(E, json=body, headers=JSON).status_code == 201
    return client


def entity(client: TestClient) -> dict[str, Any]:
    r = client.get(f"{E}/{ID}")
    assert r.status_code == 200, r.text
    got: dict[str, Any] = r.json()
    return got


def merge(client: TestClient, body: dict[str, Any], **params: str) -> int:
    r = client.patch(f"{E}/{ID}", json=body, headers=JSON, params=params)
    assert r.status_code in (204, 400), r.text
    return r.status_code


def test_a_simplified_fragment_keeps_each_attribute_of_its_kind(spot: TestClient) -> None:
    fragment = {
        "status": "occupied",
        "parkedCar": "urn:ngsi-ld:Car:2",
        "category": "offStreet",
        "meta": {"b": 2},
        "location": {"type": "Point", "coordinates": [3, 4]},
        "newOne": 7,
    }
    assert merge(spot, fragment, format="keyValues") == 204
    got = entity(spot)
    # the value changed; the attribute's kind and its other members stayed
    assert got["status"] == {
        "type": "Property",
        "value": "occupied",
        "observedAt": AT,
        "unitCode": "C62",
    }
    assert got["parkedCar"] == {"type": "Relationship", "object": "urn:ngsi-ld:Car:2"}
    assert got["category"] == {"type": "VocabProperty", "vocab": "offStreet"}
    assert got["meta"] == {"type": "JsonProperty", "json": {"b": 2}}
    assert got["location"]["value"]["coordinates"] == [3, 4]
    assert got["newOne"] == {"type": "Property", "value": 7}  # new: read as concise


def test_the_deprecated_options_spelling_and_simplified_are_the_same(spot: TestClient) -> None:
    assert merge(spot, {"parkedCar": "urn:ngsi-ld:Car:3"}, options="keyValues") == 204
    assert entity(spot)["parkedCar"]["object"] == "urn:ngsi-ld:Car:3"
    assert merge(spot, {"parkedCar": "urn:ngsi-ld:Car:4"}, format="simplified") == 204
    assert entity(spot)["parkedCar"]["object"] == "urn:ngsi-ld:Car:4"


def test_without_a_format_the_fragment_is_concise_as_before(spot: TestClient) -> None:
    # (a bare value is a Property: the kind changes, as the concise representation says)
    assert merge(spot, {"parkedCar": "urn:ngsi-ld:Car:2"}) == 204
    assert entity(spot)["parkedCar"] == {"type": "Property", "value": "urn:ngsi-ld:Car:2"}


def test_a_text_in_lang_changes_that_language_only(spot: TestClient) -> None:
    assert merge(spot, {"name": "一号车位"}, format="keyValues", lang="zh-Hans") == 204
    assert entity(spot)["name"]["languageMap"] == {
        "en": "Spot 1",
        "zh-Hant": "一號",
        "zh-Hans": "一号车位",
    }
    assert merge(spot, {"name": "Bay 1"}, format="keyValues", lang="en") == 204
    assert entity(spot)["name"]["languageMap"]["en"] == "Bay 1"
    # no lang: the text without a language
    assert merge(spot, {"name": "P1"}, format="keyValues") == 204
    assert entity(spot)["name"]["languageMap"]["@none"] == "P1"
    # an object is the whole languageMap
    assert merge(spot, {"name": {"fr": "Place 1"}}, format="keyValues") == 204
    assert entity(spot)["name"]["languageMap"] == {"fr": "Place 1"}


def test_null_deletes_in_a_simplified_fragment(spot: TestClient) -> None:
    assert merge(spot, {"parkedCar": "urn:ngsi-ld:null"}, format="keyValues") == 204
    assert "parkedCar" not in entity(spot)


def test_observed_at_stamps_what_had_one_and_was_given_none(spot: TestClient) -> None:
    later = "2026-11-26T09:30:00Z"
    body = {"status": {"type": "Property", "value": "occupied"}, "note": "changed"}
    assert merge(spot, body, observedAt=later) == 204
    got = entity(spot)
    assert got["status"]["observedAt"] == later
    assert "observedAt" not in got["note"]  # it had none: none is added
    # an observedAt in the fragment wins over the parameter
    own = "2026-11-26T09:45:00Z"
    body = {"status": {"type": "Property", "value": "free", "observedAt": own}}
    assert merge(spot, body, observedAt="2026-11-26T10:00:00Z") == 204
    assert entity(spot)["status"]["observedAt"] == own
    # with a simplified fragment too
    assert merge(spot, {"status": "occupied"}, format="keyValues", observedAt=later) == 204
    assert entity(spot)["status"] == {
        "type": "Property",
        "value": "occupied",
        "observedAt": later,
        "unitCode": "C62",
    }


def test_the_observed_at_reaches_the_temporal_evolution(spot: TestClient) -> None:
    later = "2026-11-26T09:30:00Z"
    assert merge(spot, {"status": "occupied"}, format="keyValues", observedAt=later) == 204
    r = spot.get(f"/ngsi-ld/v1/temporal/entities/{ID}", params={"attrs": "status"})
    assert r.status_code == 200, r.text
    status = r.json()["status"]
    stamps = [i["observedAt"] for i in (status if isinstance(status, list) else [status])]
    assert later in stamps


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"observedAt": "yesterday"}, "observedAt"),
        ({"lang": "en,fr"}, "language tag"),
        ({"lang": "*"}, "language tag"),
        ({"format": "compact"}, "format"),
    ],
)
def test_bad_parameters_are_refused(spot: TestClient, params: dict[str, str], says: str) -> None:
    r = spot.patch(f"{E}/{ID}", json={"status": "x"}, headers=JSON, params=params)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    assert says in r.json()["detail"]
    assert entity(spot)["status"]["value"] == "free"  # nothing was written


def test_an_unknown_entity_is_404_with_a_simplified_fragment(client: TestClient) -> None:
    r = client.patch(
        f"{E}/urn:ngsi-ld:ParkingSpot:none", json={"status": "x"}, headers=JSON,
        params={"format": "keyValues"},
    )  # fmt: skip
    assert r.status_code == 404, r.text
