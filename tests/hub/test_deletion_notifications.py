"""Notifications of deletions (clause 5.8.6, triggers of clause 5.2.12): an entity deleted, an
attribute deleted by DELETE or by the NGSI-LD Null in each update operation, an attribute
instance deleted by datasetId.

Real receivers and the real notifier, as in test_notifications.py (whose helpers these are).
"""

# The fixtures hub_client and receiver are imported from test_notifications, which ruff reads
# as redefinitions when tests take them as arguments.
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

import pytest
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

NULL = "urn:ngsi-ld:null"
BUILDING = "urn:ngsi-ld:Building:tower"
MERGE = {"Content-Type": "application/merge-patch+json"}


def building(**extra: Any) -> dict[str, Any]:
    return {
        "id": BUILDING,
        "type": "Building",
        "name": {"type": "Property", "value": "Eiffel Tower"},
        "floors": {"type": "Property", "value": 7},
        "locatedAt": {"type": "Relationship", "object": "urn:ngsi-ld:City:Paris"},
        "street": {"type": "LanguageProperty", "languageMap": {"fr": "Av. Anatole France"}},
        **extra,
    }


def watch_deletions(client: TestClient, uri: str, attr: str, **notification: Any) -> str:
    return subscribe(
        client,
        uri,
        entities=[{"type": "Building"}],
        watchedAttributes=[attr],
        notificationTrigger=["attributeDeleted"],
        notification=notification,
    )


def test_delete_attribute_notifies_the_null_without_deleted_at(
    hub_client: TestClient, receiver: Receiver
) -> None:
    write(hub_client, "POST", ENTITIES, building())
    watch_deletions(hub_client, receiver.url, "name")
    write(hub_client, "DELETE", f"{ENTITIES}/{BUILDING}/attrs/floors")  # not watched
    write(hub_client, "DELETE", f"{ENTITIES}/{BUILDING}/attrs/name")
    (got,) = receiver.wait(1)
    data = got.body["data"]
    assert len(data) == 1 and data[0]["id"] == BUILDING
    # The entity as it is now, with the deleted attribute as the NGSI-LD Null; deletedAt is a
    # system attribute (NotificationParams.sysAttrs): not shown without sysAttrs.
    assert data[0]["name"] == {"type": "Property", "value": NULL}
    assert data[0]["locatedAt"] == {"type": "Relationship", "object": "urn:ngsi-ld:City:Paris"}
    assert "floors" not in data[0] and "deletedAt" not in data[0]


NULLS = {
    "name": ({"type": "Property", "value": NULL}, {"type": "Property", "value": NULL}),
    "locatedAt": (
        {"type": "Relationship", "object": NULL},
        {"type": "Relationship", "object": NULL},
    ),
    "street": (
        {"type": "LanguageProperty", "languageMap": {"@none": NULL}},
        {"type": "LanguageProperty", "languageMap": {"@none": NULL}},
    ),
}


@pytest.mark.parametrize("operation", ["merge", "update attrs", "partial update"])
@pytest.mark.parametrize("attr", list(NULLS))
def test_the_ngsi_ld_null_deletes_and_notifies_in_every_update_operation(
    hub_client: TestClient, receiver: Receiver, operation: str, attr: str
) -> None:
    write(hub_client, "POST", ENTITIES, building())
    watch_deletions(hub_client, receiver.url, attr)
    null, notified = NULLS[attr]
    if operation == "merge":
        r = hub_client.patch(f"{ENTITIES}/{BUILDING}", json={attr: null}, headers=MERGE)
    elif operation == "update attrs":
        r = hub_client.patch(f"{ENTITIES}/{BUILDING}/attrs", json={attr: null})
    else:
        r = hub_client.patch(f"{ENTITIES}/{BUILDING}/attrs/{attr}", json=null)
    assert r.status_code == 204, r.text
    assert attr not in hub_client.get(f"{ENTITIES}/{BUILDING}").json()  # really deleted
    (got,) = receiver.wait(1)
    assert got.body["data"][0][attr] == notified
    assert got.body["data"][0]["floors"] == {"type": "Property", "value": 7}


def test_deleting_one_instance_by_dataset_id_shows_the_rest_and_the_null(
    hub_client: TestClient, receiver: Receiver
) -> None:
    names = [
        {"type": "Property", "value": "Eiffel Tower"},
        {"type": "Property", "value": "Eiffelturm", "datasetId": "urn:ngsi-ld:Dataset:de"},
        {"type": "Property", "value": "Tour Eiffel", "datasetId": "urn:ngsi-ld:Dataset:fr"},
    ]
    write(hub_client, "POST", ENTITIES, building(name=names))
    watch_deletions(hub_client, receiver.url, "name")
    write(
        hub_client, "DELETE", f"{ENTITIES}/{BUILDING}/attrs/name?datasetId=urn:ngsi-ld:Dataset:fr"
    )
    (got,) = receiver.wait(1)
    assert got.body["data"][0]["name"] == [
        names[0],
        names[1],
        {"type": "Property", "value": NULL, "datasetId": "urn:ngsi-ld:Dataset:fr"},
    ]


