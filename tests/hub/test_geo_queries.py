"""Geo-queries over HTTP: near, within, intersects..., on an indexed GeoProperty."""

from __future__ import annotations

import json
from urllib.parse import quote

from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
# Real-ish Hong Kong places (lon, lat).
PLACES = {
    "central": (114.1588, 22.2819),
    "tsim-sha-tsui": (114.1722, 22.2975),
    "mong-kok": (114.1694, 22.3193),
    "sha-tin": (114.1889, 22.3817),
    "tung-chung": (113.9440, 22.2890),
}


def load(client: TestClient) -> None:
    batch = [
        {
            "id": f"urn:ngsi-ld:CarPark:{name}",
            "type": "CarPark",
            "location": {
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": list(xy)},
            },
        }
        for name, xy in PLACES.items()
    ]
    batch.append(
        {
            "id": "urn:ngsi-ld:Road:nathan",
            "type": "Road",
            "location": {
                "type": "GeoProperty",
                "value": {
                    "type": "LineString",
                    "coordinates": [[114.1722, 22.2975], [114.1694, 22.3193]],
                },
            },
        }
    )
    assert (
        client.post("/ngsi-ld/v1/entityOperations/create", json=batch, headers=JSON).status_code
        == 201
    )


def ids(client: TestClient, **params: str) -> list[str]:
    query = "&".join(f"{k}={quote(v)}" for k, v in params.items())
    r = client.get(f"/ngsi-ld/v1/entities?{query}&limit=100")
    assert r.status_code == 200, r.text
    return sorted(e["id"].rsplit(":", 1)[1] for e in r.json())


def test_near_max_distance(client: TestClient) -> None:
    load(client)
    central = json.dumps(list(PLACES["central"]))
    # Tsim Sha Tsui is about 2.2 km from Central across the harbour.
    assert ids(
        client,
        type="CarPark",
        georel="near;maxDistance==1000",
        geometry="Point",
        coordinates=central,
    ) == ["central"]
    assert ids(
        client,
        type="CarPark",
        georel="near;maxDistance==2500",
        geometry="Point",
        coordinates=central,
    ) == ["central", "tsim-sha-tsui"]
    far = ids(
        client,
        type="CarPark",
        georel="near;minDistance==10000",
        geometry="Point",
        coordinates=central,
    )
    assert far == ["sha-tin", "tung-chung"]


def test_within_polygon_and_intersects(client: TestClient) -> None:
    load(client)
    kowloon = [
        [[114.15, 22.29], [114.20, 22.29], [114.20, 22.34], [114.15, 22.34], [114.15, 22.29]]
    ]
    within = ids(client, georel="within", geometry="Polygon", coordinates=json.dumps(kowloon))
    assert within == ["mong-kok", "nathan", "tsim-sha-tsui"]
    crossing = [[114.16, 22.31], [114.18, 22.31]]
    assert ids(
        client, georel="intersects", geometry="LineString", coordinates=json.dumps(crossing)
    ) == ["nathan"]
    disjoint = ids(
        client,
        type="CarPark",
        georel="disjoint",
        geometry="Polygon",
        coordinates=json.dumps(kowloon),
    )
    assert disjoint == ["central", "sha-tin", "tung-chung"]


def test_geo_query_counts_and_pages_after_exact_filtering(client: TestClient) -> None:
    load(client)
    box = [[[113.9, 22.2], [114.3, 22.2], [114.3, 22.4], [113.9, 22.4], [113.9, 22.2]]]
    r = client.get(
        "/ngsi-ld/v1/entities?type=CarPark&georel=within&geometry=Polygon"
        f"&coordinates={quote(json.dumps(box))}&limit=2&offset=1&count=true"
    )
    assert r.headers["ngsild-results-count"] == "5"
    assert len(r.json()) == 2


def test_geo_index_follows_updates_and_deletes(client: TestClient) -> None:
    load(client)
    central = json.dumps(list(PLACES["central"]))
    near = {"georel": "near;maxDistance==500", "geometry": "Point", "coordinates": central}
    url = "/ngsi-ld/v1/entities/urn:ngsi-ld:CarPark:sha-tin/attrs/location"
    moved = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [114.1590, 22.2820]}}
    assert client.put(url, json=moved, headers=JSON).status_code == 204
    assert ids(client, type="CarPark", **near) == ["central", "sha-tin"]
    client.delete("/ngsi-ld/v1/entities/urn:ngsi-ld:CarPark:central")
    assert ids(client, type="CarPark", **near) == ["sha-tin"]


def test_geoproperty_other_than_location(client: TestClient) -> None:
    body = {
        "id": "urn:ngsi-ld:Zone:1",
        "type": "Zone",
        "location": {"type": "Point", "coordinates": [0.0, 0.0]},
        "serviceArea": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": list(PLACES["central"])},
        },
    }
    client.post("/ngsi-ld/v1/entities", json=body, headers=JSON)
    central = json.dumps(list(PLACES["central"]))
    near = {"georel": "near;maxDistance==100", "geometry": "Point", "coordinates": central}
    assert ids(client, **near) == []
    assert ids(client, geoproperty="serviceArea", **near) == ["1"]


def test_bad_geo_queries_are_400(client: TestClient) -> None:
    for query in [
        "georel=near;maxDistance==100&geometry=Point",  # no coordinates
        "georel=nearby&geometry=Point&coordinates=[1,2]",
        "georel=within&geometry=Point&coordinates=[1,2",
        "georel=within&geometry=Polygon&coordinates=[[[1,2],[3,4]]]",
        "georel=near;maxDistance==100&geometry=Point&coordinates=[200,95]",
    ]:
        r = client.get(f"/ngsi-ld/v1/entities?{query}")
        assert r.status_code == 400, (query, r.text)
        assert r.json()["detail"]
