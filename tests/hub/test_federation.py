"""Federation across real server processes: a department's hub registered with the city's hub.

Two ``smartcity serve`` processes on free loopback ports (the city's on PostgreSQL when
SMARTCITY_TEST_POSTGRES_URL is set), plus two stand-ins for broken department brokers: a
closed port (down) and a server that answers only after the timeout (slow). The city's reads
must merge the department's entities with its own, and must answer in time, with its own data
and a warning, whatever the broken ones do.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
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

CSR = "/ngsi-ld/v1/csourceRegistrations"
ENTITIES = "/ngsi-ld/v1/entities"
TEMPORAL = "/ngsi-ld/v1/temporal/entities"
FLOW = "TrafficFlowObserved"
TD_ONLY = "urn:ngsi-ld:TrafficFlowObserved:td-only"
CITY_ONLY = "urn:ngsi-ld:TrafficFlowObserved:city-only"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def hub_process(database_url: str, home: Path, alias: str) -> Iterator[str]:
    """``smartcity serve --no-auth`` on ``database_url`` (migrated first); yields its URL."""
    env = {
        **os.environ,
        "SMARTCITY_HOME": str(home),
        "SMARTCITY_DATABASE_URL": database_url,
        "SMARTCITY_HOST_ALIAS": alias,
    }
    upgrade = subprocess.run(
        [sys.executable, "-m", "smartcity", "db", "upgrade"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert upgrade.returncode == 0, upgrade.stderr
    port = _free_port()
    log_path = home / f"{alias}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "smartcity", "serve", "--no-auth", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{alias} exited: {log_path.read_text()}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{alias} did not start within 60 s")
                time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


class StubBroker:
    """A department broker that answers a query with ``body`` (a list of entities), a
    retrieval with its first entity, after ``delay`` seconds; it records what it was sent."""

    def __init__(self, delay: float, body: Any) -> None:
        self.delay = delay
        self.body = body
        self.requests: list[tuple[str, dict[str, str]]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.requests.append((self.path, dict(self.headers)))
                time.sleep(stub.delay)
                retrieval = self.path.split("?")[0].startswith("/ngsi-ld/v1/entities/")
                answer = stub.body[0] if retrieval and stub.body else stub.body
                payload = httpx.Response(200, json=answer).content
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the hub gave up and closed the connection
                    pass

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StubBroker:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def hubs(database_url: str) -> Iterator[tuple[str, str]]:
    """(city, department): the city's hub on the test database of each backend (SQLite, and
    PostgreSQL when configured), the department's on a SQLite file of its own."""
    home = Path(tempfile.mkdtemp(prefix="smartcity-federation-"))
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
    """A tenant of the test's own on both hubs, so tests never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}"


def flow(entity_id: str, **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": entity_id, "type": FLOW}
    body.update({k: {"type": "Property", "value": v} for k, v in attrs.items()})
    return body


def post(base: str, path: str, body: Any, tenant: str) -> None:
    response = httpx.post(base + path, json=body, headers={"NGSILD-Tenant": tenant})
    assert response.status_code == 201, response.text


def register(city: str, city_tenant: str, endpoint: str, **extra: Any) -> str:
    reg_id = f"urn:ngsi-ld:ContextSourceRegistration:{uuid.uuid4().hex[:8]}"
    body = {
        "id": reg_id,
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": FLOW}]}],
        "endpoint": endpoint,
        **extra,
    }
    post(city, CSR, body, city_tenant)
    return reg_id


def get(base: str, path: str, tenant: str, **params: Any) -> httpx.Response:
    return httpx.get(base + path, params=params, headers={"NGSILD-Tenant": tenant}, timeout=30)


def test_query_and_retrieve_merge_the_department_with_the_city(
    hubs: tuple[str, str], tenant: str
) -> None:
    city, department = hubs
    td = tenant + "-td"
    shared = "urn:ngsi-ld:TrafficFlowObserved:nathan-road"
    post(department, ENTITIES, flow(shared, intensity=120), td)
    post(department, ENTITIES, flow(TD_ONLY, intensity=7), td)
    post(city, ENTITIES, flow(shared, laneCount=4), tenant)
    post(city, ENTITIES, flow(CITY_ONLY, laneCount=2), tenant)
    # The department keeps its data in a tenant of its own name; the registration says so.
    register(city, tenant, department, tenant=td)

    found = get(city, ENTITIES, tenant, type=FLOW, count="true")
    assert found.status_code == 200, found.text
    assert "NGSILD-Warning" not in found.headers
    by_id = {e["id"]: e for e in found.json()}
    assert set(by_id) == {shared, TD_ONLY, CITY_ONLY}
    assert by_id[shared]["intensity"]["value"] == 120  # from the department
    assert by_id[shared]["laneCount"]["value"] == 4  # from the city
    assert found.headers["NGSILD-Results-Count"] == "3"

    one = get(city, f"{ENTITIES}/{shared}", tenant, options="keyValues")
    assert one.status_code == 200, one.text
    assert one.json() == {"id": shared, "type": FLOW, "laneCount": 4, "intensity": 120}
    remote_only = get(city, f"{ENTITIES}/urn:ngsi-ld:TrafficFlowObserved:td-only", tenant)
    assert remote_only.status_code == 200 and remote_only.json()["intensity"]["value"] == 7
    assert get(city, f"{ENTITIES}/urn:ngsi-ld:TrafficFlowObserved:none", tenant).status_code == 404

    # local=true keeps a query on the city's own data.
    local = get(city, ENTITIES, tenant, type=FLOW, local="true")
    assert {e["id"] for e in local.json()} == {shared, CITY_ONLY}
    assert "intensity" not in {k for e in local.json() for k in e}
    # Other types are not forwarded: the registration is about TrafficFlowObserved only.
    post(department, ENTITIES, {"id": "urn:ngsi-ld:Road:1", "type": "Road"}, td)
    assert get(city, ENTITIES, tenant, type="Road").json() == []


def test_paging_over_both_hubs(hubs: tuple[str, str], tenant: str) -> None:
    city, department = hubs
    for n in range(3):
        post(city, ENTITIES, flow(f"urn:ngsi-ld:TrafficFlowObserved:c{n}", laneCount=n), tenant)
        post(
            department, ENTITIES, flow(f"urn:ngsi-ld:TrafficFlowObserved:d{n}", laneCount=n), tenant
        )
    register(city, tenant, department, tenant=tenant)
    pages = [
        [e["id"][-2:] for e in get(city, ENTITIES, tenant, type=FLOW, limit=4, offset=o).json()]
        for o in (0, 4)
    ]
    assert pages == [["c0", "c1", "c2", "d0"], ["d1", "d2"]]


def test_forwarded_requests_carry_local_via_tenant_and_source_info(
    hubs: tuple[str, str], tenant: str
) -> None:
    city, _ = hubs
    with StubBroker(0, [flow("urn:ngsi-ld:TrafficFlowObserved:stub", intensity=1)]) as stub:
        register(
            city, tenant, stub.url, tenant="epd",
            contextSourceInfo=[{"key": "Authorization", "value": "Bearer dept-key"}],
            information=[{"entities": [{"type": FLOW}], "propertyNames": ["intensity"]}],
        )  # fmt: skip
        found = get(city, ENTITIES, tenant, type=FLOW)
        assert [e["id"] for e in found.json()] == ["urn:ngsi-ld:TrafficFlowObserved:stub"]
    path, headers = stub.requests[0]
    assert path.startswith("/ngsi-ld/v1/entities?")
    assert "local=true" in path
    assert "attrs=https%3A%2F%2Furi.etsi.org%2Fngsi-ld%2Fdefault-context%2Fintensity" in path
    assert headers["NGSILD-Tenant"] == "epd"
    assert headers["Authorization"] == "Bearer dept-key"
    assert headers["Via"] == "1.1 city-hub"


def test_a_dead_and_a_slow_department_never_hold_up_the_city(
    hubs: tuple[str, str], tenant: str
) -> None:
    city, _ = hubs
    mine = "urn:ngsi-ld:TrafficFlowObserved:city"
    post(city, ENTITIES, flow(mine, laneCount=3), tenant)
    dead = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    with StubBroker(10.0, []) as slow:
        dead_id = register(city, tenant, dead)
        slow_id = register(city, tenant, slow.url, management={"timeout": 500})
        started = time.monotonic()
        found = get(city, ENTITIES, tenant, type=FLOW)
        elapsed = time.monotonic() - started
        assert found.status_code == 200, found.text
        # 0.5 s for the slow source plus the city's own work, far from the slow one's 10 s
        # (the bound leaves room for a loaded test machine).
        assert elapsed < 4, f"the city's query took {elapsed:.1f} s"
        assert [e["id"] for e in found.json()] == [mine]
        warning = found.headers["NGSILD-Warning"]
        assert warning.count("199 city-hub") == 2
        assert dead_id in warning and slow_id in warning
        assert "no answer within 0.5 s" in warning

        started = time.monotonic()
        one = get(city, f"{ENTITIES}/{mine}", tenant)
        assert time.monotonic() - started < 4
        assert one.status_code == 200 and one.json()["laneCount"]["value"] == 3
        assert slow_id in one.headers["NGSILD-Warning"]
        missing = get(city, f"{ENTITIES}/urn:ngsi-ld:TrafficFlowObserved:none", tenant)
        assert missing.status_code == 404 and "NGSILD-Warning" in missing.headers

    # The registration reports the failures (clause 5.2.9 status members).
    status = get(city, f"{CSR}/{slow_id}", tenant).json()
    assert status["status"] == "failed"
    assert status["timesFailed"] >= 2 and "lastFailure" in status


def test_temporal_queries_are_forwarded(hubs: tuple[str, str], tenant: str) -> None:
    city, department = hubs
    observed = {"type": "Property", "value": 80, "observedAt": "2026-11-30T08:00:00Z"}
    body = {"id": "urn:ngsi-ld:TrafficFlowObserved:t1", "type": FLOW, "intensity": observed}
    post(department, ENTITIES, body, tenant)
    register(city, tenant, department, tenant=tenant)
    params = {"type": FLOW, "timerel": "after", "timeAt": "2026-11-01T00:00:00Z"}
    found = get(city, TEMPORAL, tenant, **params)
    assert found.status_code == 200, found.text
    [entity] = found.json()
    assert entity["id"] == "urn:ngsi-ld:TrafficFlowObserved:t1"
    assert entity["intensity"][0]["value"] == 80
    one = get(city, f"{TEMPORAL}/urn:ngsi-ld:TrafficFlowObserved:t1", tenant, **params)
    assert one.status_code == 200 and one.json()["intensity"][0]["value"] == 80
    assert get(city, TEMPORAL, tenant, local="true", **params).json() == []
    # The POST form of the query is forwarded as the equivalent GET.
    query = {
        "type": "Query",
        "entities": [{"type": FLOW}],
        "temporalQ": {"timerel": "after", "timeAt": "2026-11-01T00:00:00Z"},
    }
    posted = httpx.post(
        city + "/ngsi-ld/v1/temporal/entityOperations/query",
        json=query,
        headers={"NGSILD-Tenant": tenant},
    )
    assert posted.status_code == 200, posted.text
    assert [e["id"] for e in posted.json()] == ["urn:ngsi-ld:TrafficFlowObserved:t1"]


def test_modes_decide_whose_attribute_values_win(hubs: tuple[str, str], tenant: str) -> None:
    """Exclusive sources win over the hub's own values, which win over inclusive ones."""
    city, _ = hubs
    road = "urn:ngsi-ld:TrafficFlowObserved:road"
    post(city, ENTITIES, flow(road, intensity=1, laneCount=2), tenant)
    exclusive = [{"entities": [{"id": road, "type": FLOW}], "propertyNames": ["intensity"]}]
    owned = {"id": road, "type": FLOW, "intensity": 99}
    offered = {"id": road, "type": FLOW, "intensity": 50, "laneCount": 7, "colour": "red"}
    with StubBroker(0, [owned]) as owner, StubBroker(0, [offered]) as other:
        register(city, tenant, other.url)
        register(city, tenant, owner.url, mode="exclusive", information=exclusive)
        found = get(city, f"{ENTITIES}/{road}", tenant, options="keyValues").json()
    assert found == {"id": road, "type": FLOW, "intensity": 99, "laneCount": 2, "colour": "red"}