@pytest.mark.parametrize("sys_attrs", [False, True])
def test_deleting_the_entity_is_attribute_deleted_for_its_watched_attributes(
    hub_client: TestClient, receiver: Receiver, sys_attrs: bool
) -> None:
    write(hub_client, "POST", ENTITIES, building())
    watch_deletions(hub_client, receiver.url, "name", sysAttrs=sys_attrs)
    write(hub_client, "DELETE", f"{ENTITIES}/{BUILDING}")
    (got,) = receiver.wait(1)
    gone = got.body["data"][0]
    deleted_at = gone.pop("deletedAt")
    assert deleted_at.endswith("Z")
    if not sys_attrs:
        assert gone == {
            "id": BUILDING,
            "type": "Building",
            "name": {"type": "Property", "value": NULL},
        }
        return
    # With sysAttrs: createdAt/modifiedAt as they were, and deletedAt, on entity and attribute.
    assert gone["createdAt"] == gone["modifiedAt"] < deleted_at
    name = gone["name"]
    assert name["value"] == NULL and name["deletedAt"] == deleted_at
    assert name["createdAt"] == gone["createdAt"]
    assert set(gone) == {"id", "type", "createdAt", "modifiedAt", "name"}


def test_entity_deleted_alone_carries_id_type_and_deleted_at(
    hub_client: TestClient, receiver: Receiver
) -> None:
    write(hub_client, "POST", ENTITIES, building())
    subscribe(
        hub_client,
        receiver.url,
        entities=[{"type": "Building"}],
        notificationTrigger=["entityDeleted"],
    )
    write(hub_client, "DELETE", f"{ENTITIES}/{BUILDING}")
    gone = receiver.wait(1)[0].body["data"][0]
    assert set(gone) == {"id", "type", "deletedAt"} and gone["id"] == BUILDING


def test_show_changes_gives_the_deleted_values(hub_client: TestClient, receiver: Receiver) -> None:
    location = {"type": "Point", "coordinates": [2.2945, 48.8584]}
    write(
        hub_client, "POST", ENTITIES, building(location={"type": "GeoProperty", "value": location})
    )
    on_attribute = subscribe(
        hub_client,
        receiver.url,
        entities=[{"type": "Building"}],
        notificationTrigger=["attributeDeleted"],
        notification={"showChanges": True},
    )
    write(hub_client, "DELETE", f"{ENTITIES}/{BUILDING}/attrs/street")
    (got,) = receiver.wait(1)
    assert got.body["data"][0]["street"] == {
        "type": "LanguageProperty",
        "languageMap": {"@none": NULL},
        "previousLanguageMap": {"fr": "Av. Anatole France"},
    }
    r = hub_client.patch(f"{SUBS}/{on_attribute}", json={"isActive": False})
    assert r.status_code == 204
    # entityDeleted with showChanges: every attribute as the NGSI-LD Null with its last value.
    subscribe(
        hub_client,
        receiver.url,
        entities=[{"type": "Building"}],
        notificationTrigger=["entityDeleted"],
        notification={"showChanges": True},
    )
    write(hub_client, "DELETE", f"{ENTITIES}/{BUILDING}")
    gone = receiver.wait(2)[1].body["data"][0]
    assert gone["location"] == {"type": "GeoProperty", "value": NULL, "previousValue": location}
    assert gone["locatedAt"] == {
        "type": "Relationship",
        "object": NULL,
        "previousObject": "urn:ngsi-ld:City:Paris",
    }
    assert gone["floors"] == {"type": "Property", "value": NULL, "previousValue": 7}
    assert set(gone) == {"id", "type", "deletedAt", "name", "floors", "locatedAt", "location"}


def test_deleting_every_instance_notifies_one_null(
    hub_client: TestClient, receiver: Receiver
) -> None:
    names = [
        {"type": "Property", "value": "Eiffel Tower"},
        {"type": "Property", "value": "Tour Eiffel", "datasetId": "urn:ngsi-ld:Dataset:fr"},
    ]
    write(hub_client, "POST", ENTITIES, building(name=names))
    watch_deletions(hub_client, receiver.url, "name")
    write(hub_client, "DELETE", f"{ENTITIES}/{BUILDING}/attrs/name?deleteAll=true")
    (got,) = receiver.wait(1)
    # The attribute is gone as a whole: one Null stands for it (suite 046_22_08).
    assert got.body["data"][0]["name"] == {"type": "Property", "value": NULL}
