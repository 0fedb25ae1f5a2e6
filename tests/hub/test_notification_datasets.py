"""Subscriptions that select attribute instances by datasetId (clause 5.2.12, 4.5.5).

Real receivers and the real notifier, as in test_notifications.py (whose helpers these are).
"""

# The fixtures hub_client and receiver are imported from test_notifications, which ruff reads
# as redefinitions when tests take them as arguments.
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from tests.hub.test_notifications import (  # noqa: F401 (fixtures)
    ENTITIES,
    SUBS,
    Receiver,
    hub_client,
    receiver,
    subscribe,
    write,
)

FR = "urn:ngsi-ld:Dataset:fr"
DE = "urn:ngsi-ld:Dataset:de"


def tower(n: int) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Building:{n}",
        "type": "Building",
        "name": [
            {"type": "Property", "value": "Eiffel Tower"},
            {"type": "Property", "value": "Tour Eiffel", "datasetId": FR},
            {"type": "Property", "value": "Eiffelturm", "datasetId": DE},
        ],
        "locatedAt": [
            {"type": "Relationship", "object": "urn:ngsi-ld:City:Paris"},
            {"type": "Relationship", "object": "urn:ngsi-ld:Ville:Paris", "datasetId": FR},
        ],
        "height": {"type": "Property", "value": 330},
    }


def test_only_the_selected_instances_are_notified(
    hub_client: TestClient, receiver: Receiver
) -> None:
    only_fr = subscribe(hub_client, receiver.url, entities=[{"type": "Building"}], datasetId=[FR])
    with_default = subscribe(
        hub_client, receiver.url, entities=[{"type": "Building"}], datasetId=[DE, "@none"]
    )
    write(hub_client, "POST", ENTITIES, tower(1))
    by_sub = {r.body["subscriptionId"]: r.body["data"][0] for r in receiver.wait(2)}
    # Attributes without a selected instance (height has only the default one) are left out.
    assert by_sub[only_fr] == {
        "id": "urn:ngsi-ld:Building:1",
        "type": "Building",
        "name": {"type": "Property", "value": "Tour Eiffel", "datasetId": FR},
        "locatedAt": {"type": "Relationship", "object": "urn:ngsi-ld:Ville:Paris", "datasetId": FR},
    }
    kept = by_sub[with_default]
    assert [i.get("datasetId") for i in kept["name"]] == [None, DE]
    assert kept["locatedAt"] == {"type": "Relationship", "object": "urn:ngsi-ld:City:Paris"}
    assert kept["height"] == {"type": "Property", "value": 330}
    # The member is echoed, and can be removed again with the NGSI-LD Null.
    assert hub_client.get(f"{SUBS}/{only_fr}").json()["datasetId"] == [FR]
    r = hub_client.patch(f"{SUBS}/{only_fr}", json={"datasetId": "urn:ngsi-ld:null"})
    assert r.status_code == 204
    assert "datasetId" not in hub_client.get(f"{SUBS}/{only_fr}").json()