def test_a_registration_of_a_period_is_asked_temporal_requests_only(
    hubs: tuple[str, str], tenant: str
) -> None:
    """A registration with an observationInterval offers temporal representations only (the
    v1.8.1 CsourceRegistration: latest information needs a registration of its own): queries,
    retrievals and writes of the latest state are not forwarded to it, temporal queries are.
    Before, every request went to it."""
    city, _ = hubs
    flow_id = "urn:ngsi-ld:TrafficFlowObserved:period"
    with StubBroker(0, [{"id": flow_id, "type": FLOW}]) as stub:
        register(city, tenant, stub.url, observationInterval={"startAt": "2026-01-01T00:00:00Z"})
        assert get(city, ENTITIES, tenant, type=FLOW).status_code == 200
        assert get(city, f"{ENTITIES}/{flow_id}", tenant).status_code == 404
        post(city, ENTITIES, flow(flow_id, intensity=3), tenant)  # created here, not there
        assert stub.requests == []
        params = {"type": FLOW, "timerel": "after", "timeAt": "2026-11-01T00:00:00Z"}
        assert get(city, TEMPORAL, tenant, **params).status_code == 200
        assert [path.split("?")[0] for path, _ in stub.requests] == [TEMPORAL]


def test_a_registration_of_a_period_is_asked_about_that_period_only(
    hubs: tuple[str, str], tenant: str
) -> None:
    """A temporal query goes to a registration of a period only when its interval overlaps
    the time asked about (observedAt: observationInterval; createdAt, modifiedAt, deletedAt:
    managementInterval); a registration without an interval is asked every one."""
    city, _ = hubs
    first_half = {"startAt": "2026-01-01T00:00:00Z", "endAt": "2026-07-01T00:00:00Z"}
    with StubBroker(0, []) as h1, StubBroker(0, []) as managed, StubBroker(0, []) as live:
        register(city, tenant, h1.url, observationInterval=first_half)
        register(city, tenant, managed.url, managementInterval=first_half)
        register(city, tenant, live.url)

        def asked(**params: str) -> list[str]:
            for stub in (h1, managed, live):
                stub.requests.clear()
            response = get(city, TEMPORAL, tenant, type=FLOW, **params)
            assert response.status_code == 200, response.text
            named = {"h1": h1, "managed": managed, "live": live}
            return sorted(name for name, stub in named.items() if stub.requests)

        assert asked(timerel="after", timeAt="2026-11-01T00:00:00Z") == ["live"]
        assert asked(timerel="before", timeAt="2026-02-01T00:00:00Z") == ["h1", "live"]
        between = {"timerel": "between", "timeAt": "2026-03-01T00:00:00Z",
                   "endTimeAt": "2026-04-01T00:00:00Z"}  # fmt: skip
        assert asked(**between) == ["h1", "live"]
        assert asked(**between, timeproperty="modifiedAt") == ["live", "managed"]


