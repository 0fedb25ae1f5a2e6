"""Every NGSI-LD endpoint declares its preamble (tenant, API key, @context) as one of the typed
dependencies of hub/api/preamble.py, so none can forget the key check."""

from __future__ import annotations

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from smartcity.hub.api import (
    attrs,
    batch,
    csources,
    discovery,
    entities,
    entity_maps,
    jsonld_contexts,
    notifications,
    preamble,
    subscriptions,
    temporal,
)

PREAMBLES = {preamble.reader, preamble.body_reader, preamble.writer, preamble.manager}
MODULES = (
    attrs,
    batch,
    csources,
    discovery,
    entities,
    entity_maps,
    jsonld_contexts,
    notifications,
    subscriptions,
    temporal,
)


def ngsi_routes() -> list[APIRoute]:
    """The NGSI-LD routers' routes (mounted under /ngsi-ld/v1 by smartcity.app)."""
    return [r for m in MODULES for r in m.router.routes if isinstance(r, APIRoute)]


def test_every_ngsi_ld_endpoint_declares_a_preamble() -> None:
    routes = ngsi_routes()
    assert len(routes) > 40
    for route in routes:
        calls = {d.call for d in route.dependant.dependencies}
        assert len(calls & PREAMBLES) == 1, (route.path, route.methods)


def test_writes_need_a_write_key_on_every_method(settings: object) -> None:
    """With authentication on, every NGSI-LD write answers 401 without a key (the preamble
    runs before anything else, the body included)."""
    from smartcity.app import create_app

    settings.auth_required = True  # type: ignore[attr-defined]
    checked = 0
    with TestClient(create_app(settings)) as c:  # type: ignore[arg-type]
        for route in ngsi_routes():
            path = "/ngsi-ld/v1" + route.path.replace("{entityId:path}", "urn:ngsi-ld:X:1")
            path = path.replace(":path}", "}")
            for name in ("attrId", "instanceId", "type", "contextId", "subscriptionId"):
                path = path.replace("{" + name + "}", "urn:ngsi-ld:Y:1")
            for key in ("registrationId", "entityMapId"):
                path = path.replace("{" + key + "}", "urn:ngsi-ld:Z:1")
            for method in route.methods - {"GET", "HEAD"}:
                if route.path.endswith("/entityOperations/query"):
                    continue  # a query by POST is a read
                r = c.request(method, path, json={})
                assert r.status_code == 401, (method, path, r.status_code)
                checked += 1
    assert checked > 25
