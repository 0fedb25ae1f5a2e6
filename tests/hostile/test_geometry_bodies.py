"""A million-position geometry in a subscription's geoQ or a context source registration
(issue #11, finding 3, second wave): only POST /entityOperations/query refused it before
parsing; subscriptions (create and PATCH), registration subscriptions and registrations
(whose location had no position limit at all: stored with 201) parsed the whole body first.
Each now gets a 400 within a second, costs the server no memory, writes nothing, and leaves
/healthz and a retrieve answering meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from tests.hostile.harness import (
    Server,
    assert_problem,
    assert_responsive,
    rss_mb,
    while_probing,
)

NGSI = "/ngsi-ld/v1"
SUB = "urn:ngsi-ld:Subscription:hostile-geo"
REG = "urn:ngsi-ld:ContextSourceRegistration:hostile-geo"
POSITIONS = 1_000_000
WITHIN = 1.0  # seconds
# A tenant of its own: the database is shared with the suite's other modules.
TENANT = {"NGSILD-Tenant": "geometry-bodies"}
HUGE_GEOQ = {
    "georel": "intersects",
    "geometry": "MultiPoint",
    "coordinates": [[0, 0]] * POSITIONS,
}
HUGE_LOCATION = {"type": "MultiPoint", "coordinates": [[0, 0]] * POSITIONS}


def subscription(**extra: Any) -> dict[str, Any]:
    return {
        "type": "Subscription",
        "entities": [{"type": "Probe"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/", "accept": "application/json"}},
        **extra,
    }


def registration(**extra: Any) -> dict[str, Any]:
    return {
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "Probe"}]}],
        "endpoint": "http://127.0.0.1:9/",
        **extra,
    }


@pytest.fixture(scope="module")
def stored(server: Server) -> Iterator[Server]:
    """A subscription and a registration to PATCH."""
    with server.client(headers={**server.auth, **TENANT}) as http:
        for path, body in (
            ("/subscriptions", subscription(id=SUB)),
            ("/csourceRegistrations", registration(id=REG)),
        ):
            r = http.post(NGSI + path, json=body)
            assert r.status_code in (201, 409), r.text
    yield server


CASES = [
    ("POST", "/subscriptions", subscription(geoQ=HUGE_GEOQ)),
    ("PATCH", f"/subscriptions/{SUB}", {"geoQ": HUGE_GEOQ}),
    ("POST", "/csourceSubscriptions", subscription(geoQ=HUGE_GEOQ)),
    ("POST", "/csourceRegistrations", registration(location=HUGE_LOCATION)),
    ("PATCH", f"/csourceRegistrations/{REG}", {"location": HUGE_LOCATION}),
]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    CASES,
    ids=["subscription", "patch-subscription", "csource-subscription", "registration",
         "patch-registration"],
)  # fmt: skip
def test_a_million_position_geometry_is_refused_before_it_is_parsed(
    stored: Server, method: str, path: str, body: dict[str, Any]
) -> None:
    raw = orjson.dumps(body)
    assert len(raw) < 8 * 1024 * 1024  # within the body limit: this is about the parse
    before = rss_mb(stored)

    def send() -> tuple[httpx.Response, float]:
        with stored.client(headers={**stored.auth, **TENANT}) as http:
            started = time.perf_counter()
            response = http.request(
                method, NGSI + path, content=raw, headers={"Content-Type": "application/json"}
            )
            return response, time.perf_counter() - started

    probes = while_probing(stored, send)
    response, elapsed = probes.result
    assert "10000 positions" in assert_problem(response, 400)["detail"]
    assert elapsed < WITHIN, elapsed
    assert rss_mb(stored) - before < 50
    assert_responsive(probes)
    with stored.client(headers={**stored.auth, **TENANT}) as http:  # nothing was written
        subs = http.get(f"{NGSI}/subscriptions").json()
        assert [s["id"] for s in subs] == [SUB] and "geoQ" not in subs[0]
        regs = http.get(f"{NGSI}/csourceRegistrations", params={"type": "Probe"}).json()
        assert [r["id"] for r in regs] == [REG] and "location" not in regs[0]
        assert http.get(f"{NGSI}/csourceSubscriptions").json() == []


def test_a_registration_location_past_the_limit_is_refused_once_parsed(stored: Server) -> None:
    """Under the raw-bracket bound (two geometries' worth of arrays is allowed, since a
    registration has three), the position count still applies to each geometry."""
    location = {"type": "MultiPoint", "coordinates": [[0, 0]] * 10_001}
    with stored.client(headers={**stored.auth, **TENANT}) as http:
        r = http.post(f"{NGSI}/csourceRegistrations", json=registration(location=location))
        assert "10000 positions" in assert_problem(r, 400)["detail"]
        fine = {"type": "MultiPoint", "coordinates": [[0, 0]] * 10_000}
        other = f"{REG}-fine"
        r = http.post(f"{NGSI}/csourceRegistrations", json=registration(id=other, location=fine))
        assert r.status_code == 201, r.text
        assert http.delete(f"{NGSI}/csourceRegistrations/{other}").status_code == 204
