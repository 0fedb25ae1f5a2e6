"""The reference deployment's load balancer, for real: HAProxy run from deploy/haproxy.cfg in
front of two `smartcity serve` nodes on one PostgreSQL database, each with a home of its own.
Requests reach both nodes; what one node writes or signs (an entity, a session, a CSRF token)
holds on the other; the nodes count the client's address, not the proxy's, and not one the
client made up; a node killed with SIGKILL leaves the rotation and no request fails for it."""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import orjson
import pytest
from tests.city_context import city_link
from tests.cluster.haproxy_support import LoadBalancer, render
from tests.cluster.test_nodes import PASSWORD, cluster_db, start_node  # noqa: F401
from tests.hostile.harness import CLI, Server, free_port

from smartcity.security.keys import KeyStore
from smartcity.storage.engine import Database

PG_URL = os.environ.get("SMARTCITY_TEST_POSTGRES_URL")
pytestmark = [
    pytest.mark.skipif(not PG_URL, reason="needs SMARTCITY_TEST_POSTGRES_URL"),
    pytest.mark.slow,  # three processes started, one killed: about half a minute
]
PRIVACY_PER_IP = 2  # privacy requests an address may make an hour, for these nodes
CKAN_KEY: list[str] = []  # the open data portal's sysadmin, made by the fixture


