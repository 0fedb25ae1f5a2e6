"""Linked Entity Retrieval over HTTP: join=inline|flat, joinLevel, nested pick/omit (4.5.23)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
E = "/ngsi-ld/v1/entities"
BUILDING = "urn:ngsi-ld:Building:1"
CITY = "urn:ngsi-ld:City:Paris"
COUNTRY = "urn:ngsi-ld:Country:France"


def rel(target: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Relationship", "object": target, **extra}


def prop(value: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value}


def building(**attrs: Any) -> dict[str, Any]:
    return {"id": BUILDING, "type": "Building", "locatedAt": rel(CITY), **attrs}


def city(**attrs: Any) -> dict[str, Any]:
    return {
        "id": CITY,
        "type": "City",
        "name": prop("Paris"),
        "isInCountry": rel(COUNTRY),
        **attrs,
    }


def country() -> dict[str, Any]:
    return {"id": COUNTRY, "type": "Country", "name": prop("France"), "pop": prop(68)}


def create(client: TestClient, *entities: dict[str, Any]) -> None:
    for entity in entities:
        r = client.post(E, json=entity, headers=JSON)
        assert r.status_code == 201, r.text


@pytest.fixture
def graph(client: TestClient) -> TestClient:
    create(client, building(), city(), country())
    return client


def get(client: TestClient, path: str, **params: str) -> Any:
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_inline_embeds_the_target_in_the_relationship(graph: TestClient) -> None:
    got = get(graph, f"{E}/{BUILDING}", join="inline")
    assert got["locatedAt"] == {**rel(CITY), "entity": city()}  # joinLevel defaults to 1


def test_inline_follows_links_down_to_join_level(graph: TestClient) -> None:
    got = get(graph, f"{E}/{BUILDING}", join="inline", joinLevel="2")
    inner = got["locatedAt"]["entity"]["isInCountry"]
    assert inner == {**rel(COUNTRY), "entity": country()}


def test_flat_returns_the_linked_entities_as_members_of_an_array(graph: TestClient) -> None:
    got = get(graph, f"{E}/{BUILDING}", join="flat", joinLevel="2")
    assert got == [building(), city(), country()]


def test_query_inline_and_flat(graph: TestClient) -> None:
    inline = get(graph, E, type="Building", join="inline")
    assert inline == [{**building(), "locatedAt": {**rel(CITY), "entity": city()}}]
    flat = get(graph, E, type="Building,City", join="flat", joinLevel="2")
    # The City is a result of its own: it appears once, the Country joins it.
    assert [e["id"] for e in flat] == [BUILDING, CITY, COUNTRY]


def test_key_values_inline_replaces_the_reference_by_the_entity(graph: TestClient) -> None:
    got = get(graph, f"{E}/{BUILDING}", join="inline", joinLevel="2", options="keyValues")
    assert got == {
        "id": BUILDING,
        "type": "Building",
        "locatedAt": {
            "id": CITY,
            "type": "City",
            "name": "Paris",
            "isInCountry": {"id": COUNTRY, "type": "Country", "name": "France", "pop": 68},
        },
    }


def test_linked_entities_share_the_parent_options(graph: TestClient) -> None:
    got = get(graph, f"{E}/{BUILDING}", join="inline", options="sysAttrs")
    assert "createdAt" in got["locatedAt"]["entity"]
    flat = get(graph, f"{E}/{BUILDING}", join="flat", options="sysAttrs")
    assert all("createdAt" in e for e in flat)
    concise = get(graph, f"{E}/{BUILDING}", join="inline", format="concise")
    assert concise["locatedAt"]["entity"]["name"] == "Paris"


def test_missing_target_is_left_as_a_reference(client: TestClient) -> None:
    create(client, building())
    for join in ("inline", "flat"):
        # No linked entity found: the entity alone, as an object (ETSI 018_14).
        assert get(client, f"{E}/{BUILDING}", join=join) == building()


def test_loops_stop(client: TestClient) -> None:
    create(client, building(), city(isInCountry=rel(BUILDING)))
    inline = get(client, f"{E}/{BUILDING}", join="inline", joinLevel="5")
    back = inline["locatedAt"]["entity"]["isInCountry"]
    assert back == rel(BUILDING)  # A -> B -> A: the way back is not followed
    flat = get(client, f"{E}/{BUILDING}", join="flat", joinLevel="5")
    assert [e["id"] for e in flat] == [BUILDING, CITY]


def test_multi_object_and_list_relationships(client: TestClient) -> None:
    lyon = {"id": "urn:ngsi-ld:City:Lyon", "type": "City"}
    create(
        client,
        lyon,
        {"id": CITY, "type": "City"},
        {
            "id": BUILDING,
            "type": "Building",
            "locatedAt": rel([CITY, lyon["id"]]),
            "route": {"type": "ListRelationship", "objectList": [lyon["id"], "urn:x:gone"]},
        },
    )
    got = get(client, f"{E}/{BUILDING}", join="inline")
    assert got["locatedAt"]["entity"] == [{"id": CITY, "type": "City"}, lyon]
    assert got["route"]["entityList"] == [lyon]
    kv = get(client, f"{E}/{BUILDING}", join="inline", options="keyValues")
    assert kv["locatedAt"] == [{"id": CITY, "type": "City"}, lyon]
    assert kv["route"] == [lyon, "urn:x:gone"]


def test_object_type_selects_the_linked_entity(client: TestClient) -> None:
    create(client, building(locatedAt=rel(CITY, objectType="Country")), city())
    assert "entity" not in get(client, f"{E}/{BUILDING}", join="inline")["locatedAt"]
    client.patch(f"{E}/{BUILDING}/attrs/locatedAt", json=rel(CITY, objectType="City"))
    assert "entity" in get(client, f"{E}/{BUILDING}", join="inline")["locatedAt"]


def test_pick_with_braces_projects_the_linked_entity(graph: TestClient) -> None:
    got = get(graph, f"{E}/{BUILDING}", join="inline", joinLevel="2", pick="id,locatedAt{id,name}")
    # isInCountry is not picked on the City, so the Country is not fetched either.
    assert got == {
        "id": BUILDING,
        "locatedAt": {**rel(CITY), "entity": {"id": CITY, "name": prop("Paris")}},
    }
    flat = get(graph, f"{E}/{BUILDING}", join="flat", joinLevel="2", pick="locatedAt")
    assert flat == [{"locatedAt": rel(CITY)}, city(), country()]  # no braces: whole entities


def test_omit_with_braces_keeps_the_relationship(graph: TestClient) -> None:
    got = get(
        graph,
        E,
        type="Building",
        join="flat",
        joinLevel="2",
        omit="type,locatedAt{name,isInCountry{pop}}",
    )
    assert got == [
        {"id": BUILDING, "locatedAt": rel(CITY)},
        {"id": CITY, "type": "City", "isInCountry": rel(COUNTRY)},
        {"id": COUNTRY, "type": "Country", "name": prop("France")},
    ]


def test_post_query_takes_join_in_the_body(graph: TestClient) -> None:
    body = {"type": "Query", "entities": [{"type": "Building"}], "join": "flat", "joinLevel": 2}
    r = graph.post("/ngsi-ld/v1/entityOperations/query", json=body, headers=JSON)
    assert r.status_code == 200, r.text
    assert [e["id"] for e in r.json()] == [BUILDING, CITY, COUNTRY]
    r = graph.post(
        "/ngsi-ld/v1/entityOperations/query",
        json={**body, "joinLevel": "2"},
        headers=JSON,
    )
    assert r.status_code == 400


def test_linked_entities_stay_in_the_tenant(client: TestClient) -> None:
    create(client, building())
    r = client.post(E, json=city(), headers={**JSON, "NGSILD-Tenant": "other"})
    assert r.status_code == 201
    assert get(client, f"{E}/{BUILDING}", join="inline") == building()


@pytest.mark.parametrize(
    "params",
    [
        {"join": "foo"},
        {"join": "inline", "joinLevel": "0"},
        {"join": "inline", "joinLevel": "-1"},
        {"join": "inline", "joinLevel": "1.5"},
        {"join": "flat", "joinLevel": "99"},
        {"joinLevel": "abc"},
        {"pick": "id,locatedAt{name"},
        {"pick": "id,locatedAt{{name}"},
        {"pick": "id,,name"},
        {"pick": "id,locatedAt{,name}"},
        {"pick": "id,locatedAt{}"},
        {"omit": "name}"},
    ],
)
def test_bad_join_and_projection_are_400(graph: TestClient, params: dict[str, str]) -> None:
    for path in (f"{E}/{BUILDING}", E + "?type=Building"):
        r = graph.get(path, params=params)
        assert r.status_code == 400, (path, params, r.text)
        assert r.json()["type"] == ERR + "BadRequestData"


def test_join_level_without_join_is_ignored(graph: TestClient) -> None:
    assert get(graph, f"{E}/{BUILDING}", joinLevel="2") == building()
    assert get(graph, f"{E}/{BUILDING}", join="@none", joinLevel="2") == building()


def test_targets_are_loaded_with_one_query_per_level(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        create(
            client,
            {"id": f"urn:ngsi-ld:Building:{n}", "type": "Building", "locatedAt": rel(f"{CITY}{n}")},
            {"id": f"{CITY}{n}", "type": "City", "isInCountry": rel(COUNTRY)},
        )
    create(client, country())
    service = client.app.state.hub.entities  # type: ignore[attr-defined]
    calls: list[Any] = []
    find = service.find

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1])
        return find(*args, **kwargs)

    monkeypatch.setattr(service, "find", counting)
    got = get(client, E, type="Building", join="flat", joinLevel="3")
    assert len(got) == 3 + 3 + 1
    # The query itself, then the three cities at once, then the country; level 3 finds no
    # link left to follow and costs nothing.
    assert [list(q.ids or []) for q in calls[1:]] == [[f"{CITY}{n}" for n in range(3)], [COUNTRY]]


def test_geojson_flat_query_has_a_feature_per_entity(graph: TestClient) -> None:
    r = graph.get(
        E,
        params={"type": "Building", "join": "flat", "joinLevel": "2"},
        headers={"Accept": "application/geo+json"},
    )
    assert r.status_code == 200, r.text
    assert [f["id"] for f in r.json()["features"]] == [BUILDING, CITY, COUNTRY]


def test_temporal_query_refuses_join(graph: TestClient) -> None:
    body = {
        "type": "Query",
        "entities": [{"type": "Building"}],
        "temporalQ": {"timerel": "after", "timeAt": "2020-01-01T00:00:00Z"},
        "join": "inline",
    }
    r = graph.post("/ngsi-ld/v1/temporal/entityOperations/query", json=body, headers=JSON)
    assert r.status_code == 400
    assert "join" in r.json()["detail"]


def test_flat_lists_a_target_named_twice_once(client: TestClient) -> None:
    create(
        client,
        {"id": CITY, "type": "City"},
        {"id": BUILDING, "type": "Building", "locatedAt": rel([CITY, CITY]), "near": rel(CITY)},
    )
    got = get(client, f"{E}/{BUILDING}", join="flat")
    assert [e["id"] for e in got] == [BUILDING, CITY]
