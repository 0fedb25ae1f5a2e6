"""Purge entities (DELETE /entities?type=...&q=...): whole entities, or keep/drop attributes."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from fastapi.testclient import TestClient

from smartcity.hub.changes import Change

JSON = {"Content-Type": "application/json"}
ENTITIES = "/ngsi-ld/v1/entities"


def _bin(n: int, fill: int, kind: str = "WasteBin") -> dict[str, object]:
    return {
        "id": f"urn:ngsi-ld:{kind}:{n}",
        "type": kind,
        "fillingLevel": fill,
        "colour": "green",
        "serial": f"S{n}",
    }


@pytest.fixture
def bins(client: TestClient) -> TestClient:
    for n, fill in enumerate([10, 80, 95], start=1):
        assert client.post(ENTITIES, json=_bin(n, fill), headers=JSON).status_code == 201
    assert client.post(ENTITIES, json=_bin(9, 99, "Bench"), headers=JSON).status_code == 201
    return client


def _ids(client: TestClient) -> list[str]:
    r = client.get(ENTITIES, params={"type": "WasteBin,Bench"})
    return sorted(e["id"] for e in r.json())


@pytest.mark.parametrize("slash", ["", "/"])
def test_purge_deletes_what_the_query_selects(bins: TestClient, slash: str) -> None:
    seen: list[Change] = []

    def listen(changes: Sequence[Change]) -> None:
        seen.extend(changes)

    bins.app.state.hub.entities.feed.on_commit(listen)  # type: ignore[attr-defined]
    r = bins.delete(f"{ENTITIES}{slash}", params={"type": "WasteBin", "q": "fillingLevel>50"})
    assert r.status_code == 204, r.text
    assert _ids(bins) == ["urn:ngsi-ld:Bench:9", "urn:ngsi-ld:WasteBin:1"]
    # the change feed (subscriptions, live views) sees each deletion as for a single delete
    assert sorted(c.entity_id for c in seen if c.after is None) == [
        "urn:ngsi-ld:WasteBin:2",
        "urn:ngsi-ld:WasteBin:3",
    ]
    # and the temporal history keeps the purged entities, marked deleted
    got = bins.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:WasteBin:2?options=sysAttrs")
    assert got.status_code == 200 and got.json()["deletedAt"].endswith("Z")


def test_drop_removes_only_the_named_attributes(bins: TestClient) -> None:
    r = bins.delete(ENTITIES, params={"type": "WasteBin", "drop": "colour,serial"})
    assert r.status_code == 204, r.text
    got = bins.get(f"{ENTITIES}/urn:ngsi-ld:WasteBin:2", params={"options": "keyValues"}).json()
    assert got == {"id": "urn:ngsi-ld:WasteBin:2", "type": "WasteBin", "fillingLevel": 80}
    bench = bins.get(f"{ENTITIES}/urn:ngsi-ld:Bench:9").json()
    assert "colour" in bench


def test_keep_removes_every_other_attribute(bins: TestClient) -> None:
    r = bins.delete(ENTITIES, params={"id": "urn:ngsi-ld:WasteBin:1", "keep": "serial"})
    assert r.status_code == 204, r.text
    got = bins.get(f"{ENTITIES}/urn:ngsi-ld:WasteBin:1", params={"options": "keyValues"}).json()
    assert got == {"id": "urn:ngsi-ld:WasteBin:1", "type": "WasteBin", "serial": "S1"}
    assert len(_ids(bins)) == 4


@pytest.mark.parametrize(
    "params",
    [
        {"type": "WasteBin", "keep": "serial", "drop": "colour"},
        {},  # no selector: would delete the whole tenant
        {"type": "WasteBin", "q": "fillingLevel>>1"},
        {"type": "WasteBin", "drop": "na$me"},
    ],
)
def test_bad_purges_are_400_and_delete_nothing(bins: TestClient, params: dict) -> None:
    r = bins.delete(ENTITIES, params=params)
    assert r.status_code == 400 and r.json()["type"].endswith("BadRequestData"), r.text
    assert len(_ids(bins)) == 4


def test_purge_matching_nothing_is_204(bins: TestClient) -> None:
    r = bins.delete(ENTITIES, params={"type": "Lamppost"})
    assert r.status_code == 204
    assert len(_ids(bins)) == 4
