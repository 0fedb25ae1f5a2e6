"""The CLI and the real server process, driven as a user would (subprocess + HTTP)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CLI = [sys.executable, "-m", "smartcity"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become ready in 30 s")


@pytest.fixture
def empty_sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_serve_refuses_an_unmigrated_database_and_names_the_command(empty_sqlite: str) -> None:
    result = run("serve", "--database", empty_sqlite, "--port", str(free_port()))
    assert result.returncode == 1
    assert "smartcity db upgrade" in result.stderr


def test_db_upgrade_is_idempotent(empty_sqlite: str) -> None:
    first = run("db", "upgrade", "--database", empty_sqlite)
    assert first.returncode == 0, first.stderr
    assert "upgraded" in first.stdout
    second = run("db", "upgrade", "--database", empty_sqlite)
    assert "already at" in second.stdout


def test_database_url_from_environment_and_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run("db", "upgrade", env={"SMARTCITY_HOME": str(home), "SMARTCITY_DATABASE_URL": ""})
    assert result.returncode == 0, result.stderr
    assert (home / "smartcity.db").exists()


def test_keys_create_list_revoke(empty_sqlite: str) -> None:
    run("db", "upgrade", "--database", empty_sqlite)
    created = run(
        "keys",
        "create",
        "gateway",
        "--scope",
        "write",
        "--tenant",
        "kowloon",
        "--database",
        empty_sqlite,
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("sc_")
    key_id = token.split("_")[1]
    listed = run("keys", "list", "--database", empty_sqlite)
    assert key_id in listed.stdout and token not in listed.stdout
    assert run("keys", "revoke", key_id, "--database", empty_sqlite).returncode == 0
    again = run("keys", "revoke", key_id, "--database", empty_sqlite)
    assert again.returncode == 1 and "keys list" in again.stderr


def test_contexts_add_rejects_a_non_context(empty_sqlite: str, tmp_path: Path) -> None:
    run("db", "upgrade", "--database", empty_sqlite)
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    result = run(
        "contexts", "add", "https://example.org/c.jsonld", str(bad), "--database", empty_sqlite
    )
    assert result.returncode == 1 and "@context" in result.stderr


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A real `smartcity serve` process on a free port, with a write key."""
    # The session database is shared with in-process tests; empty tables are fine for this test.
    created = run("keys", "create", "process-test", "--database", database_url)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--database", database_url, "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        yield base, token
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_real_server_over_http(server: tuple[str, str]) -> None:
    base, token = server
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=10) as http:
        assert http.get("/healthz").json()["status"] == "ok"
        entity = {"id": "urn:ngsi-ld:Lamppost:proc", "type": "Lamppost", "on": True}
        r = http.post("/ngsi-ld/v1/entities", json=entity)
        assert r.status_code == 401
        r = http.post("/ngsi-ld/v1/entities", json=entity, headers=auth)
        assert r.status_code == 201, r.text
        got = http.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Lamppost:proc?options=keyValues")
        assert got.json() == entity
        spec = http.get("/openapi.json").json()
        assert "/ngsi-ld/v1/entities" in spec["paths"]
        assert (
            http.delete("/ngsi-ld/v1/entities/urn:ngsi-ld:Lamppost:proc", headers=auth).status_code
            == 204
        )