@pytest.fixture(scope="module")
def cluster(
    cluster_db: Database,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LoadBalancer, dict[str, Server]]]:
    """HAProxy (the repository's configuration) in front of two nodes that trust it."""
    env = {
        "SMARTCITY_SECRET": "",  # nothing shared but the database
        "SMARTCITY_TRUSTED_PROXIES": "127.0.0.1",  # HAProxy connects to the nodes from here
        "SMARTCITY_FEEDBACK_RATE_PRIVACY_IP": f"{PRIVACY_PER_IP}/3600",
    }
    # Uploads on a directory every node mounts (docs/deploy.md, "Files"), not in their homes.
    env["SMARTCITY_OPENDATA_DIR"] = str(tmp_path_factory.mktemp("shared-opendata"))
    _, token = KeyStore(cluster_db).create("lb-test")
    for args in (["opendata", "seed"], ["keys", "create", "lb-data-office"],
                 ["opendata", "sysadmin", "add", "lb-data-office"]):  # fmt: skip
        done = subprocess.run([*CLI, *args, "--database", cluster_db.url], capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        if args[0] == "keys":
            CKAN_KEY.append(done.stdout.strip().splitlines()[-1])
    ports = {"node1": free_port(), "node2": free_port()}
    nodes = {
        name: Server(
            f"http://127.0.0.1:{port}",
            token,
            start_node(cluster_db.url, tmp_path_factory.mktemp(name), env, port),
            cluster_db.url,
        )
        for name, port in ports.items()
    }
    lb = LoadBalancer(
        {name: f"127.0.0.1:{port}" for name, port in ports.items()},
        tmp_path_factory.mktemp("haproxy"),
        free_port(),
        free_port(),
    )
    try:
        lb.wait_up(list(nodes), timeout=60)
        yield lb, nodes
    finally:
        lb.stop()
        for node in nodes.values():
            if node.proc.poll() is None:
                node.proc.terminate()
        for node in nodes.values():
            try:
                node.proc.wait(20)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(10)


def served_by(r: httpx.Response) -> str:
    return r.headers["X-Served-By"]


def from_address(ip: str) -> httpx.HTTPTransport:
    """A client connecting from ``ip`` (any 127.x.y.z is this machine): another user."""
    return httpx.HTTPTransport(local_address=ip)


def test_the_repository_file_gets_the_nodes_and_keeps_the_rest() -> None:
    config = "backend b\n    balance leastconn\n    server a 1.1.1.1:1\n    server b 2.2.2.2:2\nx\n"
    assert render({"n1": "127.0.0.1:5", "n2": "127.0.0.1:6", "n3": "127.0.0.1:7"}, config) == (
        "backend b\n    balance leastconn\n    server n1 127.0.0.1:5\n"
        "    server n2 127.0.0.1:6\n    server n3 127.0.0.1:7\nx\n"
    )


def test_requests_reach_every_node(cluster: tuple[LoadBalancer, dict[str, Server]]) -> None:
    lb, nodes = cluster
    with httpx.Client(base_url=lb.base, timeout=30) as http:
        answers = [http.get("/healthz") for _ in range(10)]
    assert all(r.status_code == 200 for r in answers)
    # HAProxy's name for the node, and the node's own name for itself, agree.
    seen = {served_by(r): r.json()["node"] for r in answers}
    assert set(seen) == set(nodes)
    assert len(set(seen.values())) == 2
    for name, node in nodes.items():
        assert f":{node.proc.pid}:" in seen[name]


def test_a_write_through_one_node_reads_back_through_the_other(
    cluster: tuple[LoadBalancer, dict[str, Server]],
) -> None:
    lb, nodes = cluster
    auth = next(iter(nodes.values())).auth
    entity_id = f"urn:ngsi-ld:Probe:lb-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=lb.base, timeout=30, headers=auth) as http:
        created = http.post("/ngsi-ld/v1/entities", json={
            "id": entity_id, "type": "Probe",
            "speed": {"type": "Property", "value": 42}})  # fmt: skip
        assert created.status_code == 201, created.text
        readers = Counter()
        for _ in range(6):
            r = http.get(f"/ngsi-ld/v1/entities/{entity_id}", params={"options": "keyValues"})
            assert r.status_code == 200, r.text
            assert r.json()["speed"] == 42
            readers[served_by(r)] += 1
    assert set(readers) == set(nodes)  # read back by the node that wrote it and the other


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def test_a_session_started_on_one_node_holds_on_the_other(
    cluster: tuple[LoadBalancer, dict[str, Server]],
) -> None:
    lb, nodes = cluster
    for _ in range(10):  # until the form and the sign-in are answered by different nodes
        with httpx.Client(base_url=lb.base, timeout=30) as browser:
            form = browser.get("/en/login")
            token = csrf(form.text)
            r = browser.post("/en/login", data={
                "csrf": token, "username": "mod", "password": PASSWORD, "next": ""},
                follow_redirects=False)  # fmt: skip
            assert r.status_code == 303, r.text[:500]  # one node's token, accepted
            if served_by(form) == served_by(r):
                continue
            pages = [browser.get("/en/account", follow_redirects=False) for _ in range(6)]
            assert [p.status_code for p in pages] == [200] * 6  # signed in on every node
            assert {served_by(p) for p in pages} == set(nodes)
            # Signing out through one node ends the session on both.
            out = browser.post("/en/logout", data={"csrf": csrf(pages[0].text)},
                               follow_redirects=False)  # fmt: skip
            assert out.status_code == 303
            after = [browser.get("/en/account", follow_redirects=False) for _ in range(4)]
            assert [p.status_code for p in after] == [303] * 4
            assert {served_by(p) for p in after} == set(nodes)
            return
    raise AssertionError("HAProxy never sent the form and the sign-in to different nodes")


def test_the_nodes_count_the_clients_address_not_the_proxys(
    cluster: tuple[LoadBalancer, dict[str, Server]],
) -> None:
    """Per-address limits through the load balancer: without the forwarded address every
    client would be HAProxy's 127.0.0.1 and share one limit; with a client's own
    X-Forwarded-For believed, an abuser would pick a fresh address per request."""
    lb, nodes = cluster

    def privacy_request(http: httpx.Client, **headers: str) -> httpx.Response:
        body = {"email": f"lb-{uuid.uuid4().hex[:8]}@example.org", "action": "export"}
        return http.post("/api/v1/privacy/requests", json=body, headers=headers)

    with (
        httpx.Client(base_url=lb.base, timeout=30, transport=from_address("127.0.0.2")) as one,
        httpx.Client(base_url=lb.base, timeout=30, transport=from_address("127.0.0.3")) as two,
    ):
        first = [privacy_request(one) for _ in range(PRIVACY_PER_IP)]
        assert [r.status_code for r in first] == [202] * PRIVACY_PER_IP
        assert {served_by(r) for r in first} == set(nodes)  # counted across both nodes
        refused = privacy_request(one)
        assert refused.status_code == 429, refused.text
        assert "network address" in refused.text
        # The same client, claiming another address: HAProxy replaces the claim.
        claimed = privacy_request(one, **{"X-Forwarded-For": "203.0.113.9"})
        assert claimed.status_code == 429, claimed.text
        # Another client (another address) has its own allowance.
        assert privacy_request(two).status_code == 202


def test_an_upload_through_the_load_balancer_downloads_from_every_node(
    cluster: tuple[LoadBalancer, dict[str, Server]],
) -> None:
    """Uploaded files are files: with SMARTCITY_OPENDATA_DIR on storage every node mounts,
    a file taken by one node is served by all."""
    lb, nodes = cluster
    key = {"Authorization": CKAN_KEY[-1]}  # a sysadmin of the open data portal
    name = f"lb-{uuid.uuid4().hex[:8]}"
    content = b"district,spaces\nWan Chai,120\n"
    with httpx.Client(base_url=lb.base, timeout=30, headers=key) as http:
        r = http.post("/api/3/action/package_create", json={
            "name": name, "owner_org": "td", "title": "Spaces",
            "license_id": "datagovhk-terms"})  # fmt: skip
        assert r.status_code == 200, r.text
        r = http.post("/api/3/action/resource_create",
                      data={"package_id": name, "name": "Spaces by district"},
                      files={"upload": ("spaces.csv", content, "text/csv")})  # fmt: skip
        assert r.status_code == 200, r.text
        url = r.json()["result"]["url"]
    path = httpx.URL(url).path
    for node in nodes.values():
        got = httpx.get(f"{node.base}{path}", timeout=30)
        assert got.status_code == 200, (node.base, got.text[:300])
        assert got.content == content


def _read_update(lines: Iterator[str], entity_id: str, deadline: float) -> None:
    event = ""
    for line in lines:
        if line.startswith("event:"):
            event = line[6:].strip()
        elif (
            line.startswith("data:")
            and event == "update"
            and any(e["id"] == entity_id for e in orjson.loads(line[5:])["entities"])
        ):
            return
        assert time.monotonic() < deadline, "no update through the load balancer"
    raise AssertionError("the stream ended")


def test_the_dashboard_event_stream_flows_through_the_load_balancer(
    cluster: tuple[LoadBalancer, dict[str, Server]],
) -> None:
    """HAProxy passes the stream on as it comes (no buffering), whichever node took it."""
    lb, nodes = cluster
    auth = next(iter(nodes.values())).auth
    aqhi = f"urn:ngsi-ld:AirQualityObserved:lb-{uuid.uuid4().hex[:6]}"
    with (
        httpx.Client(base_url=lb.base, timeout=30) as browser,
        httpx.Client(base_url=lb.base, timeout=30, headers={**auth, **city_link()}) as writer,
        browser.stream("GET", "/api/v1/dashboard/events", params={"heartbeat": 1}) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        for line in lines:
            if line.startswith("event:"):
                assert line[6:].strip() == "hello"
                break
        created = writer.post("/ngsi-ld/v1/entities", json={
            "id": aqhi, "type": "AirQualityObserved", "aqhi": 3,
            "location": {"type": "Point", "coordinates": [114.17, 22.3]}})  # fmt: skip
        assert created.status_code == 201, created.text
        _read_update(lines, aqhi, time.monotonic() + 15)


def test_a_killed_node_leaves_the_rotation_and_no_request_fails(
    cluster: tuple[LoadBalancer, dict[str, Server]],
) -> None:
    """Last in this module: it kills a node. Writes and reads keep succeeding throughout: a
    request HAProxy cannot connect to the dead node with goes to the live one."""
    lb, nodes = cluster
    auth = nodes["node1"].auth
    statuses: Counter[int] = Counter()
    served: list[str] = []
    with httpx.Client(base_url=lb.base, timeout=30, headers=auth) as http:

        def one_round(n: int) -> None:
            entity_id = f"urn:ngsi-ld:Probe:kill-{uuid.uuid4().hex[:8]}-{n}"
            w = http.post("/ngsi-ld/v1/entities", json={"id": entity_id, "type": "Probe"})
            r = http.get(f"/ngsi-ld/v1/entities/{entity_id}")
            for answer in (w, r):
                statuses[answer.status_code] += 1
                served.append(answer.headers.get("X-Served-By", "-"))

        for n in range(10):
            one_round(n)
        # The node that took the last request: in rotation, and (least connections) likely
        # to be given the next one, which then finds it dead.
        victim_name = served[-1]
        victim = nodes[victim_name]
        (survivor_name,) = set(nodes) - {victim_name}
        victim.proc.kill()  # SIGKILL: nothing is closed in order
        victim.proc.wait(10)
        served.clear()
        deadline = time.monotonic() + 30  # a bound against hanging, not a measurement
        n = 0
        while lb.status()[victim_name] != "DOWN":
            one_round(n)
            n += 1
            assert time.monotonic() < deadline, lb.status()
        for _ in range(20):  # and after
            one_round(n)
            n += 1
    assert statuses == Counter({201: statuses[201], 200: statuses[200]}), statuses
    assert statuses[201] == statuses[200] == 10 + n
    assert set(served) == {survivor_name}  # after the kill, everything went to the survivor
    assert lb.status()[survivor_name].startswith("UP")
    print(f"after SIGKILL: {2 * n} requests through HAProxy, all answered by {survivor_name}")
