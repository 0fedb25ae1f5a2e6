"""Tenant isolation: a key scoped to tenant A changes nothing of tenant B's, in any family.

Issue #11: `DELETE /ngsi-ld/v1/jsonldContexts/{id}` with a key scoped only to another tenant
answered 204 (hosted @contexts had no tenant). Here tenant B holds one object of every family;
tenant A's key tries every write and delete on each, naming tenant B (403), naming its own
tenant (404: B's objects are not there) and naming no tenant (403: the default tenant is not
A's); afterwards everything of B's is as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.hostile.harness import Server, cli, create_key

NGSI = "/ngsi-ld/v1"
E = "urn:ngsi-ld:Tank:b1"
SUB = "urn:ngsi-ld:Subscription:b1"
REG = "urn:ngsi-ld:ContextSourceRegistration:b1"
CSUB = "urn:ngsi-ld:Subscription:b-sources"
DEVICE = "tenant-b-meter"
SHARED_CONTEXT = "https://contexts.example.org/shared.jsonld"
B = {"NGSILD-Tenant": "b"}


@pytest.fixture(scope="module")
def world(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Tenant B's objects, made with the all-tenant key; A's key; a shared cached context."""
    document = tmp_path_factory.mktemp("ctx") / "shared.jsonld"
    document.write_text(json.dumps({"@context": {"level": "https://example.org/level"}}))
    cli("contexts", "add", SHARED_CONTEXT, str(document), "--database", server.database_url)
    with server.client(headers={**server.auth, **B}) as admin:

        def made(r: httpx.Response) -> httpx.Response:
            assert r.status_code in (201, 204), r.text
            return r

        made(
            admin.post(
                f"{NGSI}/entities",
                json={"id": E, "type": "Tank", "level": {"type": "Property", "value": 1}},
            )
        )
        made(
            admin.post(
                f"{NGSI}/temporal/entities/{E}/attrs",
                json={"level": [{"value": 2, "observedAt": "2024-01-01T00:00:00Z"}]},
            )
        )
        notify = {"endpoint": {"uri": "http://127.0.0.1:9/notify"}}
        made(
            admin.post(
                f"{NGSI}/subscriptions",
                json={
                    "id": SUB,
                    "type": "Subscription",
                    "entities": [{"type": "Tank"}],
                    "notification": notify,
                },
            )
        )
        made(
            admin.post(
                f"{NGSI}/csourceRegistrations",
                json={
                    "id": REG,
                    "type": "ContextSourceRegistration",
                    "information": [{"entities": [{"type": "Pump"}]}],
                    "endpoint": "http://127.0.0.1:9/broker",
                },
            )
        )
        made(
            admin.post(
                f"{NGSI}/csourceSubscriptions",
                json={
                    "id": CSUB,
                    "type": "Subscription",
                    "entities": [{"type": "Pump"}],
                    "notification": notify,
                },
            )
        )
        hosted = (
            made(
                admin.post(f"{NGSI}/jsonldContexts", json={"@context": {"b": "https://b.example/"}})
            )
            .headers["location"]
            .rsplit("/", 1)[1]
        )
        made(
            admin.post(
                "/api/v1/devices",
                json={
                    "id": DEVICE,
                    "tenant": "b",
                    "entity_id": "urn:ngsi-ld:Meter:b1",
                    "entity_type": "Meter",
                    "attributes": {"kwh": {"name": "energy"}},
                },
            )
        )
        instance = admin.get(f"{NGSI}/temporal/entities/{E}").json()["level"][0]["instanceId"]
    key_a = create_key(server.database_url, "tenant-a-only", tenant="a")
    yield {"hosted": hosted, "instance": instance, "key_a": key_a}


# What delivery and forwarding change by themselves (the receivers here do not exist).
VOLATILE = {
    "lastFailure",
    "lastSuccess",
    "lastNotification",
    "timesSent",
    "timesFailed",
    "status",
    "lastFailureReason",
    "failures",
    "consecutiveFailures",
}


