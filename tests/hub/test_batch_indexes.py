"""A batch that changes many existing entities moves their type, attribute and geometry
index rows with them: queries by type, attribute and place find each entity as it now is.
(The index rows of a batch are written together; a batch over 500 entities also crosses
the chunking of the geometry rows.)"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from smartcity.hub import repository
from smartcity.storage import schema
from smartcity.storage.engine import Database

JSON = {"Content-Type": "application/json"}
OPS = "/ngsi-ld/v1/entityOperations"
N = 620  # over one chunk of geometry deletions (500)


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def first(n: int) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Sensor:{n}",
        "type": "Sensor",
        "a": n,
        "b": n,
        "location": point(114.17, 22.30),  # Kowloon
    }


def second(n: int) -> dict[str, Any]:
    """Every third entity moves to Hong Kong Island, every second becomes a Meter too, every
    fifth loses ``b`` and gains ``c``."""
    doc = first(n)
    if n % 3 == 0:
        doc["location"] = point(114.16, 22.28)
    else:  # every entity moves (a little, staying in Kowloon): more than one chunk of rows
        doc["location"] = point(114.17, 22.30 + n / 1e6)
    if n % 2 == 0:
        doc["type"] = ["Sensor", "Meter"]
    if n % 5 == 0:
        del doc["b"]
        doc["c"] = n
    return doc


def count(client: TestClient, query: str) -> int:
    r = client.get(f"/ngsi-ld/v1/entities?{query}&count=true&limit=0")
    assert r.status_code == 200, r.text
    return int(r.headers["NGSILD-Results-Count"])


def near(lon: float, lat: float) -> str:
    return f"georel=near;maxDistance==300&geometry=Point&coordinates=[{lon},{lat}]"


def indexes_agree(db: Database) -> None:
    """The index rows are exactly those a fresh insert of each stored document would write."""
    with db.engine.connect() as conn:
        docs = conn.execute(select(schema.entities.c.eid, schema.entities.c.doc)).all()
        types = set(conn.execute(select(schema.entity_types.c.eid, schema.entity_types.c.etype)))
        attrs = set(conn.execute(select(schema.entity_attrs.c.eid, schema.entity_attrs.c.attr)))
        geo = conn.execute(select(schema.entity_geo)).mappings().all()
    assert types == {(eid, t) for eid, doc in docs for t in doc["type"]}
    assert attrs == {(eid, a) for eid, doc in docs for a in doc["attrs"]}
    want = [r for eid, doc in docs for r in repository._geo_rows("", eid, doc)]
    key = ("eid", "attr", "minx", "miny", "maxx", "maxy")
    assert sorted(tuple(r[k] for k in key) for r in geo) == sorted(
        tuple(r[k] for k in key) for r in want
    )


def expect(client: TestClient) -> None:
    ids = range(N)
    assert count(client, "type=Sensor") == N
    assert count(client, "type=Meter") == sum(1 for n in ids if n % 2 == 0)
    assert count(client, "type=Sensor&attrs=b") == sum(1 for n in ids if n % 5)
    assert count(client, "type=Sensor&attrs=c") == sum(1 for n in ids if n % 5 == 0)
    island = sum(1 for n in ids if n % 3 == 0)
    assert count(client, "type=Sensor&" + near(114.16, 22.28)) == island
    assert count(client, "type=Sensor&" + near(114.17, 22.30)) == N - island


def test_batch_upsert_moves_every_index_row(client: TestClient, db: Database) -> None:
    r = client.post(f"{OPS}/upsert", json=[first(n) for n in range(N)], headers=JSON)
    assert r.status_code == 201, r.text
    r = client.post(f"{OPS}/upsert", json=[second(n) for n in range(N)], headers=JSON)
    assert r.status_code == 204, r.text
    expect(client)
    indexes_agree(db)
    # and back again: every index row returns to where it was
    r = client.post(f"{OPS}/upsert", json=[first(n) for n in range(N)], headers=JSON)
    assert r.status_code == 204, r.text
    assert count(client, "type=Meter") == 0
    assert count(client, "type=Sensor&attrs=c") == 0
    assert count(client, "type=Sensor&" + near(114.16, 22.28)) == 0
    assert count(client, "type=Sensor&" + near(114.17, 22.30)) == N
    indexes_agree(db)


def test_batch_update_moves_every_index_row(client: TestClient, db: Database) -> None:
    r = client.post(f"{OPS}/create", json=[first(n) for n in range(N)], headers=JSON)
    assert r.status_code == 201, r.text
    # update adds and changes attributes but keeps the others: drop b with a purge of one
    # attribute afterwards, so both kinds of batched write are covered
    changes = []
    for n in range(N):
        doc = second(n)
        doc.pop("b", None)
        doc.pop("a")
        changes.append(doc)
    r = client.post(f"{OPS}/update", json=changes, headers=JSON)
    assert r.status_code == 204, r.text
    assert count(client, "type=Sensor&attrs=c") == sum(1 for n in range(N) if n % 5 == 0)
    island = sum(1 for n in range(N) if n % 3 == 0)
    assert count(client, "type=Sensor&" + near(114.16, 22.28)) == island
    assert count(client, "type=Sensor&attrs=b") == N  # update keeps what it does not name
    indexes_agree(db)
