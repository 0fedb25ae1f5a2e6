"""Every list endpoint of the hub pages the same way (hub/api/paging.py): limit and offset are
checked alike, limit=0 needs count=true, and count=true answers NGSILD-Results-Count."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}
ERR = "https://uri.etsi.org/ngsi-ld/errors/"

LISTS: list[tuple[str, str, Any]] = [
    ("GET", "/ngsi-ld/v1/entities?type=Sensor", None),
    (
        "POST",
        "/ngsi-ld/v1/entityOperations/query",
        {"type": "Query", "entities": [{"type": "Sensor"}]},
    ),
    ("GET", "/ngsi-ld/v1/temporal/entities?type=Sensor", None),
    ("GET", "/ngsi-ld/v1/subscriptions", None),
    ("GET", "/ngsi-ld/v1/csourceRegistrations?type=Sensor", None),
    ("GET", "/ngsi-ld/v1/csourceSubscriptions", None),
]


def call(client: TestClient, method: str, url: str, body: Any, extra: str) -> Any:
    sep = "&" if "?" in url else "?"
    return client.request(method, url + sep + extra, json=body, headers=JSON if body else {})


@pytest.mark.parametrize(("method", "url", "body"), LISTS)
def test_paging_is_checked_alike_on_every_list(
    client: TestClient, method: str, url: str, body: Any
) -> None:
    client.post(
        "/ngsi-ld/v1/entities",
        json={
            "id": "urn:ngsi-ld:Sensor:p1",
            "type": "Sensor",
            "t": {"type": "Property", "value": 1},
        },
        headers=JSON,
    )
    for bad in ("limit=0", "limit=-1", "offset=-3", "limit=abc", "count=maybe"):
        r = call(client, method, url, body, bad)
        assert r.status_code == 400, (url, bad, r.text)
        assert r.json()["type"] == ERR + "BadRequestData"
    counted = call(client, method, url, body, "limit=0&count=true")
    assert counted.status_code == 200, counted.text
    assert counted.json() == [] and "NGSILD-Results-Count" in counted.headers
    too_many = call(client, method, url, body, "limit=100000")
    assert too_many.status_code in (400, 403), too_many.text