def test_what_is_not_forwarded(hubs: tuple[str, str], tenant: str) -> None:
    """Operations the registration does not offer, requests that already passed through this
    hub (Via), and sources cooling down after a failure are not asked."""
    city, _ = hubs
    with StubBroker(0, []) as stub:
        register(city, tenant, stub.url, operations=["retrieveOps"])
        params = {"type": FLOW, "timerel": "after", "timeAt": "2026-11-01T00:00:00Z"}
        assert get(city, TEMPORAL, tenant, **params).status_code == 200
        assert stub.requests == []  # queryTemporal is not among retrieveOps
        looped = httpx.get(
            city + ENTITIES,
            params={"type": FLOW},
            headers={"NGSILD-Tenant": tenant, "Via": "1.1 td-hub, 1.1 city-hub"},
        )
        assert looped.status_code == 200 and stub.requests == []
        assert get(city, ENTITIES, tenant, type=FLOW).status_code == 200
        assert len(stub.requests) == 1

    dead = f"http://127.0.0.1:{_free_port()}"
    other = tenant + "-b"
    register(city, other, dead, management={"cooldown": 60_000})
    first = get(city, ENTITIES, other, type=FLOW).headers["NGSILD-Warning"]
    assert "ConnectError" in first
    second = get(city, ENTITIES, other, type=FLOW).headers["NGSILD-Warning"]
    assert "cooling down" in second
