"""The hub hosts @contexts (POST /jsonldContexts) and serves them without fetching anything."""

from __future__ import annotations

from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
REL = "http://www.w3.org/ns/json-ld#context"


def test_host_a_context_and_use_it_by_its_local_url(client: TestClient) -> None:
    doc = {"@context": {"Bin": "https://example.org/Bin", "fill": "https://example.org/fill"}}
    r = client.post("/ngsi-ld/v1/jsonldContexts", json=doc, headers=JSON)
    assert r.status_code == 201
    location = r.headers["location"]
    assert location.startswith("/ngsi-ld/v1/jsonldContexts/urn:ngsi-ld:context:")
    assert client.get(location).json() == doc
    # The client refers to it by the URL it used to reach the hub; nothing is fetched.
    url = "http://city-hub.internal:8000" + location
    link = {"Link": f'<{url}>; rel="{REL}"'}
    entity = {"id": "urn:ngsi-ld:Bin:1", "type": "Bin", "fill": 0.5}
    assert (
        client.post("/ngsi-ld/v1/entities", json=entity, headers={**JSON, **link}).status_code
        == 201
    )
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Bin:1").json()
    assert got["type"] == "https://example.org/Bin"
    listed = client.get("/ngsi-ld/v1/jsonldContexts?details=true").json()
    assert [m["kind"] for m in listed] == ["Hosted"]
    context_id = location.rsplit("/", 1)[1]
    assert client.delete(f"/ngsi-ld/v1/jsonldContexts/{context_id}").status_code == 204
    assert client.get(location).status_code == 404


def test_bad_context_documents_are_rejected(client: TestClient) -> None:
    assert client.post("/ngsi-ld/v1/jsonldContexts", json={"x": 1}, headers=JSON).status_code == 400
    r = client.post("/ngsi-ld/v1/jsonldContexts", json={"@context": 5}, headers=JSON)
    assert r.status_code == 400
    assert client.get("/ngsi-ld/v1/jsonldContexts?kind=Weird").status_code == 400


def test_core_context_is_listed_and_served(client: TestClient) -> None:
    listed = client.get("/ngsi-ld/v1/jsonldContexts").json()
    assert listed[0].startswith("https://uri.etsi.org/ngsi-ld/")
    core = client.get("/ngsi-ld/v1/jsonldContexts/core").json()
    assert core["@context"]["Property"] == "ngsi-ld:Property"


def test_city_context_is_built_in_served_and_never_fetched(client: TestClient) -> None:
    served = client.get("/ngsi-ld/v1/jsonldContexts/smartcity-context.jsonld")
    assert served.status_code == 200
    terms = served.json()["@context"]
    park = "https://smartdatamodels.org/dataModel.Parking/OffStreetParking"
    assert terms["OffStreetParking"] == park
    listed = client.get("/ngsi-ld/v1/jsonldContexts").json()
    assert "http://testserver/ngsi-ld/v1/jsonldContexts/smartcity-context.jsonld" in listed
    # Any host name: the hub knows it by its path (an unresolvable host proves nothing is
    # fetched), so short names work offline, on the way in and on the way out.
    url = "http://city-hub.invalid/ngsi-ld/v1/jsonldContexts/smartcity-context.jsonld"
    link = {"Link": f'<{url}>; rel="{REL}"'}
    entity = {"id": "urn:ngsi-ld:OffStreetParking:c1", "type": "OffStreetParking",
              "availableSpotNumber": 7}  # fmt: skip
    created = client.post("/ngsi-ld/v1/entities", json=entity, headers={**JSON, **link})
    assert created.status_code == 201, created.text
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:c1").json()["type"] == park
    found = client.get("/ngsi-ld/v1/entities?type=OffStreetParking", headers=link).json()
    assert [(e["type"], e["availableSpotNumber"]["value"]) for e in found] == [
        ("OffStreetParking", 7)
    ]
    # Without it the core context applies: a bare name is the default vocabulary's.
    assert client.get("/ngsi-ld/v1/entities?type=OffStreetParking").json() == []
    assert client.get("/ngsi-ld/v1/types", headers=link).json()["typeList"] == ["OffStreetParking"]
    refused = client.delete("/ngsi-ld/v1/jsonldContexts/smartcity-context.jsonld")
    assert refused.status_code == 400 and "built into the hub" in refused.json()["detail"]