def test_accepted_writes_survive_a_killed_server(database_url: str) -> None:
    """Every write answered 2xx is still there after the process dies without warning."""
    port = free_port()
    cmd = [
        *CLI,
        "serve",
        "--port",
        str(port),
        "--database",
        database_url,
        "--no-auth",
        "--log-level",
        "warning",
    ]
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    accepted: list[str] = []
    try:
        wait_ready(base, proc)
        with httpx.Client(base_url=base, timeout=10) as http:
            for n in range(50):
                entity = {"id": f"urn:ngsi-ld:Crash:{n}", "type": "Crash", "n": n}
                if http.post("/ngsi-ld/v1/entities", json=entity).status_code == 201:
                    accepted.append(entity["id"])
    finally:
        proc.kill()  # SIGKILL: no shutdown hooks run
        proc.wait(timeout=20)
    assert len(accepted) == 50
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(base, proc)
        got = httpx.get(f"{base}/ngsi-ld/v1/entities?type=Crash&limit=1000&count=true", timeout=10)
        assert got.headers["ngsild-results-count"] == "50"
        assert sorted(e["id"] for e in got.json()) == sorted(accepted)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_real_server_notifies_a_real_receiver(server: tuple[str, str]) -> None:
    """Subscription over HTTP, change over HTTP, notification POSTed to a receiver process."""
    import json
    import queue
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: queue.Queue[dict[str, object]] = queue.Queue()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    base, token = server
    auth = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=base, timeout=10, headers=auth) as http:
            subscription = {
                "type": "Subscription",
                "entities": [{"type": "Bin"}],
                "watchedAttributes": ["fillingLevel"],
                "q": "fillingLevel>0.8",
                "notification": {
                    "format": "keyValues",
                    "endpoint": {"uri": f"http://127.0.0.1:{receiver.server_port}/notify"},
                },
            }
            assert http.post("/ngsi-ld/v1/subscriptions", json=subscription).status_code == 201
            bin_ = {"id": "urn:ngsi-ld:Bin:proc", "type": "Bin", "fillingLevel": 0.5}
            assert http.post("/ngsi-ld/v1/entities", json=bin_).status_code == 201
            r = http.patch(
                "/ngsi-ld/v1/entities/urn:ngsi-ld:Bin:proc/attrs/fillingLevel", json={"value": 0.9}
            )
            assert r.status_code == 204
            notification = received.get(timeout=15)
            assert notification["type"] == "Notification"
            assert notification["data"] == [
                {"id": "urn:ngsi-ld:Bin:proc", "type": "Bin", "fillingLevel": 0.9}
            ]
            assert received.empty()  # the first write (0.5) did not match q
    finally:
        receiver.shutdown()


def test_a_piped_password_is_read_quietly_and_key_tenants_are_named(db: Any) -> None:
    """`echo pw | smartcity users create` printed getpass warnings; `keys create --tenant ''`
    printed "tenants: " with nothing after it (issue #9)."""
    url = db.url
    created = subprocess.run(
        [*CLI, "users", "create", "piped-admin", "--role", "admin", "--database", url],
        input="a long enough password\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert created.returncode == 0, created.stderr
    assert "created user piped-admin" in created.stdout
    assert created.stderr == "" and "Warning" not in created.stdout
    from smartcity.portal.users.service import UserService

    assert UserService(db).authenticate("piped-admin", "a long enough password") is not None
    empty = subprocess.run(
        [*CLI, "users", "create", "nobody", "--role", "admin", "--database", url],
        input="",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert empty.returncode == 2 and "no password on standard input" in empty.stderr
    default_tenant = run("keys", "create", "t", "--tenant", "", "--database", url)
    assert "tenants: default ('')" in default_tenant.stdout, default_tenant.stdout
    every = run("keys", "create", "all", "--database", url)
    assert "(write, tenants: all)" in every.stdout


def test_a_served_worker_keeps_its_start_out_of_the_collectors_full_passes(
    empty_sqlite: str,
) -> None:
    """`smartcity serve`'s worker factory freezes what the start built and collects its
    youngest generation less often (cli/asgi.py settle_heap: full passes over a warm worker's
    heap stopped it for up to 1.4 s under load)."""
    assert run("db", "upgrade", "--database", empty_sqlite).returncode == 0
    probe = (
        "import gc\n"
        "from smartcity.cli import asgi\n"
        "asgi.app()\n"
        "print(gc.get_freeze_count(), len(gc.get_objects()), gc.get_threshold()[0])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SMARTCITY_DATABASE_URL": empty_sqlite, "SMARTCITY_AUTH": "0"},
    )
    assert result.returncode == 0, result.stderr
    frozen, watched, young = (int(n) for n in result.stdout.split())
    assert frozen > 100_000  # the modules and the app
    assert watched < frozen // 20  # what the collector still walks: only what came after
    from smartcity.cli.asgi import YOUNG_THRESHOLD

    assert young == YOUNG_THRESHOLD > 700
