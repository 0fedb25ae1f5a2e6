"""The device registry: CRUD over HTTP and the CLI, credentials, the Device mirror, silence."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.city_context import city_link

from smartcity.app import create_app
from smartcity.config import Settings
from smartcity.hub.timeutil import now_us
from smartcity.live.devices.service import DeviceRegistry, digest

AIR: dict[str, Any] = {
    "id": "aq-tai-po-01",
    "name": "Tai Po air sensor",
    "entity_id": "urn:ngsi-ld:AirQualityObserved:tai-po",
    "entity_type": "AirQualityObserved",
    "attributes": {
        "pm25": {"name": "pm25", "unitCode": "GQ"},
        "temp": {"name": "temperature", "unitCode": "CEL", "scale": 0.1},
    },
    "interval_s": 60,
}


def registry(client: TestClient) -> DeviceRegistry:
    reg: DeviceRegistry = client.app.state.ingest.registry  # type: ignore[attr-defined]
    return reg


def test_create_shows_the_secret_once_and_stores_a_digest(client: TestClient) -> None:
    r = client.post("/api/v1/devices", json=AIR)
    assert r.status_code == 201, r.text
    body = r.json()
    secret = body["secret"]
    assert secret.startswith("scd_") and len(secret) > 40
    assert r.headers["location"] == "/api/v1/devices/aq-tai-po-01"
    assert body["mqtt_topic"] == "city/default/devices/aq-tai-po-01/readings"
    assert body["status"] == "new"
    assert body["attributes"]["temp"] == {"name": "temperature", "unitCode": "CEL", "scale": 0.1}
    again = client.get("/api/v1/devices/aq-tai-po-01").json()
    assert "secret" not in again or again["secret"] is None
    device = registry(client).get("aq-tai-po-01")
    assert device is not None and device.secret_digest == digest(secret)
    reg = registry(client)
    assert reg.verify(device, secret)
    assert reg.verify(device, secret)  # from the cache of verified secrets
    assert not reg.verify(device, secret + "x")
    assert not reg.verify(device, None)


def test_duplicate_and_invalid_registrations_are_refused(client: TestClient) -> None:
    assert client.post("/api/v1/devices", json=AIR).status_code == 201
    r = client.post("/api/v1/devices", json=AIR)
    assert r.status_code == 409 and "already exists" in r.json()["detail"]
    for bad in (
        {**AIR, "id": "has/slash"},
        {**AIR, "id": "x1", "attributes": {}},
        {**AIR, "id": "x2", "attributes": {"t": {"name": "temperature"}}},
        {**AIR, "id": "x3", "entity_id": "not a uri"},
        {**AIR, "id": "x4", "mqtt_topic": "city/+/x"},
        {**AIR, "id": "x5", "interval_s": 0},
        {**AIR, "id": "x6", "attributes": {"a": {"name": "x"}, "b": {"name": "x"}}},
    ):
        r = client.post("/api/v1/devices", json=bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["type"].endswith("BadRequestData")


def test_list_show_revoke(client: TestClient) -> None:
    client.post("/api/v1/devices", json=AIR)
    client.post("/api/v1/devices", json={**AIR, "id": "aq-2", "tenant": "kowloon"})
    assert [d["id"] for d in client.get("/api/v1/devices").json()] == ["aq-tai-po-01"]
    listed = client.get("/api/v1/devices", params={"tenant": "kowloon"}).json()
    assert [d["id"] for d in listed] == ["aq-2"]
    assert listed[0]["mqtt_topic"] == "city/kowloon/devices/aq-2/readings"
    assert client.delete("/api/v1/devices/aq-2").status_code == 204
    shown = client.get("/api/v1/devices/aq-2").json()
    assert shown["status"] == "revoked" and shown["revoked_at"]
    assert client.get("/api/v1/devices/nope").status_code == 404
    assert client.delete("/api/v1/devices/nope").status_code == 404


def test_device_is_mirrored_as_an_ngsi_ld_device_entity(client: TestClient) -> None:
    # AIR is registered without a @context: its readings use the core context, but its mirror
    # is the platform's Smart Data Models Device, one type for every device.
    client.post("/api/v1/devices", json=AIR)
    plain = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Device:aq-tai-po-01").json()
    assert plain["type"] == "https://smartdatamodels.org/dataModel.Device/Device"
    r = client.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Device:aq-tai-po-01?options=keyValues",
        headers=city_link(),
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "id": "urn:ngsi-ld:Device:aq-tai-po-01",
        "type": "Device",
        "name": "Tai Po air sensor",
        "controlledProperty": ["pm25", "temperature"],
        "controlledAsset": "urn:ngsi-ld:AirQualityObserved:tai-po",
        "deviceState": "new",
    }
    client.delete("/api/v1/devices/aq-tai-po-01")
    r = client.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Device:aq-tai-po-01?options=keyValues",
        headers=city_link(),
    )
    assert r.json()["deviceState"] == "revoked"


def test_registry_needs_a_write_key_when_auth_is_on(settings: Settings) -> None:
    app = create_app(Settings(database_url=settings.database_url, auth_required=True))
    with TestClient(app) as c:
        assert c.post("/api/v1/devices", json=AIR).status_code == 401
        assert c.get("/api/v1/devices").status_code == 401
        _, token = app.state.hub.keys.create("ops", tenants=["kowloon"])
        auth = {"Authorization": f"Bearer {token}"}
        assert c.post("/api/v1/devices", json=AIR, headers=auth).status_code == 403
        r = c.post("/api/v1/devices", json={**AIR, "tenant": "kowloon"}, headers=auth)
        assert r.status_code == 201


def test_silent_devices_are_flagged_and_recover(client: TestClient) -> None:
    secret = client.post("/api/v1/devices", json=AIR).json()["secret"]
    client.post("/api/v1/devices", json={**AIR, "id": "quiet", "interval_s": 3600})
    reg = registry(client)
    created = reg.get("aq-tai-po-01")
    assert created is not None
    soon = created.created_at + 60 * 1_000_000  # 1 interval later: not yet silent
    assert reg.silent(now=soon) == []
    later = created.created_at + 121 * 1_000_000  # > 2 intervals
    assert [d.device_id for d in reg.silent(now=later)] == ["aq-tai-po-01"]
    changed = reg.check_silence(now=later)
    assert [(d.device_id, d.status) for d in changed] == [("aq-tai-po-01", "silent")]
    assert reg.check_silence(now=later) == []  # only changes are reported
    listed = client.get("/api/v1/devices", params={"silent": "true"}).json()
    assert [d["id"] for d in listed] == ["aq-tai-po-01"] or listed == []  # relative to now
    mirrored = client.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Device:aq-tai-po-01?options=keyValues",
        headers=city_link(),
    )
    assert mirrored.json()["deviceState"] == "silent"
    # A reading brings it back: lastSeen moves, the next check says ok.
    r = client.post(
        "/api/v1/devices/aq-tai-po-01/readings",
        json={"pm25": 12},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert r.status_code == 200, r.text
    back = reg.check_silence(now=now_us())
    assert [(d.device_id, d.status) for d in back] == [("aq-tai-po-01", "ok")]
    mirrored = client.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Device:aq-tai-po-01?options=keyValues",
        headers=city_link(),
    )
    assert mirrored.json()["deviceState"] == "ok"
    assert "dateLastValueReported" in mirrored.json()


@pytest.mark.parametrize("missing", ["entity_id", "entity_type", "attributes"])
def test_required_members(client: TestClient, missing: str) -> None:
    spec = {k: v for k, v in AIR.items() if k != missing}
    r = client.post("/api/v1/devices", json=spec)
    assert r.status_code == 400 and missing in r.json()["detail"]


def test_create_many_is_all_or_nothing(client: TestClient) -> None:
    from smartcity.hub.errors import AlreadyExists
    from smartcity.live.devices.schemas import DeviceCreate

    reg = registry(client)
    specs = [DeviceCreate.model_validate({**AIR, "id": f"bulk-{n}"}) for n in range(3)]
    created = reg.create_many(specs)
    assert [d.device_id for d, _ in created] == ["bulk-0", "bulk-1", "bulk-2"]
    assert all(reg.verify(d, s) for d, s in created)
    again = [DeviceCreate.model_validate({**AIR, "id": "bulk-3"}), specs[0]]
    with pytest.raises(AlreadyExists):
        reg.create_many(again)
    assert reg.get("bulk-3") is None
    assert [d.device_id for d in reg.devices("")] == ["bulk-0", "bulk-1", "bulk-2"]
    mirrored = client.get(
        "/ngsi-ld/v1/entities", params={"type": "Device", "count": "true"}, headers=city_link()
    )
    assert mirrored.headers["ngsild-results-count"] == "3"
