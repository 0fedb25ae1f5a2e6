"""Distributed writes across real server processes: the city's hub forwards writes to a
department's hub (a second ``smartcity serve``) by the registration's mode and operations, and
a dead or slow department never fails or holds up the city's own part of a write.

The city's hub runs on each test backend (SQLite, and PostgreSQL when configured), the
department's on a SQLite file of its own.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.hub.test_federation import CSR, ENTITIES, FLOW, _free_port, flow, hub_process

BATCH = "/ngsi-ld/v1/entityOperations"
WRITES = ["redirectionOps"]


@pytest.fixture(scope="module")
def hubs(database_url: str) -> Iterator[tuple[str, str]]:
    home = Path(tempfile.mkdtemp(prefix="smartcity-fedwrites-"))
    try:
        with (
            hub_process(f"sqlite:///{home / 'td.db'}", home, "td-hub") as department,
            hub_process(database_url, home, "city-hub") as city,
        ):
            yield city, department
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def tenant() -> str:
    return f"w{uuid.uuid4().hex[:10]}"


def call(method: str, base: str, path: str, tenant: str, body: Any = None,
         **params: str) -> httpx.Response:  # fmt: skip
    return httpx.request(
        method, base + path, json=body, params=params, headers={"NGSILD-Tenant": tenant},
        timeout=30,
    )  # fmt: skip


def register(city: str, city_tenant: str, endpoint: str, information: list[dict[str, Any]],
             /, **extra: Any) -> str:  # fmt: skip
    reg_id = f"urn:ngsi-ld:ContextSourceRegistration:{uuid.uuid4().hex[:8]}"
    body = {"id": reg_id, "type": "ContextSourceRegistration", "information": information,
            "endpoint": endpoint, **extra}  # fmt: skip
    answer = call("POST", city, CSR, city_tenant, body)
    assert answer.status_code == 201, answer.text
    return reg_id


def key_values(base: str, entity_id: str, tenant: str, **params: str) -> dict[str, Any] | None:
    answer = call("GET", base, f"{ENTITIES}/{entity_id}", tenant, options="keyValues", **params)
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


class WriteStub:
    """A source that answers every write with ``status`` after ``delay`` s and records it."""

    def __init__(self, status: int = 204, delay: float = 0.0) -> None:
        self.status, self.delay = status, delay
        self.requests: list[tuple[str, str, bytes]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                stub.requests.append((self.command, self.path, self.rfile.read(length)))
                time.sleep(stub.delay)
                try:
                    self.send_response(stub.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass

            do_POST = do_PATCH = do_PUT = do_DELETE = _answer

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> WriteStub:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_inclusive_writes_go_to_the_city_and_the_department(
    hubs: tuple[str, str], tenant: str
) -> None:
    city, department = hubs
    road = "urn:ngsi-ld:TrafficFlowObserved:inc"
    register(city, tenant, department, [{"entities": [{"type": FLOW}]}],
             tenant=tenant, operations=WRITES)  # fmt: skip
    created = call("POST", city, ENTITIES, tenant, flow(road, intensity=1, laneCount=2))
    assert created.status_code == 201, created.text
    for base in (city, department):
        assert key_values(base, road, tenant, local="true") == {
            "id": road, "type": FLOW, "intensity": 1, "laneCount": 2,
        }  # fmt: skip

    patched = call("PATCH", city, f"{ENTITIES}/{road}/attrs", tenant,
                   {"intensity": {"type": "Property", "value": 5}})  # fmt: skip
    assert patched.status_code == 204, patched.text
    appended = call("POST", city, f"{ENTITIES}/{road}/attrs", tenant,
                    {"colour": {"type": "Property", "value": "red"}})  # fmt: skip
    assert appended.status_code == 204, appended.text
    one = call("PATCH", city, f"{ENTITIES}/{road}/attrs/laneCount", tenant, {"value": 3})
    assert one.status_code == 204, one.text
    for base in (city, department):
        found = key_values(base, road, tenant, local="true")
        assert found is not None
        assert (found["intensity"], found["colour"], found["laneCount"]) == (5, "red", 3)

    removed = call("DELETE", city, f"{ENTITIES}/{road}/attrs/colour", tenant)
    assert removed.status_code == 204, removed.text
    assert "colour" not in (key_values(department, road, tenant) or {})
    deleted = call("DELETE", city, f"{ENTITIES}/{road}", tenant)
    assert deleted.status_code == 204, deleted.text
    assert key_values(city, road, tenant, local="true") is None
    assert key_values(department, road, tenant) is None
    # Nobody holds it any more: 404, as without federation.
    assert call("DELETE", city, f"{ENTITIES}/{road}", tenant).status_code == 404

    # An entity only the department holds: the hub's own "not found" is no error.
    theirs = "urn:ngsi-ld:TrafficFlowObserved:theirs"
    assert call("POST", department, ENTITIES, tenant, flow(theirs, intensity=1)).status_code == 201
    patched = call("PATCH", city, f"{ENTITIES}/{theirs}/attrs", tenant,
                   {"intensity": {"type": "Property", "value": 8}})  # fmt: skip
    assert patched.status_code == 204, patched.text
    assert (key_values(department, theirs, tenant) or {})["intensity"] == 8
    assert key_values(city, theirs, tenant, local="true") is None
    deleted = call("POST", city, f"{BATCH}/delete", tenant, [theirs])
    assert deleted.status_code == 204, deleted.text
    assert key_values(department, theirs, tenant) is None


def test_exclusive_attributes_live_only_in_the_department(
    hubs: tuple[str, str], tenant: str
) -> None:
    city, department = hubs
    road = "urn:ngsi-ld:TrafficFlowObserved:exc"
    info = [{"entities": [{"id": road, "type": FLOW}], "propertyNames": ["intensity"]}]
    register(city, tenant, department, info, mode="exclusive", tenant=tenant,
             operations=WRITES)  # fmt: skip
    created = call("POST", city, ENTITIES, tenant, flow(road, intensity=9, laneCount=4))
    assert created.status_code == 201, created.text
    assert key_values(city, road, tenant, local="true") == {
        "id": road, "type": FLOW, "laneCount": 4,
    }  # fmt: skip
    assert key_values(department, road, tenant) == {"id": road, "type": FLOW, "intensity": 9}

    patched = call("PATCH", city, f"{ENTITIES}/{road}/attrs", tenant, {
        "intensity": {"type": "Property", "value": 10},
        "laneCount": {"type": "Property", "value": 5},
    })  # fmt: skip
    assert patched.status_code == 204, patched.text
    assert key_values(city, road, tenant, local="true") == {
        "id": road, "type": FLOW, "laneCount": 5,
    }  # fmt: skip
    assert key_values(department, road, tenant) == {"id": road, "type": FLOW, "intensity": 10}
    # Reads merge both halves.
    assert key_values(city, road, tenant) == {
        "id": road, "type": FLOW, "laneCount": 5, "intensity": 10,
    }  # fmt: skip
    # One attribute at a time: the fragment goes whole to the source that owns it.
    one = call("PATCH", city, f"{ENTITIES}/{road}/attrs/intensity", tenant, {"value": 11})
    assert one.status_code == 204, one.text
    assert (key_values(department, road, tenant) or {})["intensity"] == 11
    replaced = call("PUT", city, f"{ENTITIES}/{road}/attrs/intensity", tenant,
                    {"type": "Property", "value": 12})  # fmt: skip
    assert replaced.status_code == 204, replaced.text
    assert (key_values(department, road, tenant) or {})["intensity"] == 12
    removed = call("DELETE", city, f"{ENTITIES}/{road}/attrs/intensity", tenant)
    assert removed.status_code == 204, removed.text
    assert key_values(department, road, tenant) == {"id": road, "type": FLOW}
    assert key_values(city, road, tenant, local="true") == {
        "id": road, "type": FLOW, "laneCount": 5,
    }  # fmt: skip


def test_redirect_writes_bypass_the_city(hubs: tuple[str, str], tenant: str) -> None:
    city, department = hubs
    register(city, tenant, department,
             [{"entities": [{"type": FLOW, "idPattern": "^urn:ngsi-ld:TrafficFlowObserved:r"}]}],
             mode="redirect", tenant=tenant, operations=WRITES)  # fmt: skip
    ids = [f"urn:ngsi-ld:TrafficFlowObserved:r{n}" for n in range(2)]
    mine = "urn:ngsi-ld:TrafficFlowObserved:city"
    batch = [flow(i, intensity=n) for n, i in enumerate(ids)] + [flow(mine, intensity=7)]
    created = call("POST", city, f"{BATCH}/create", tenant, batch)
    assert created.status_code == 201, created.text
    assert sorted(created.json()) == sorted([*ids, mine])
    for entity_id in ids:
        assert key_values(city, entity_id, tenant, local="true") is None
        assert key_values(department, entity_id, tenant) is not None
    assert key_values(city, mine, tenant, local="true") is not None
    assert key_values(department, mine, tenant) is None

    upserted = call("POST", city, f"{BATCH}/upsert", tenant,
                    [flow(ids[0], intensity=50)], options="update")  # fmt: skip
    assert upserted.status_code == 204, upserted.text
    assert (key_values(department, ids[0], tenant) or {})["intensity"] == 50

    deleted = call("POST", city, f"{BATCH}/delete", tenant, [*ids, mine])
    assert deleted.status_code == 204, deleted.text
    assert all(key_values(department, i, tenant) is None for i in ids)
    assert key_values(city, mine, tenant, local="true") is None


def test_a_dead_and_a_slow_department_are_reported_per_source(
    hubs: tuple[str, str], tenant: str
) -> None:
    city, _ = hubs
    dead = f"http://127.0.0.1:{_free_port()}"
    road = "urn:ngsi-ld:TrafficFlowObserved:partial"
    with WriteStub(delay=10.0) as slow:
        info = [{"entities": [{"type": FLOW}]}]
        dead_id = register(city, tenant, dead, info, operations=WRITES)
        slow_id = register(city, tenant, slow.url, info, operations=WRITES,
                           management={"timeout": 500})  # fmt: skip
        started = time.monotonic()
        created = call("POST", city, ENTITIES, tenant, flow(road, intensity=1))
        assert time.monotonic() - started < 4
        assert created.status_code == 207, created.text
        result = created.json()
        assert result["success"] == [road]  # the city's own part was written
        by_reg = {e["registrationId"]: e for e in result["errors"]}
        assert set(by_reg) == {dead_id, slow_id}
        assert by_reg[slow_id]["error"]["status"] == 504
        assert by_reg[slow_id]["entityId"] == road
        assert by_reg[dead_id]["error"]["status"] == 502
        assert "ConnectError" in by_reg[dead_id]["error"]["detail"]
        assert key_values(city, road, tenant, local="true") == {
            "id": road, "type": FLOW, "intensity": 1,
        }  # fmt: skip

        started = time.monotonic()
        patched = call("PATCH", city, f"{ENTITIES}/{road}/attrs", tenant,
                       {"intensity": {"type": "Property", "value": 2}})  # fmt: skip
        assert time.monotonic() - started < 4
        assert patched.status_code == 207, patched.text
        update = patched.json()
        assert update["updated"] == ["intensity"]
        assert {e["registrationId"] for e in update["notUpdated"]} == {dead_id, slow_id}
        assert {e["attributeName"] for e in update["notUpdated"]} == {"intensity"}
        assert (key_values(city, road, tenant, local="true") or {})["intensity"] == 2

        batch = call("POST", city, f"{BATCH}/update", tenant, [flow(road, intensity=3)])
        assert batch.status_code == 207, batch.text
        assert batch.json()["success"] == [road]
        assert {e["registrationId"] for e in batch.json()["errors"]} == {dead_id, slow_id}
    status = call("GET", city, f"{CSR}/{dead_id}", tenant).json()
    assert status["status"] == "failed" and status["timesFailed"] >= 3


def test_what_is_not_forwarded(hubs: tuple[str, str], tenant: str) -> None:
    """The default operations (federationOps) and auxiliary registrations receive no write,
    nor does any source with local=true."""
    city, _ = hubs
    info = [{"entities": [{"type": FLOW}]}]
    with WriteStub() as default, WriteStub() as auxiliary, WriteStub() as writer:
        register(city, tenant, default.url, info)
        register(city, tenant, auxiliary.url, info, mode="auxiliary")
        register(city, tenant, writer.url, info, operations=["createEntity"])
        road = "urn:ngsi-ld:TrafficFlowObserved:quiet"
        local = call("POST", city, ENTITIES, tenant, flow(road, intensity=1), local="true")
        assert local.status_code == 201, local.text
        assert writer.requests == []
        other = "urn:ngsi-ld:TrafficFlowObserved:loud"
        assert call("POST", city, ENTITIES, tenant, flow(other, intensity=1)).status_code == 201
        assert [(m, p.split("?")[0]) for m, p, _ in writer.requests] == [
            ("POST", "/ngsi-ld/v1/entities")
        ]
        assert "local=true" in writer.requests[0][1]
        # updateEntity is not among the operations the writer offers.
        patched = call("PATCH", city, f"{ENTITIES}/{other}/attrs", tenant,
                       {"intensity": {"type": "Property", "value": 2}})  # fmt: skip
        assert patched.status_code == 204
        assert len(writer.requests) == 1
    assert default.requests == [] and auxiliary.requests == []


def test_post_query_is_distributed(hubs: tuple[str, str], tenant: str) -> None:
    city, department = hubs
    theirs = "urn:ngsi-ld:TrafficFlowObserved:dept"
    ours = "urn:ngsi-ld:TrafficFlowObserved:ours"
    assert call("POST", department, ENTITIES, tenant, flow(theirs, intensity=3)).status_code == 201
    assert call("POST", city, ENTITIES, tenant, flow(ours, intensity=4)).status_code == 201
    register(city, tenant, department, [{"entities": [{"type": FLOW}]}], tenant=tenant)
    query = {"type": "Query", "entities": [{"type": FLOW}], "q": "intensity>2"}
    found = call("POST", city, f"{BATCH}/query", tenant, query, count="true",
                 options="keyValues")  # fmt: skip
    assert found.status_code == 200, found.text
    assert sorted(e["id"] for e in found.json()) == [theirs, ours]
    assert {e["intensity"] for e in found.json()} == {3, 4}
    assert found.headers["NGSILD-Results-Count"] == "2"
    narrowed = call("POST", city, f"{BATCH}/query", tenant, {**query, "q": "intensity>3"})
    assert [e["id"] for e in narrowed.json()] == [ours]
    local = call("POST", city, f"{BATCH}/query", tenant, query, local="true")
    assert [e["id"] for e in local.json()] == [ours]


def test_discovery_lists_what_sources_provide(hubs: tuple[str, str], tenant: str) -> None:
    """/types and /attributes list the department's types and attributes (from its answers)
    and what the registrations declare, even for a source that is down."""
    city, department = hubs
    sensor = {"id": "urn:ngsi-ld:AirQualityObserved:1", "type": "AirQualityObserved",
              "no2": {"type": "Property", "value": 40}}  # fmt: skip
    assert call("POST", department, ENTITIES, tenant, sensor).status_code == 201
    for base, name, value in ((city, "d", 2), (department, "e", 3)):
        body = flow(f"urn:ngsi-ld:{FLOW}:{name}", intensity=value)
        assert call("POST", base, ENTITIES, tenant, body).status_code == 201
    register(city, tenant, department, [{"entities": [{"type": "AirQualityObserved"}]},
             {"entities": [{"type": FLOW}]}], tenant=tenant)  # fmt: skip
    dead = f"http://127.0.0.1:{_free_port()}"
    register(city, tenant, dead, [{"entities": [{"type": "WaterQualityObserved"}],
                                   "propertyNames": ["turbidity"]}])  # fmt: skip

    types = call("GET", city, "/ngsi-ld/v1/types", tenant)
    assert types.status_code == 200, types.text
    assert sorted(types.json()["typeList"]) == [
        "AirQualityObserved", FLOW, "WaterQualityObserved",
    ]  # fmt: skip
    assert "NGSILD-Warning" in types.headers  # the dead source
    flow_info = call("GET", city, f"/ngsi-ld/v1/types/{FLOW}", tenant).json()
    assert flow_info["entityCount"] == 2  # one here, one in the department
    air = call("GET", city, "/ngsi-ld/v1/types/AirQualityObserved", tenant)
    assert air.status_code == 200, air.text
    assert air.json()["entityCount"] == 1
    assert [a["attributeName"] for a in air.json()["attributeDetails"]] == ["no2"]
    water = call("GET", city, "/ngsi-ld/v1/types/WaterQualityObserved", tenant).json()
    assert water["attributeDetails"][0]["attributeName"] == "turbidity"
    assert call("GET", city, "/ngsi-ld/v1/types/Nothing", tenant).status_code == 404

    attrs = call("GET", city, "/ngsi-ld/v1/attributes", tenant).json()["attributeList"]
    assert sorted(attrs) == ["intensity", "no2", "turbidity"]
    no2 = call("GET", city, "/ngsi-ld/v1/attributes/no2", tenant)
    assert no2.status_code == 200, no2.text
    assert no2.json()["typeNames"] == ["AirQualityObserved"]
    assert no2.json()["attributeCount"] == 1
    intensity = call("GET", city, "/ngsi-ld/v1/attributes/intensity", tenant).json()
    assert intensity["attributeCount"] == 2
    details = call("GET", city, "/ngsi-ld/v1/attributes", tenant, details="true").json()
    assert {d["attributeName"] for d in details} == {"intensity", "no2", "turbidity"}
    local = call("GET", city, "/ngsi-ld/v1/types", tenant, local="true").json()
    assert local["typeList"] == [FLOW]


class Receiver:
    """A notification receiver that records the JSON bodies it is sent."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.bodies.append(httpx.Response(200, content=self.rfile.read(length)).json())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, entity_id: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body in self.bodies:
                if any(e.get("id") == entity_id for e in body.get("data", [])):
                    return dict(body)
            time.sleep(0.1)
        raise AssertionError(f"no notification about {entity_id}: {self.bodies}")


