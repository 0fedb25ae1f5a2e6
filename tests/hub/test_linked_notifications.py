"""notification.join / joinLevel: notifications carry linked entities (clause 4.5.23)."""

# The fixtures hub_client and receiver are imported from test_notifications, which ruff reads
# as redefinitions when tests take them as arguments.
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.hub.test_notifications import (  # noqa: F401 (fixtures)
    ENTITIES,
    JSON,
    SUBS,
    Receiver,
    hub_client,
    receiver,
    subscribe,
    write,
)

CITY = "urn:ngsi-ld:City:Paris"
COUNTRY = "urn:ngsi-ld:Country:France"


def city() -> dict[str, Any]:
    return {
        "id": CITY,
        "type": "City",
        "name": {"type": "Property", "value": "Paris"},
        "isInCountry": {"type": "Relationship", "object": COUNTRY},
    }


def country() -> dict[str, Any]:
    return {"id": COUNTRY, "type": "Country"}


def sensor() -> dict[str, Any]:
    return {
        "id": "urn:ngsi-ld:Sensor:1",
        "type": "Sensor",
        "temperature": {"type": "Property", "value": 20},
        "locatedAt": {"type": "Relationship", "object": CITY},
    }


def notified(client: TestClient, receiver: Receiver, **notification: Any) -> list[Any]:
    write(client, "POST", ENTITIES, city())
    write(client, "POST", ENTITIES, country())
    subscribe(client, receiver.url, notification=notification)
    write(client, "POST", ENTITIES, sensor())
    data: list[Any] = receiver.wait(1)[0].body["data"]
    return data


def test_flat_appends_the_linked_entities(hub_client: TestClient, receiver: Receiver) -> None:
    data = notified(hub_client, receiver, join="flat", joinLevel=2)
    assert data == [sensor(), city(), country()]


def test_inline_embeds_them(hub_client: TestClient, receiver: Receiver) -> None:
    data = notified(hub_client, receiver, join="inline", attributes=["locatedAt"])
    # notification.attributes selects the notified entity's attributes, not the linked ones.
    assert data == [
        {
            "id": "urn:ngsi-ld:Sensor:1",
            "type": "Sensor",
            "locatedAt": {"type": "Relationship", "object": CITY, "entity": city()},
        }
    ]


def test_key_values_inline(hub_client: TestClient, receiver: Receiver) -> None:
    data = notified(hub_client, receiver, join="inline", format="keyValues")
    assert data[0]["locatedAt"] == {
        "id": CITY,
        "type": "City",
        "name": "Paris",
        "isInCountry": COUNTRY,
    }


def test_join_is_shown_back_and_validated(hub_client: TestClient, receiver: Receiver) -> None:
    sub_id = subscribe(hub_client, receiver.url, notification={"join": "flat", "joinLevel": 2})
    got = hub_client.get(f"{SUBS}/{sub_id}").json()["notification"]
    assert (got["join"], got["joinLevel"]) == ("flat", 2)
    for bad in ({"join": "sideways"}, {"joinLevel": 0}, {"joinLevel": 1.5}, {"joinLevel": "2"}):
        body = {
            "type": "Subscription",
            "entities": [{"type": "Sensor"}],
            "notification": {"endpoint": {"uri": receiver.url}, **bad},
        }
        r = hub_client.post(SUBS, json=body, headers=JSON)
        assert r.status_code == 400, (bad, r.text)


@pytest.mark.parametrize("join", ["@none", None])
def test_without_join_nothing_is_added(
    hub_client: TestClient, receiver: Receiver, join: str | None
) -> None:
    params = {"join": join} if join else {}
    assert notified(hub_client, receiver, **params) == [sensor()]


def test_braces_in_pick_project_the_linked_entities(
    hub_client: TestClient, receiver: Receiver
) -> None:
    """notification.pick with braces (clause 4.21) projects the linked entities as the pick
    query parameter does, and is shown back as it was written."""
    pick = ["id", "locatedAt{id,name,isInCountry{id}}"]
    data = notified(hub_client, receiver, join="inline", joinLevel=2, pick=pick)
    assert data == [
        {
            "id": "urn:ngsi-ld:Sensor:1",
            "locatedAt": {
                "type": "Relationship",
                "object": CITY,
                "entity": {
                    "id": CITY,
                    "name": {"type": "Property", "value": "Paris"},
                    "isInCountry": {
                        "type": "Relationship",
                        "object": COUNTRY,
                        "entity": {"id": COUNTRY},
                    },
                },
            },
        }
    ]
    (listed,) = hub_client.get(SUBS).json()
    assert listed["notification"]["pick"] == pick


def test_braces_in_omit_keep_the_relationship(hub_client: TestClient, receiver: Receiver) -> None:
    """omit=locatedAt{name} omits name from the linked City and keeps locatedAt itself; the
    same request as a query gives the same entities."""
    data = notified(hub_client, receiver, join="flat", omit=["temperature", "locatedAt{name}"])
    expected = hub_client.get(
        ENTITIES,
        params={"type": "Sensor", "join": "flat", "omit": "temperature,locatedAt{name}"},
    ).json()
    assert data == expected
    assert data == [
        {k: v for k, v in sensor().items() if k != "temperature"},
        {k: v for k, v in city().items() if k != "name"},
    ]


@pytest.mark.parametrize(
    "pick", [["id", "locatedAt{name"], ["locatedAt{}"], ["id{name}"], ["a,b"], ["x}"]]
)
def test_malformed_braces_in_notification_pick_are_refused(
    hub_client: TestClient, receiver: Receiver, pick: list[str]
) -> None:
    body = {
        "type": "Subscription",
        "entities": [{"type": "Sensor"}],
        "notification": {"endpoint": {"uri": receiver.url}, "pick": pick},
    }
    r = hub_client.post(SUBS, json=body, headers=JSON)
    assert r.status_code == 400, (pick, r.text)
    assert "notification.pick" in r.json()["detail"]
