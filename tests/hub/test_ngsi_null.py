"""What is accepted reads back, and NGSI-LD Null (urn:ngsi-ld:null) deletes (clause 4.5.x).

Every update path (merge-patch, update attributes, partial attribute update, append, batch
update) deletes an attribute instance whose value is NGSI-LD Null, in the form its type spells
it; a JsonProperty's JSON holding nulls is data.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
ENTITIES = "/ngsi-ld/v1/entities"
EID = "urn:ngsi-ld:Building:1"
NULL = "urn:ngsi-ld:null"


def building() -> dict[str, Any]:
    return {
        "id": EID,
        "type": "Building",
        "name": [
            {"type": "Property", "value": "Tower"},
            {"type": "Property", "value": "Turm", "datasetId": "urn:ngsi-ld:Dataset:de"},
        ],
        "locatedAt": [
            {"type": "Relationship", "object": "urn:ngsi-ld:City:1"},
            {"type": "Relationship", "object": "urn:ngsi-ld:City:2", "datasetId": "urn:d:2"},
        ],
        "location": [
            {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}},
            {
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": [3, 4]},
                "datasetId": "urn:d:2",
            },
        ],
        "street": [
            {"type": "LanguageProperty", "languageMap": {"en": "Main St"}},
            {"type": "LanguageProperty", "languageMap": {"de": "Hauptstr"}, "datasetId": "urn:d:2"},
        ],
        "height": {
            "type": "Property",
            "value": 30,
            "unitCode": "MTR",
            "accuracy": {"type": "Property", "value": 0.5},
        },
        "config": {"type": "JsonProperty", "json": {"a": None, "b": [None, 1]}},
    }


NULLS = {
    "name": {"type": "Property", "value": NULL},
    "locatedAt": {"type": "Relationship", "object": NULL},
    "location": {"type": "GeoProperty", "value": NULL},
    "street": {"type": "LanguageProperty", "languageMap": {"@none": NULL}},
}


@pytest.fixture
def created(client: TestClient) -> TestClient:
    r = client.post(ENTITIES, json=building(), headers=JSON)
    assert r.status_code == 201, r.text
    return client


def _entity(client: TestClient) -> dict[str, Any]:
    r = client.get(f"{ENTITIES}/{EID}")
    assert r.status_code == 200, r.text
    return r.json()


def _datasets(entity: dict[str, Any], name: str) -> list[str | None]:
    value = entity.get(name)
    if value is None:
        return []
    instances = value if isinstance(value, list) else [value]
    return [i.get("datasetId") for i in instances]


@pytest.mark.parametrize("name", sorted(NULLS))
@pytest.mark.parametrize("dataset", [None, "urn:d:2x"])
@pytest.mark.parametrize("how", ["merge", "update", "partial"])
def test_null_deletes_only_the_instance_with_its_dataset_id(
    created: TestClient, name: str, dataset: str | None, how: str
) -> None:
    other = {"name": "urn:ngsi-ld:Dataset:de"}.get(name, "urn:d:2")
    dataset = other if dataset else None
    fragment = dict(NULLS[name], **({"datasetId": dataset} if dataset else {}))
    if how == "merge":
        r = created.patch(f"{ENTITIES}/{EID}", json={name: fragment}, headers=JSON)
    elif how == "update":
        r = created.patch(f"{ENTITIES}/{EID}/attrs", json={name: fragment}, headers=JSON)
    else:
        r = created.patch(f"{ENTITIES}/{EID}/attrs/{name}", json=fragment, headers=JSON)
    assert r.status_code == 204, r.text
    remaining = [None, other]
    remaining.remove(dataset)
    assert _datasets(_entity(created), name) == remaining
    assert _entity(created)["height"]["value"] == 30  # the others stay


def test_concise_null_deletes_a_property_through_merge(created: TestClient) -> None:
    r = created.patch(f"{ENTITIES}/{EID}", json={"height": NULL}, headers=JSON)
    assert r.status_code == 204, r.text
    assert "height" not in _entity(created)


def test_null_sub_attribute_is_deleted_and_the_entity_reads_back(created: TestClient) -> None:
    fragment = {"value": 31, "accuracy": {"type": "Property", "value": NULL}, "unitCode": NULL}
    r = created.patch(f"{ENTITIES}/{EID}/attrs/height", json=fragment, headers=JSON)
    assert r.status_code == 204, r.text
    assert _entity(created)["height"] == {"type": "Property", "value": 31}


def test_a_type_change_without_a_value_is_refused_and_the_entity_still_reads(
    created: TestClient,
) -> None:
    r = created.patch(f"{ENTITIES}/{EID}/attrs/height", json={"type": "Relationship"}, headers=JSON)
    assert r.status_code == 400, r.text
    assert r.json()["type"].endswith("BadRequestData")
    assert _entity(created)["height"]["value"] == 30


def test_json_property_nulls_are_data(created: TestClient) -> None:
    assert _entity(created)["config"]["json"] == {"a": None, "b": [None, 1]}
    patch = {"config": {"type": "JsonProperty", "json": {"c": None}}}
    assert created.patch(f"{ENTITIES}/{EID}", json=patch, headers=JSON).status_code == 204
    assert _entity(created)["config"]["json"] == {"c": None}


def test_null_in_append_and_batch_update_deletes(created: TestClient) -> None:
    r = created.post(f"{ENTITIES}/{EID}/attrs", json={"height": NULLS["name"]}, headers=JSON)
    assert r.status_code == 204, r.text
    batch = [{"id": EID, "type": "Building", "street": NULLS["street"]}]
    r = created.post("/ngsi-ld/v1/entityOperations/update", json=batch, headers=JSON)
    assert r.status_code == 204, r.text
    entity = _entity(created)
    assert "height" not in entity
    assert _datasets(entity, "street") == ["urn:d:2"]


def test_null_in_a_create_stores_nothing(client: TestClient) -> None:
    body = {"id": EID, "type": "Building", "name": NULLS["name"], "h": 1}
    assert client.post(ENTITIES, json=body, headers=JSON).status_code == 201
    assert "name" not in _entity(client)
