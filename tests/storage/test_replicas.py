"""Read replicas (storage/replicas.py, hub/api/read_routing.py) with a real streaming replica.

The replica is a second PostgreSQL server made by ``pg_basebackup -R`` from the test server
(tests/storage/replica_support.py). Which server answered a read is proved two ways: a read
of ``pg_is_in_recovery()`` (true only on the replica), and, over HTTP, an entity changed on
the primary while the replica's replay is paused (the replica still holds the old value).
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from tests.hostile.harness import CLI, free_port, serve
from tests.storage.replica_support import StreamingReplica, unavailable

from smartcity.app import lag_tolerant_reads
from smartcity.hub.api.read_routing import LSN_COOKIE, ReadRouting, client_lsn
from smartcity.storage import migrate, replicas
from smartcity.storage.engine import Database, normalise_url

PG_URL = os.environ.get("SMARTCITY_TEST_POSTGRES_URL")
WHY_NOT = unavailable(PG_URL)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    """Poll until ``condition()`` is truthy (a bounded wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


# -- without a replica: the parts that decide ---------------------------------------------------


def test_wal_positions_read_as_postgresql_writes_them() -> None:
    assert replicas.parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert replicas.format_lsn(replicas.parse_lsn("16/B374D848") or 0) == "16/B374D848"
    assert replicas.parse_lsn("0/0") == 0
    for junk in ("", "16", "x/y", "1/2/3", "9" * 40 + "/1"):
        assert replicas.parse_lsn(junk) is None


def test_a_batch_read_satisfies_the_strictest_request() -> None:
    lax, mine = replicas.ReadPolicy(0), replicas.ReadPolicy(500)
    assert replicas.strictest([lax, mine]) == mine
    assert replicas.strictest([lax, None, mine]) is None  # one needs the primary: all do


def test_the_client_position_comes_from_the_header_or_the_cookie() -> None:
    def scope(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
        return {"headers": list(headers)}

    assert client_lsn(scope()) == 0
    assert client_lsn(scope((b"smartcity-lsn", b"0/10"))) == 0x10
    cookie = f"a=b; {LSN_COOKIE}=0/20; c=d".encode()
    assert client_lsn(scope((b"cookie", cookie))) == 0x20
    assert client_lsn(scope((b"cookie", cookie), (b"smartcity-lsn", b"0/10"))) == 0x20
    assert client_lsn(scope((b"smartcity-lsn", b"not a position"))) == 0


def test_only_reads_that_tolerate_a_lag_are_routed() -> None:
    routing = ReadRouting(Database("sqlite://"), lag_tolerant_reads())
    routed = [
        ("GET", "/ngsi-ld/v1/entities"),
        ("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:X:1"),
        ("GET", "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:X:1"),
        ("GET", "/ngsi-ld/v1/types"),
        ("POST", "/ngsi-ld/v1/entityOperations/query"),
        ("POST", "/ngsi-ld/v1/temporal/entityOperations/query"),
        ("GET", "/api/3/action/package_show"),
        ("POST", "/api/3/action/package_search"),  # ckanapi POSTs reads too
        ("POST", "/tc-data/api/3/action/datastore_search"),
        ("GET", "/api/v1/analytics/crowds"),
    ]
    not_routed = [
        ("POST", "/ngsi-ld/v1/entities"),
        ("PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:X:1/attrs/speed"),
        ("DELETE", "/ngsi-ld/v1/entities/urn:ngsi-ld:X:1"),
        ("POST", "/ngsi-ld/v1/entityOperations/upsert"),
        ("GET", "/ngsi-ld/v1/subscriptions"),
        ("POST", "/api/3/action/package_create"),
        ("GET", "/api/3/action/no_such_action"),
        ("GET", "/en/"),
        ("GET", "/healthz"),
    ]
    assert [r for r in routed if not routing.lag_tolerant(*r)] == []
    assert [r for r in not_routed if routing.lag_tolerant(*r)] == []


def test_sqlite_takes_no_replicas(tmp_path: Any) -> None:
    db = Database(f"sqlite:///{tmp_path / 'one.db'}")
    with pytest.raises(ValueError, match="PostgreSQL primary"):
        db.use_replicas(["postgresql://postgres@127.0.0.1/x"], max_lag=5, probe_interval=0.5)
    assert db.replica_status() is None and not db.has_replicas


def test_serve_refuses_replicas_of_a_sqlite_database(tmp_path: Any) -> None:
    sqlite, replica = f"sqlite:///{tmp_path / 'one.db'}", "postgresql://postgres@127.0.0.1:1/x"
    done = subprocess.run(
        [*CLI, "serve", "--database", sqlite, "--read-database", replica],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SMARTCITY_HOME": str(tmp_path)},
    )
    assert done.returncode == 2
    assert "need a PostgreSQL --database" in done.stderr


def test_lag_is_dated_by_the_primary_positions_the_probe_saw() -> None:
    primary = Database("sqlite://")
    probe = replicas.ReplicaSet(primary, [], max_lag=5, probe_interval=0.5)
    probe._samples.extend([(10.0, 100), (11.0, 200), (12.0, 200), (13.0, 300)])
    assert probe._lag(300, 13.5) == 0.0  # caught up
    assert probe._lag(200, 13.5) == 0.5  # behind what the primary had at 13.0
    assert probe._lag(150, 13.5) == 2.5  # ... at 11.0: an idle primary does not add lag
    assert probe._lag(50, 13.5) == 3.5


# -- with a real replica -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def primary_url() -> Iterator[str]:
    """A database of this module's own on the primary, migrated."""
    if WHY_NOT:
        pytest.skip(WHY_NOT)
    assert PG_URL
    name = f"smartcity_replica_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    db = Database(url)
    migrate.upgrade(db)
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE replica_probe (v integer)")
    db.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def replica(primary_url: str) -> Iterator[StreamingReplica]:
    assert PG_URL
    made = StreamingReplica(PG_URL, free_port())
    try:
        made.create()
        made.wait_replayed(primary_url)
        yield made
    finally:
        made.destroy()


@pytest.fixture
def healthy(replica: StreamingReplica, primary_url: str) -> StreamingReplica:
    """The replica running, replaying, caught up (a test before may have paused or stopped it)."""
    if not replica.running:
        replica.start()
    replica.resume_replay()
    replica.wait_replayed(primary_url)
    return replica


def _routed_db(primary_url: str, replica_url: str, *, max_lag: float) -> Database:
    db = Database(primary_url)
    db.use_replicas([replica_url], max_lag=max_lag, probe_interval=0.1)
    return db


def _state(db: Database) -> str:
    status = db.replica_status()
    assert status is not None
    return str(status[0]["state"])


def _served_by_replica(db: Database) -> bool:
    """Which server a lag-tolerant read reached: ``pg_is_in_recovery()`` is true on a standby."""
    with replicas.lag_tolerant(), db.read() as conn:
        return bool(conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar())


def test_lag_tolerant_reads_go_to_the_replica_and_the_rest_to_the_primary(
    healthy: StreamingReplica, primary_url: str
) -> None:
    db = _routed_db(primary_url, healthy.url(primary_url.rsplit("/", 1)[1]), max_lag=30)
    try:
        wait_for(lambda: _state(db) == "ok", "the probe finds the replica healthy")
        assert _served_by_replica(db)
        with replicas.lag_tolerant(), db.snapshot() as conn:
            assert conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar() is True
        with replicas.lag_tolerant():
            assert db.fetch_one("SELECT pg_is_in_recovery()", ()) == (True,)
        # Undeclared reads (background jobs, sessions, keys) and writes: the primary.
        with db.read() as conn:
            assert conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar() is False
        with replicas.lag_tolerant(), replicas.primary_only(), db.read() as conn:
            assert conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar() is False
        with replicas.lag_tolerant(), db.write() as conn:
            conn.exec_driver_sql("INSERT INTO replica_probe VALUES (1)")
        # A client's own position the replica has not replayed: the primary answers.
        with replicas.lag_tolerant(min_lsn=2**62), db.read() as conn:
            assert conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar() is False
    finally:
        db.dispose()


def test_a_lagging_replica_is_skipped_and_comes_back(
    healthy: StreamingReplica, primary_url: str
) -> None:
    db = _routed_db(primary_url, healthy.url(primary_url.rsplit("/", 1)[1]), max_lag=3.0)
    try:
        wait_for(lambda: _state(db) == "ok", "the probe finds the replica healthy")
        assert _served_by_replica(db)
        healthy.pause_replay()
        with db.write() as conn:  # WAL the replica will not replay while paused
            conn.exec_driver_sql("INSERT INTO replica_probe VALUES (2)")
        wait_for(lambda: _state(db) == "lagging", "the probe finds the replica lagging")
        status = db.replica_status()
        assert status is not None and status[0]["lag_seconds"] > 3.0
        assert not _served_by_replica(db)  # the primary, with the write
        with replicas.lag_tolerant(), db.read() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM replica_probe").scalar() >= 1
        healthy.resume_replay()
        wait_for(lambda: _state(db) == "ok", "the replica is used again once it caught up")
        assert _served_by_replica(db)
    finally:
        healthy.resume_replay()
        db.dispose()


def test_a_stopped_replica_is_skipped_and_no_read_fails(
    healthy: StreamingReplica, primary_url: str
) -> None:
    db = _routed_db(primary_url, healthy.url(primary_url.rsplit("/", 1)[1]), max_lag=30)
    try:
        wait_for(lambda: _state(db) == "ok", "the probe finds the replica healthy")
        for _ in range(10):  # fill the replica's pool with connections the stop will break
            assert _served_by_replica(db)
        healthy.stop()
        answered = []
        for _ in range(50):
            with replicas.lag_tolerant(), db.read() as conn:
                answered.append(conn.exec_driver_sql("SELECT 1").scalar())
            with replicas.lag_tolerant():
                answered.append(db.fetch_one("SELECT 1", ())[0])  # type: ignore[index]
        assert answered == [1] * 100
        assert _state(db) == "down"
        assert not _served_by_replica(db)
        healthy.start()
        wait_for(lambda: _state(db) == "ok", "the restarted replica is found healthy")
        assert _served_by_replica(db)
    finally:
        db.dispose()


# -- a real server over HTTP -------------------------------------------------------------------


def _speed(client: httpx.Client, eid: str, headers: dict[str, str] | None = None) -> Any:
    r = client.get(f"/ngsi-ld/v1/entities/{eid}", params={"options": "keyValues"}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["speed"]


def _instances(client: httpx.Client, eid: str, headers: dict[str, str] | None = None) -> int:
    r = client.get(f"/ngsi-ld/v1/temporal/entities/{eid}", headers=headers)
    assert r.status_code == 200, r.text
    speed = r.json()["speed"]
    return len(speed) if isinstance(speed, list) else 1


def test_a_server_reads_from_the_replica_and_each_client_reads_its_own_writes(
    healthy: StreamingReplica, primary_url: str
) -> None:
    replica_url = healthy.url(primary_url.rsplit("/", 1)[1])
    env = {"SMARTCITY_READ_MAX_LAG": "300", "SMARTCITY_READ_PROBE_INTERVAL": "0.1"}
    with serve(primary_url, env=env, args=("--read-database", replica_url)) as server:
        anyone = server.client()  # keeps no cookies between requests: a client that never wrote
        writer = server.client(headers=server.auth)  # keeps the LSN cookie, as a browser does

        def health() -> dict[str, Any]:
            return dict(anyone.get("/healthz").json())

        wait_for(lambda: health()["replicas"][0]["state"] == "ok", "the server's probe")
        eid = f"urn:ngsi-ld:Vehicle:{uuid.uuid4().hex[:8]}"
        created = writer.post(
            "/ngsi-ld/v1/entities",
            json={"id": eid, "type": "Vehicle", "speed": {"type": "Property", "value": 1}},
        )
        assert created.status_code == 201, created.text
        assert replicas.parse_lsn(created.headers["Smartcity-LSN"])
        assert f"{LSN_COOKIE}=" in created.headers["set-cookie"]
        assert "Max-Age=8" in created.headers["set-cookie"]
        assert _speed(writer, eid) == 1  # its own write, at once
        healthy.wait_replayed(primary_url)
        assert _speed(anyone, eid) == 1

        healthy.pause_replay()
        changed = writer.patch(
            f"/ngsi-ld/v1/entities/{eid}/attrs/speed", json={"type": "Property", "value": 2}
        )
        assert changed.status_code == 204, changed.text
        position = changed.headers["Smartcity-LSN"]

        # A client without the position reads the replica, which has not replayed the change:
        # proof that reads are served there. Queries and temporal queries too.
        assert _speed(anyone, eid) == 1
        listed = anyone.get(
            "/ngsi-ld/v1/entities", params={"type": "Vehicle", "options": "keyValues"}
        )
        assert [e["speed"] for e in listed.json() if e["id"] == eid] == [1]
        assert _instances(anyone, eid) == 1
        # The writer (its cookie) and anyone sending its position read the change.
        assert _speed(writer, eid) == 2
        assert _speed(anyone, eid, {"Smartcity-LSN": position}) == 2
        listed = anyone.get(
            "/ngsi-ld/v1/entities",
            params={"type": "Vehicle", "options": "keyValues"},
            headers={"Smartcity-LSN": position},
        )
        assert [e["speed"] for e in listed.json() if e["id"] == eid] == [2]
        assert _instances(anyone, eid, {"Smartcity-LSN": position}) == 2
        replicas_seen = health()["replicas"]
        assert replicas_seen[0]["url"].endswith(f":{healthy.port}/{primary_url.rsplit('/', 1)[1]}")

        healthy.resume_replay()
        wait_for(lambda: _speed(anyone, eid) == 2, "the replica replays the change")

        # The replica stops: reads carry on, from the primary.
        healthy.stop()
        assert [_speed(anyone, eid) for _ in range(20)] == [2] * 20
        wait_for(lambda: health()["replicas"][0]["state"] == "down", "/healthz shows it down")
        anyone.close()
        writer.close()


def test_a_server_skips_a_lagging_replica_and_healthz_says_so(
    healthy: StreamingReplica, primary_url: str
) -> None:
    replica_url = healthy.url(primary_url.rsplit("/", 1)[1])
    env = {"SMARTCITY_READ_MAX_LAG": "1", "SMARTCITY_READ_PROBE_INTERVAL": "0.1"}
    with serve(primary_url, env=env, args=("--read-database", replica_url)) as server:
        anyone = server.client()
        writer = server.client(headers=server.auth)

        def replica() -> dict[str, Any]:
            return dict(anyone.get("/healthz").json()["replicas"][0])

        wait_for(lambda: replica()["state"] == "ok", "the server's probe")
        eid = f"urn:ngsi-ld:Vehicle:{uuid.uuid4().hex[:8]}"
        created = writer.post(
            "/ngsi-ld/v1/entities",
            json={"id": eid, "type": "Vehicle", "speed": {"type": "Property", "value": 1}},
        )
        assert created.status_code == 201, created.text
        healthy.pause_replay()
        try:
            writer.patch(
                f"/ngsi-ld/v1/entities/{eid}/attrs/speed", json={"type": "Property", "value": 2}
            )
            lagging = wait_for(lambda: (r := replica())["state"] == "lagging" and r, "lagging")
            assert lagging["lag_seconds"] > 1
            assert _speed(anyone, eid) == 2  # skipped: the primary answers, with the change
        finally:
            healthy.resume_replay()
        wait_for(lambda: replica()["state"] == "ok", "the replica comes back once caught up")
        anyone.close()
        writer.close()