def test_subscriptions_are_created_on_the_department(hubs: tuple[str, str], tenant: str) -> None:
    city, department = hubs
    register(city, tenant, department, [{"entities": [{"type": FLOW}]}], tenant=tenant)
    dead = f"http://127.0.0.1:{_free_port()}"
    dead_id = register(city, tenant, dead, [{"entities": [{"type": FLOW}]}])
    register(city, tenant, dead, [{"entities": [{"type": "Road"}]}])  # not about FLOW
    receiver = Receiver()
    sub_id = f"urn:ngsi-ld:Subscription:{uuid.uuid4().hex[:8]}"
    subscription = {"id": sub_id, "type": "Subscription", "entities": [{"type": FLOW}],
                    "notification": {"endpoint": {"uri": receiver.url}}}  # fmt: skip
    try:
        created = call("POST", city, "/ngsi-ld/v1/subscriptions", tenant, subscription)
        assert created.status_code == 201, created.text
        warning = created.headers["NGSILD-Warning"]  # the dead source, and only that one
        assert dead_id in warning and warning.count("199 city-hub") == 1
        on_department = call("GET", department, f"/ngsi-ld/v1/subscriptions/{sub_id}", tenant)
        assert on_department.status_code == 200, on_department.text
        assert on_department.json()["notification"]["endpoint"]["uri"] == receiver.url

        # The department's own write notifies the subscriber under the city's subscription id.
        theirs = "urn:ngsi-ld:TrafficFlowObserved:sub-dept"
        assert (
            call("POST", department, ENTITIES, tenant, flow(theirs, intensity=1)).status_code == 201
        )
        assert receiver.wait_for(theirs)["subscriptionId"] == sub_id
        ours = "urn:ngsi-ld:TrafficFlowObserved:sub-city"
        assert call("POST", city, ENTITIES, tenant, flow(ours, intensity=1)).status_code == 201
        assert receiver.wait_for(ours)["subscriptionId"] == sub_id

        patched = call("PATCH", city, f"/ngsi-ld/v1/subscriptions/{sub_id}", tenant,
                       {"description": "TD and city flows"})  # fmt: skip
        assert patched.status_code == 204, patched.text
        remote = call("GET", department, f"/ngsi-ld/v1/subscriptions/{sub_id}", tenant).json()
        assert remote["description"] == "TD and city flows"

        deleted = call("DELETE", city, f"/ngsi-ld/v1/subscriptions/{sub_id}", tenant)
        assert deleted.status_code == 204, deleted.text
        gone = call("GET", department, f"/ngsi-ld/v1/subscriptions/{sub_id}", tenant)
        assert gone.status_code == 404
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def test_a_key_values_merge_reaches_the_department_as_it_was_meant(
    hubs: tuple[str, str], tenant: str
) -> None:
    """Merge Entity with ``format=keyValues`` (clause 5.6.17). Where the city holds the entity,
    it reads the fragment against its copy and sends the department that reading, without
    ``format`` and ``lang`` (the department would read the normalized fragment as simplified
    values again); where only the department holds it, the department gets the fragment and
    the parameters as the client sent them, and reads them against its own copy."""
    city, department = hubs
    road = "urn:ngsi-ld:TrafficFlowObserved:kv"
    register(city, tenant, department, [{"entities": [{"type": FLOW}]}],
             tenant=tenant, operations=WRITES)  # fmt: skip
    created = call("POST", city, ENTITIES, tenant, flow(road, intensity=1))
    assert created.status_code == 201, created.text
    merged = call("PATCH", city, f"{ENTITIES}/{road}", tenant, {"intensity": 9},
                  format="keyValues", observedAt="2026-12-08T01:00:00Z")  # fmt: skip
    assert merged.status_code == 204, merged.text
    for base in (city, department):
        assert (key_values(base, road, tenant, local="true") or {}).get("intensity") == 9, base
    merged = call(
        "PATCH", city, f"{ENTITIES}/{road}", tenant, {"intensity": 10}, options="keyValues"
    )  # fmt: skip  (the deprecated spelling)
    assert merged.status_code == 204, merged.text
    for base in (city, department):
        assert (key_values(base, road, tenant, local="true") or {}).get("intensity") == 10, base

    theirs = "urn:ngsi-ld:TrafficFlowObserved:kv-theirs"
    body = {**flow(theirs, intensity=1),
            "refRoad": {"type": "Relationship", "object": "urn:ngsi-ld:Road:1"}}  # fmt: skip
    assert call("POST", department, ENTITIES, tenant, body).status_code == 201
    fragment = {"refRoad": "urn:ngsi-ld:Road:2", "intensity": 4}
    merged = call("PATCH", city, f"{ENTITIES}/{theirs}", tenant, fragment, format="keyValues")
    assert merged.status_code == 204, merged.text
    held = call("GET", department, f"{ENTITIES}/{theirs}", tenant).json()
    assert held["refRoad"]["type"] == "Relationship", held
    assert held["refRoad"]["object"] == "urn:ngsi-ld:Road:2"
    assert held["intensity"]["value"] == 4
