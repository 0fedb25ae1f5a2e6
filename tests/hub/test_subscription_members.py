"""Subscription members of NGSI-LD 1.8 the hub used to refuse: notification.endpoint.cooldown
(clause 5.2.15); and the ones it refuses on purpose, with the reason."""

# The fixtures hub_client and receiver are imported from test_notifications, which ruff reads
# as redefinitions when tests take them as arguments.
# ruff: noqa: F811

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.hub.test_notifications import (  # noqa: F401 (fixtures)
    ENTITIES,
    JSON,
    SUBS,
    Receiver,
    hub_client,
    receiver,
    sensor,
    set_temperature,
    status,
    subscribe,
    wait_for,
    write,
)


def temperatures(receiver: Receiver) -> list[float]:
    return [r.body["data"][0]["temperature"]["value"] for r in receiver.received]


def test_cooldown_leaves_a_failed_endpoint_alone_then_delivers_in_order(
    hub_client: TestClient, receiver: Receiver
) -> None:
    """After a failure nothing is sent to the endpoint for cooldown ms (the retry policy of
    this app would retry within 0.2 s); what fell due meanwhile follows, in order, unlost.
    Times are the receiver's own: a loaded machine only makes deliveries later, never earlier
    (a sleep-then-look check failed when the test itself was slowed past the cooldown)."""
    sub_id = subscribe(
        hub_client,
        receiver.url,
        notification={"endpoint": {"cooldown": 1500}},
        notificationTrigger=["entityCreated", "attributeUpdated"],
    )
    assert status(hub_client, sub_id)["notification"]["endpoint"]["cooldown"] == 1500
    receiver.answers = [500]
    write(hub_client, "POST", ENTITIES, sensor(1, 1.0))
    wait_for(lambda: status(hub_client, sub_id)["notification"].get("timesFailed", 0) == 1)
    set_temperature(hub_client, 1, 2.0)  # falls due after the failure, in the cooldown
    receiver.wait(2, timeout=15)
    [failed] = receiver.refused_at
    assert all(r.at - failed >= 1.5 for r in receiver.received)
    assert temperatures(receiver) == [1.0, 2.0]
    assert status(hub_client, sub_id)["notification"]["timesFailed"] == 1


@pytest.mark.parametrize("cooldown", [0, -5, "10", True, 86_400_001])
def test_cooldown_must_be_milliseconds(
    hub_client: TestClient, receiver: Receiver, cooldown: object
) -> None:
    body = {
        "type": "Subscription",
        "entities": [{"type": "Sensor"}],
        "notification": {"endpoint": {"uri": receiver.url, "cooldown": cooldown}},
    }
    r = hub_client.post(SUBS, json=body, headers=JSON)
    assert r.status_code == 400
    assert "cooldown" in r.json()["detail"]


@pytest.mark.parametrize(
    ("member", "value", "reason"),
    [
        ("temporalQ", {"timerel": "after", "timeAt": "2026-01-01T00:00:00Z"}, "registration"),
        ("csf", 'mode=="inclusive"', "csf"),
    ],
)
def test_members_refused_on_purpose_say_why(
    hub_client: TestClient, receiver: Receiver, member: str, value: object, reason: str
) -> None:
    body = {
        "type": "Subscription",
        "entities": [{"type": "Sensor"}],
        member: value,
        "notification": {"endpoint": {"uri": receiver.url}},
    }
    r = hub_client.post(SUBS, json=body, headers=JSON)
    assert r.status_code == 400
    assert reason in r.json()["detail"]
