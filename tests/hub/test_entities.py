"""Entities over HTTP: create, retrieve, query, update, delete (clauses 5.6, 5.7)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
LD = {"Content-Type": "application/ld+json"}
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
REL = "http://www.w3.org/ns/json-ld#context"


def parking(n: int = 1, spots: int = 120, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:OffStreetParking:{n}",
        "type": "OffStreetParking",
        "availableSpotNumber": {
            "type": "Property",
            "value": spots,
            "observedAt": "2026-11-26T08:00:00Z",
            "reliability": {"type": "Property", "value": 0.9},
        },
        "name": {
            "type": "LanguageProperty",
            "languageMap": {"en": "Star Ferry", "zh-Hant": "天星碼頭"},
        },
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [114.16, 22.28]},
        },
        "refOperator": {"type": "Relationship", "object": "urn:ngsi-ld:Organization:TD"},
        **extra,
    }


def test_create_then_retrieve_returns_the_same_entity(client: TestClient) -> None:
    r = client.post("/ngsi-ld/v1/entities", json=parking(), headers=JSON)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:1"
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:1")
    assert got.status_code == 200
    assert got.json() == parking()
    assert CORE in got.headers["link"]


def test_duplicate_create_is_409_already_exists(client: TestClient) -> None:
    client.post("/ngsi-ld/v1/entities", json=parking(), headers=JSON)
    r = client.post("/ngsi-ld/v1/entities", json=parking(), headers=JSON)
    assert r.status_code == 409
    assert r.json()["type"] == ERR + "AlreadyExists"
    assert "urn:ngsi-ld:OffStreetParking:1" in r.json()["detail"]


def test_missing_entity_is_404_with_problem_details(client: TestClient) -> None:
    r = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:X:404")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["type"] == ERR + "ResourceNotFound"


def test_bad_payloads_are_400_naming_the_problem(client: TestClient) -> None:
    cases = [
        ({"type": "T"}, "id"),
        ({"id": "not a uri", "type": "T"}, "URI"),
        ({"id": "urn:x:1"}, "type"),
        ({"id": "urn:x:1", "type": "T", "a": {"type": "Property"}}, "value"),
        ({"id": "urn:x:1", "type": "T", "a": {"type": "Relationship", "object": 5}}, "object"),
        ({"id": "urn:x:1", "type": "T", "a": {"type": "Strange", "value": 1}}, "Strange"),
        (
            {"id": "urn:x:1", "type": "T", "a": {"value": 1, "observedAt": "yesterday"}},
            "observedAt",
        ),
        ({"id": "urn:x:1", "type": "T", "a=b": 1}, "forbidden"),
    ]
    for body, word in cases:
        r = client.post("/ngsi-ld/v1/entities", json=body, headers=JSON)
        assert r.status_code == 400, (body, r.text)
        assert word in r.json()["detail"], (word, r.json())


def test_media_types_and_malformed_json(client: TestClient) -> None:
    r = client.post("/ngsi-ld/v1/entities", content=b"{not json", headers=JSON)
    assert r.status_code == 400 and r.json()["type"] == ERR + "InvalidRequest"
    r = client.post("/ngsi-ld/v1/entities", content=b"{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    # application/ld+json needs @context in the body; application/json must not have one.
    r = client.post("/ngsi-ld/v1/entities", json=parking(), headers=LD)
    assert r.status_code == 400 and "@context" in r.json()["detail"]
    r = client.post("/ngsi-ld/v1/entities", json={**parking(), "@context": CORE}, headers=JSON)
    assert r.status_code == 400


def test_json_depth_and_size_limits(client: TestClient) -> None:
    deep: Any = 1
    for _ in range(100):
        deep = {"a": deep}
    r = client.post(
        "/ngsi-ld/v1/entities",
        json={"id": "urn:x:1", "type": "T", "p": {"value": deep}},
        headers=JSON,
    )
    assert r.status_code == 400 and "deeper" in r.json()["detail"]
    big = b'{"id": "urn:x:1", "type": "T", "p": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    r = client.post("/ngsi-ld/v1/entities", content=big, headers=JSON)
    assert r.status_code == 413


def test_concise_input_is_understood_and_normalized_output(client: TestClient) -> None:
    body = {
        "id": "urn:ngsi-ld:Sensor:c1",
        "type": "Sensor",
        "temperature": 21.5,
        "humidity": {"value": 60, "unitCode": "P1"},
        "controlledBy": {"object": "urn:ngsi-ld:Device:1"},
        "location": {"type": "Point", "coordinates": [114.1, 22.3]},
        "label": {"languageMap": {"en": "Lab"}},
    }
    assert client.post("/ngsi-ld/v1/entities", json=body, headers=JSON).status_code == 201
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:c1").json()
    assert got["temperature"] == {"type": "Property", "value": 21.5}
    assert got["humidity"] == {"type": "Property", "value": 60, "unitCode": "P1"}
    assert got["controlledBy"] == {"type": "Relationship", "object": "urn:ngsi-ld:Device:1"}
    assert got["location"]["type"] == "GeoProperty"
    assert got["label"]["type"] == "LanguageProperty"
    concise = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:c1?options=concise").json()
    assert concise["temperature"] == 21.5
    assert concise["controlledBy"] == {"object": "urn:ngsi-ld:Device:1"}
    # Concise output read back gives the same entity.
    client.delete("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:c1")
    assert client.post("/ngsi-ld/v1/entities", json=concise, headers=JSON).status_code == 201
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:c1").json() == got


def test_a_concise_value_whose_type_is_not_a_name_is_data(client: TestClient) -> None:
    """A concise value that is an object with a "type" member is a Property's value unless that
    type names a geometry (found by the fuzz test: a list there was a 500)."""
    body = {
        "id": "urn:ngsi-ld:Sensor:c2",
        "type": "Sensor",
        "label": {"value": {"type": []}},
        "location": {"value": {"type": ["Point"], "coordinates": [114.1, 22.3]}},
    }
    assert client.post("/ngsi-ld/v1/entities", json=body, headers=JSON).status_code == 201
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:c2").json()
    assert got["label"] == {"type": "Property", "value": {"type": []}}
    assert got["location"]["type"] == "Property"


def test_key_values_and_sys_attrs_and_lang(client: TestClient) -> None:
    client.post("/ngsi-ld/v1/entities", json=parking(), headers=JSON)
    kv = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:1?options=keyValues").json()
    assert kv["availableSpotNumber"] == 120
    assert kv["refOperator"] == "urn:ngsi-ld:Organization:TD"
    sys = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:1?options=sysAttrs").json()
    assert sys["createdAt"].endswith("Z") and sys["modifiedAt"].endswith("Z")
    assert "createdAt" in sys["availableSpotNumber"]
    zh = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:1?lang=zh-Hant").json()
    assert zh["name"] == {"type": "Property", "value": "天星碼頭", "lang": "zh-Hant"}


def test_user_context_by_link_header_expands_and_compacts(client: TestClient) -> None:
    ctx = {
        "@context": {"Parking": "https://example.org/Parking", "spots": "https://example.org/spots"}
    }
    client.app.state.hub.contexts.add("https://example.org/ctx.jsonld", ctx)  # type: ignore[attr-defined]
    link = {"Link": f'<https://example.org/ctx.jsonld>; rel="{REL}"; type="application/ld+json"'}
    body = {"id": "urn:ngsi-ld:Parking:9", "type": "Parking", "spots": 3}
    assert (
        client.post("/ngsi-ld/v1/entities", json=body, headers={**JSON, **link}).status_code == 201
    )
    # Without the context, names come back as full IRIs; with it, as the short terms.
    bare = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Parking:9").json()
    assert bare["type"] == "https://example.org/Parking"
    assert "https://example.org/spots" in bare
    short = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Parking:9", headers=link)
    assert short.json()["type"] == "Parking" and short.json()["spots"]["value"] == 3
    assert "https://example.org/ctx.jsonld" in short.headers["link"]
    # Query by the short type name needs the same context.
    assert len(client.get("/ngsi-ld/v1/entities?type=Parking", headers=link).json()) == 1
    assert client.get("/ngsi-ld/v1/entities?type=Parking").json() == []
    ld = client.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Parking:9",
        headers={**link, "Accept": "application/ld+json"},
    ).json()
    assert ld["@context"] == "https://example.org/ctx.jsonld"


def test_inline_context_in_ld_json_body(client: TestClient) -> None:
    body = {
        "@context": [{"spots": "https://example.org/spots"}, CORE],
        "id": "urn:ngsi-ld:Parking:10",
        "type": "https://example.org/Parking",
        "spots": {"type": "Property", "value": 1},
    }
    assert client.post("/ngsi-ld/v1/entities", json=body, headers=LD).status_code == 201
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Parking:10").json()
    assert got["https://example.org/spots"]["value"] == 1


def test_unreachable_remote_context_is_a_clean_503(client: TestClient) -> None:
    link = {
        "Link": '<http://127.0.0.1:9/nothing.jsonld>; rel="http://www.w3.org/ns/json-ld#context"'
    }
    r = client.post(
        "/ngsi-ld/v1/entities", json={"id": "urn:x:1", "type": "T"}, headers={**JSON, **link}
    )
    assert r.status_code == 503
    assert r.json()["type"] == ERR + "LdContextNotAvailable"
    assert "contexts add" in r.json()["detail"]


def test_query_by_type_id_attrs_with_paging_and_count(client: TestClient) -> None:
    for n in range(1, 8):
        client.post("/ngsi-ld/v1/entities", json=parking(n, spots=n), headers=JSON)
    client.post(
        "/ngsi-ld/v1/entities",
        json={"id": "urn:ngsi-ld:Bin:1", "type": "WasteContainer", "fillingLevel": 0.5},
        headers=JSON,
    )
    r = client.get("/ngsi-ld/v1/entities?type=OffStreetParking&limit=3&offset=2&count=true")
    assert r.status_code == 200
    assert [e["id"] for e in r.json()] == [f"urn:ngsi-ld:OffStreetParking:{n}" for n in (3, 4, 5)]
    assert r.headers["ngsild-results-count"] == "7"
    r = client.get("/ngsi-ld/v1/entities?type=OffStreetParking,WasteContainer&count=true&limit=0")
    assert r.json() == [] and r.headers["ngsild-results-count"] == "8"
    r = client.get("/ngsi-ld/v1/entities?id=urn:ngsi-ld:OffStreetParking:2,urn:ngsi-ld:Bin:1")
    assert {e["id"] for e in r.json()} == {"urn:ngsi-ld:OffStreetParking:2", "urn:ngsi-ld:Bin:1"}
    r = client.get("/ngsi-ld/v1/entities?idPattern=^urn:ngsi-ld:OffStreetParking:[12]$")
    assert len(r.json()) == 2
    r = client.get("/ngsi-ld/v1/entities?attrs=fillingLevel")
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Bin:1"]
    r = client.get("/ngsi-ld/v1/entities?type=OffStreetParking&attrs=availableSpotNumber&limit=1")
    assert set(r.json()[0]) == {"id", "type", "availableSpotNumber"}
    r = client.get("/ngsi-ld/v1/entities?type=OffStreetParking&pick=id,name&limit=1")
    assert set(r.json()[0]) == {"id", "name"}
    r = client.get("/ngsi-ld/v1/entities?type=OffStreetParking&omit=name,location&limit=1")
    assert "name" not in r.json()[0] and "availableSpotNumber" in r.json()[0]


def test_type_expressions(client: TestClient) -> None:
    client.post("/ngsi-ld/v1/entities", json={"id": "urn:x:ab", "type": ["A", "B"]}, headers=JSON)
    client.post("/ngsi-ld/v1/entities", json={"id": "urn:x:a", "type": "A"}, headers=JSON)
    client.post("/ngsi-ld/v1/entities", json={"id": "urn:x:c", "type": "C"}, headers=JSON)
    ids = lambda t: sorted(e["id"] for e in client.get(f"/ngsi-ld/v1/entities?type={t}").json())  # noqa: E731
    assert ids("A;B") == ["urn:x:ab"]
    assert ids("A") == ["urn:x:a", "urn:x:ab"]
    assert ids("(A;B)|C") == ["urn:x:ab", "urn:x:c"]
    assert ids("B,C") == ["urn:x:ab", "urn:x:c"]
    assert client.get("/ngsi-ld/v1/entities?type=(A;B").status_code == 400


def test_bad_query_parameters(client: TestClient) -> None:
    assert client.get("/ngsi-ld/v1/entities?limit=-1").status_code == 400
    assert client.get("/ngsi-ld/v1/entities?limit=abc").status_code == 400
    r = client.get("/ngsi-ld/v1/entities?type=T&limit=100000")
    assert r.status_code == 403 and r.json()["type"] == ERR + "TooManyResults"
    assert client.get("/ngsi-ld/v1/entities?idPattern=(").status_code == 400
    assert client.get("/ngsi-ld/v1/entities?options=bogus").status_code == 400
    assert client.get("/ngsi-ld/v1/entities?pick=id&omit=name").status_code == 400
    r = client.get("/ngsi-ld/v1/entities", headers={"Accept": "text/html"})
    assert r.status_code == 406


def test_append_with_no_overwrite_and_update(client: TestClient) -> None:
    client.post("/ngsi-ld/v1/entities", json=parking(), headers=JSON)
    url = "/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:1/attrs"
    r = client.post(url, json={"totalSpotNumber": 200, "availableSpotNumber": 1}, headers=JSON)
    assert r.status_code == 204
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:1").json()
    assert got["availableSpotNumber"] == {"type": "Property", "value": 1}
    r = client.post(
        url + "?options=noOverwrite", json={"availableSpotNumber": 5, "extra": 1}, headers=JSON
    )
    assert r.status_code == 207
    assert r.json()["updated"] == ["extra"]
    assert r.json()["notUpdated"][0]["attributeName"] == "availableSpotNumber"
    r = client.patch(url, json={"availableSpotNumber": 7, "missing": 1}, headers=JSON)
    assert r.status_code == 207 and r.json()["notUpdated"][0]["attributeName"] == "missing"
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:1?options=keyValues").json()
    assert got["availableSpotNumber"] == 7 and "missing" not in got


def test_partial_attribute_update_keeps_other_members(client: TestClient) -> None:
    client.post("/ngsi-ld/v1/entities", json=parking(), headers=JSON)
    url = "/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:1/attrs/availableSpotNumber"
    r = client.patch(url, json={"value": 99, "observedAt": "2026-11-26T09:00:00Z"}, headers=JSON)
    assert r.status_code == 204, r.text
    attr = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:1").json()[
        "availableSpotNumber"
    ]
    assert attr["value"] == 99 and attr["observedAt"] == "2026-11-26T09:00:00Z"
    assert attr["reliability"] == {"type": "Property", "value": 0.9}
    assert (
        client.patch(
            url.replace("availableSpotNumber", "nope"), json={"value": 1}, headers=JSON
        ).status_code
        == 404
    )


def test_replace_attribute_and_delete_attribute(client: TestClient) -> None:
    client.post("/ngsi-ld/v1/entities", json=parking(), headers=JSON)
    base = "/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:1/attrs/"
    r = client.put(
        base + "availableSpotNumber", json={"type": "Property", "value": 3}, headers=JSON
    )
    assert r.status_code == 204
    attr = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:1").json()[
        "availableSpotNumber"
    ]
    assert attr == {"type": "Property", "value": 3}
    assert client.delete(base + "availableSpotNumber").status_code == 204
    assert (
        "availableSpotNumber"
        not in client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:1").json()
    )
    assert client.delete(base + "availableSpotNumber").status_code == 404


def test_multi_attributes_by_dataset_id(client: TestClient) -> None:
    body = {
        "id": "urn:ngsi-ld:Station:1",
        "type": "Station",
        "temperature": [
            {"type": "Property", "value": 20},
            {"type": "Property", "value": 21, "datasetId": "urn:ngsi-ld:dataset:sensorB"},
        ],
    }
    assert client.post("/ngsi-ld/v1/entities", json=body, headers=JSON).status_code == 201
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Station:1").json()
    assert got["temperature"] == body["temperature"]
    url = "/ngsi-ld/v1/entities/urn:ngsi-ld:Station:1/attrs/temperature"
    r = client.patch(
        url, json={"value": 25, "datasetId": "urn:ngsi-ld:dataset:sensorB"}, headers=JSON
    )
    assert r.status_code == 204
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Station:1").json()["temperature"]
    assert got[0]["value"] == 20 and got[1]["value"] == 25
    assert client.delete(url + "?datasetId=urn:ngsi-ld:dataset:sensorB").status_code == 204
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Station:1").json()["temperature"] == {
        "type": "Property",
        "value": 20,
    }
    dup = {**body, "id": "urn:ngsi-ld:Station:2", "temperature": [{"value": 1}, {"value": 2}]}
    assert client.post("/ngsi-ld/v1/entities", json=dup, headers=JSON).status_code == 400


def test_replace_and_merge_entity(client: TestClient) -> None:
    client.post("/ngsi-ld/v1/entities", json=parking(), headers=JSON)
    url = "/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:1"
    r = client.put(url, json={"type": "OffStreetParking", "totalSpotNumber": 10}, headers=JSON)
    assert r.status_code == 204
    got = client.get(url).json()
    assert set(got) == {"id", "type", "totalSpotNumber"}
    r = client.patch(url, json={"totalSpotNumber": 11, "name": "Pier"}, headers=JSON)
    assert r.status_code == 204
    got = client.get(url + "?options=keyValues").json()
    assert got["totalSpotNumber"] == 11 and got["name"] == "Pier"
    r = client.patch(url, json={"name": "urn:ngsi-ld:null"}, headers=JSON)
    assert r.status_code == 204 and "name" not in client.get(url).json()


def test_delete_entity(client: TestClient) -> None:
    client.post("/ngsi-ld/v1/entities", json=parking(), headers=JSON)
    url = "/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:1"
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404
    assert client.delete(url).status_code == 404


def test_tenants_are_isolated(client: TestClient) -> None:
    a, b = {"NGSILD-Tenant": "kowloon"}, {"NGSILD-Tenant": "islands"}
    client.post("/ngsi-ld/v1/entities", json=parking(), headers={**JSON, **a})
    assert (
        client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:1", headers=a).status_code
        == 200
    )
    assert (
        client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:1", headers=b).status_code
        == 404
    )
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:1").status_code == 404
    assert client.get("/ngsi-ld/v1/entities?type=OffStreetParking", headers=b).json() == []
    assert client.get("/ngsi-ld/v1/types", headers=b).json()["typeList"] == []
    # The same id can exist in two tenants.
    assert (
        client.post("/ngsi-ld/v1/entities", json=parking(), headers={**JSON, **b}).status_code
        == 201
    )
    assert (
        client.get("/ngsi-ld/v1/entities", headers={"NGSILD-Tenant": "bad tenant!"}).status_code
        == 400
    )


def test_discovery_types_and_attributes(client: TestClient) -> None:
    client.post("/ngsi-ld/v1/entities", json=parking(1), headers=JSON)
    client.post("/ngsi-ld/v1/entities", json=parking(2), headers=JSON)
    types = client.get("/ngsi-ld/v1/types").json()
    assert types["type"] == "EntityTypeList" and types["typeList"] == ["OffStreetParking"]
    info = client.get("/ngsi-ld/v1/types/OffStreetParking").json()
    assert info["entityCount"] == 2
    names = {d["attributeName"]: d["attributeTypes"] for d in info["attributeDetails"]}
    assert names["refOperator"] == ["Relationship"] and names["location"] == ["GeoProperty"]
    attrs = client.get("/ngsi-ld/v1/attributes").json()
    assert "availableSpotNumber" in attrs["attributeList"]
    detail = client.get("/ngsi-ld/v1/attributes/availableSpotNumber").json()
    assert detail["attributeCount"] == 2 and detail["typeNames"] == ["OffStreetParking"]
    assert client.get("/ngsi-ld/v1/types/Nothing").status_code == 404
    assert client.get("/ngsi-ld/v1/attributes?details=true").json()[0]["type"] == "Attribute"


def test_geojson_representation(client: TestClient) -> None:
    client.post("/ngsi-ld/v1/entities", json=parking(), headers=JSON)
    r = client.get(
        "/ngsi-ld/v1/entities?type=OffStreetParking", headers={"Accept": "application/geo+json"}
    )
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    feature = fc["features"][0]
    assert feature["geometry"] == {"type": "Point", "coordinates": [114.16, 22.28]}
    assert feature["properties"]["availableSpotNumber"]["value"] == 120


def test_q_queries_over_http(client: TestClient) -> None:
    for n, spots in [(1, 5), (2, 50), (3, 150)]:
        client.post("/ngsi-ld/v1/entities", json=parking(n, spots=spots), headers=JSON)

    def ids(q: str) -> list[int]:
        r = client.get("/ngsi-ld/v1/entities", params={"type": "OffStreetParking", "q": q})
        assert r.status_code == 200, r.text
        return sorted(int(e["id"].rsplit(":", 1)[1]) for e in r.json())

    assert ids("availableSpotNumber>10") == [2, 3]
    assert ids("availableSpotNumber==1..60") == [1, 2]
    assert ids("availableSpotNumber==5,150") == [1, 3]
    assert ids("availableSpotNumber<10|availableSpotNumber>100") == [1, 3]
    assert ids("(availableSpotNumber>10;availableSpotNumber<100)|availableSpotNumber==5") == [1, 2]
    assert ids("availableSpotNumber.reliability>0.5") == [1, 2, 3]
    assert ids("availableSpotNumber.observedAt>=2026-11-26T07:00:00Z") == [1, 2, 3]
    assert ids("refOperator==urn:ngsi-ld:Organization:TD") == [1, 2, 3]
    assert ids('name~="(?i)star"') == [1, 2, 3]
    assert ids("!totalSpotNumber") == [1, 2, 3]
    r = client.get("/ngsi-ld/v1/entities", params={"q": "availableSpotNumber>>1"})
    assert r.status_code == 400 and "position" in r.json()["detail"]
    r = client.get("/ngsi-ld/v1/entities", params={"q": "a" * 5000})
    assert r.status_code == 400


def test_scope_queries(client: TestClient) -> None:
    client.post(
        "/ngsi-ld/v1/entities",
        json={"id": "urn:x:1", "type": "T", "scope": "/HK/Kowloon/MongKok"},
        headers=JSON,
    )
    client.post(
        "/ngsi-ld/v1/entities",
        json={"id": "urn:x:2", "type": "T", "scope": ["/HK/Islands"]},
        headers=JSON,
    )

    def got(s):
        return sorted(
            e["id"] for e in client.get("/ngsi-ld/v1/entities", params={"scopeQ": s}).json()
        )

    assert got("/HK/#") == ["urn:x:1", "urn:x:2"]
    assert got("/HK/+/MongKok") == ["urn:x:1"]
    assert got("/HK/Islands") == ["urn:x:2"]
    assert client.get("/ngsi-ld/v1/entities/urn:x:1").json()["scope"] == "/HK/Kowloon/MongKok"
    bad = {"id": "urn:x:3", "type": "T", "scope": "HK//x"}
    assert client.post("/ngsi-ld/v1/entities", json=bad, headers=JSON).status_code == 400


def test_v18_attribute_kinds_round_trip(client: TestClient) -> None:
    body = {
        "id": "urn:ngsi-ld:Bin:kinds",
        "type": "WasteContainer",
        "wasteType": {"type": "VocabProperty", "vocab": "organic"},
        "config": {"type": "JsonProperty", "json": {"thresholds": [0.5, 0.8], "@type": "x"}},
        "readings": {"type": "ListProperty", "valueList": [0.1, 0.4, 0.7]},
        "route": {"type": "ListRelationship", "objectList": [{"object": "urn:ngsi-ld:Stop:1"}]},
        "servedBy": {
            "type": "Relationship",
            "object": ["urn:ngsi-ld:Truck:1", "urn:ngsi-ld:Truck:2"],
        },
    }
    assert client.post("/ngsi-ld/v1/entities", json=body, headers=JSON).status_code == 201
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Bin:kinds").json()
    assert got["wasteType"] == {"type": "VocabProperty", "vocab": "organic"}
    assert got["config"] == body["config"]
    assert got["readings"] == body["readings"]
    assert got["route"] == body["route"]
    assert got["servedBy"] == body["servedBy"]
    kv = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Bin:kinds?options=keyValues").json()
    assert kv["readings"] == [0.1, 0.4, 0.7] and kv["wasteType"] == "organic"
    assert kv["route"] == ["urn:ngsi-ld:Stop:1"]
    bad = {
        **body,
        "id": "urn:ngsi-ld:Bin:bad",
        "readings": {"type": "ListProperty", "valueList": 3},
    }
    assert client.post("/ngsi-ld/v1/entities", json=bad, headers=JSON).status_code == 400


def test_private_context_urls_can_be_refused(db: Any) -> None:
    from smartcity.app import create_app
    from smartcity.config import Settings

    settings = Settings(database_url=db.url, auth_required=False, forbid_private_targets=True)
    with TestClient(create_app(settings)) as guarded:
        link = {"Link": f'<http://127.0.0.1:9/ctx.jsonld>; rel="{REL}"'}
        r = guarded.post(
            "/ngsi-ld/v1/entities", json={"id": "urn:x:1", "type": "T"}, headers={**JSON, **link}
        )
        assert r.status_code == 400
        assert "SMARTCITY_FORBID_PRIVATE_TARGETS" in r.json()["detail"]