def steady(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: steady(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [steady(v) for v in value]
    return value


def snapshot(server: Server, world: dict[str, Any]) -> dict[str, Any]:
    """Everything of tenant B's, and the shared context, as the all-tenant key sees it."""
    with server.client(headers={**server.auth, **B}) as admin:

        def get(path: str, **params: str) -> Any:
            r = admin.get(path, params=params)
            assert r.status_code == 200, (path, r.text)
            return steady(r.json())

        return {
            "entity": get(f"{NGSI}/entities/{E}", options="sysAttrs"),
            "temporal": get(f"{NGSI}/temporal/entities/{E}"),
            "subscription": get(f"{NGSI}/subscriptions/{SUB}"),
            "registration": get(f"{NGSI}/csourceRegistrations/{REG}"),
            "csource subscription": get(f"{NGSI}/csourceSubscriptions/{CSUB}"),
            "contexts": get(f"{NGSI}/jsonldContexts", details="true"),
            "hosted": get(f"{NGSI}/jsonldContexts/{world['hosted']}"),
            "device": get(f"/api/v1/devices/{DEVICE}"),
        }


def attacks(world: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(method, path, JSON body) of every write and delete, aimed at tenant B's objects."""
    level = {"type": "Property", "value": 99}
    instance, hosted = world["instance"], world["hosted"]
    notify = {"endpoint": {"uri": "http://127.0.0.1:9/elsewhere"}}
    return [
        # entities and attributes
        ("PATCH", f"/entities/{E}/attrs", {"level": level}),
        ("PATCH", f"/entities/{E}/attrs/level", level),
        ("POST", f"/entities/{E}/attrs", {"extra": level}),
        ("PUT", f"/entities/{E}/attrs/level", level),
        ("PUT", f"/entities/{E}", {"type": "Tank", "level": level}),
        ("PATCH", f"/entities/{E}", {"level": level}),
        ("DELETE", f"/entities/{E}/attrs/level", None),
        ("DELETE", f"/entities/{E}", None),
        # batch operations
        ("POST", "/entityOperations/upsert", [{"id": E, "type": "Tank", "level": level}]),
        ("POST", "/entityOperations/update", [{"id": E, "level": level}]),
        ("POST", "/entityOperations/merge", [{"id": E, "level": level}]),
        ("POST", "/entityOperations/delete", [E]),
        # subscriptions
        ("PATCH", f"/subscriptions/{SUB}", {"notification": notify}),
        ("DELETE", f"/subscriptions/{SUB}", None),
        # temporal
        (
            "POST",
            f"/temporal/entities/{E}/attrs",
            {"level": [{**level, "observedAt": "2024-01-02T00:00:00Z"}]},
        ),
        ("PATCH", f"/temporal/entities/{E}/attrs/level/{instance}", {"level": [level]}),
        ("DELETE", f"/temporal/entities/{E}/attrs/level/{instance}", None),
        ("DELETE", f"/temporal/entities/{E}/attrs/level", None),
        ("DELETE", f"/temporal/entities/{E}", None),
        # @contexts
        ("DELETE", f"/jsonldContexts/{hosted}", None),
        # context source registrations and their subscriptions
        ("PATCH", f"/csourceRegistrations/{REG}", {"endpoint": "http://127.0.0.1:9/other"}),
        ("DELETE", f"/csourceRegistrations/{REG}", None),
        ("PATCH", f"/csourceSubscriptions/{CSUB}", {"notification": notify}),
        ("DELETE", f"/csourceSubscriptions/{CSUB}", None),
    ]


def _send(http: httpx.Client, method: str, path: str, body: Any, tenant: str | None) -> int:
    headers = {"NGSILD-Tenant": tenant} if tenant is not None else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    content = json.dumps(body) if body is not None else None
    return http.request(method, NGSI + path, content=content, headers=headers).status_code


def test_tenant_a_key_changes_nothing_of_tenant_b(server: Server, world: dict[str, Any]) -> None:
    before = snapshot(server, world)
    refused: list[str] = []
    with server.client(headers={"Authorization": f"Bearer {world['key_a']}"}) as as_a:
        for method, path, body in attacks(world):
            named_b = _send(as_a, method, path, body, "b")
            no_tenant = _send(as_a, method, path, body, None)
            if named_b != 403 or no_tenant != 403:
                refused.append(f"{method} {path}: tenant b -> {named_b}, none -> {no_tenant}")
            if not path.startswith("/entityOperations"):  # by id: B's objects are not in A
                own = _send(as_a, method, path, body, "a")
                if own != 404:
                    refused.append(f"{method} {path} in tenant a -> {own} (want 404)")
    assert not refused, "\n".join(refused)
    assert snapshot(server, world) == before


def test_tenant_a_neither_lists_nor_reads_tenant_b_hosted_context(
    server: Server, world: dict[str, Any]
) -> None:
    hosted = world["hosted"]
    with server.client(headers={"Authorization": f"Bearer {world['key_a']}"}) as as_a:
        own = {"NGSILD-Tenant": "a"}
        assert as_a.get(f"{NGSI}/jsonldContexts/{hosted}", headers=own).status_code == 404
        listed = as_a.get(f"{NGSI}/jsonldContexts", headers=own, params={"details": "true"})
        ids = [c["localId"] for c in listed.json()]
        assert hosted not in ids
        # The shared (cached) context is listed to every tenant ...
        assert SHARED_CONTEXT in [c["URL"] for c in listed.json()]
        shared_id = next(c["localId"] for c in listed.json() if c["URL"] == SHARED_CONTEXT)
        # ... and only a key for every tenant may delete it.
        refused = as_a.delete(f"{NGSI}/jsonldContexts/{shared_id}", headers=own)
        assert refused.status_code == 403, refused.text
    with server.client(headers=server.auth) as admin:
        assert (
            admin.get(f"{NGSI}/jsonldContexts/{shared_id}", params={"details": "true"}).status_code
            == 200
        )


def test_tenant_a_key_cannot_touch_tenant_b_devices(server: Server, world: dict[str, Any]) -> None:
    before = snapshot(server, world)["device"]
    spec = {
        "id": "tenant-b-2",
        "tenant": "b",
        "entity_id": "urn:ngsi-ld:Meter:b2",
        "entity_type": "Meter",
        "attributes": {"kwh": {"name": "energy"}},
    }
    with server.client(headers={"Authorization": f"Bearer {world['key_a']}"}) as as_a:
        assert as_a.delete(f"/api/v1/devices/{DEVICE}").status_code == 403
        assert as_a.get(f"/api/v1/devices/{DEVICE}").status_code == 403
        assert as_a.get("/api/v1/devices", params={"tenant": "b"}).status_code == 403
        assert as_a.post("/api/v1/devices", json=spec).status_code == 403
    assert snapshot(server, world)["device"] == before
    with server.client(headers=server.auth) as admin:
        assert admin.get("/api/v1/devices/tenant-b-2").status_code == 404
