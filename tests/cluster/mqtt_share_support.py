"""Real processes for the shared-ingestion and fault tests: a private Mosquitto (its own port,
configuration and persistence, so it can be restarted), ingesting nodes (`smartcity ingest
mqtt` processes sharing a group), a scratch PostgreSQL database and a QoS 1 publisher that
records which readings the broker acknowledged."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import create_engine, func, select, text

from smartcity.storage import migrate, schema
from smartcity.storage.engine import Database, normalise_url

CLI = [sys.executable, "-m", "smartcity"]
PG_URL = os.environ.get("SMARTCITY_TEST_POSTGRES_URL")
# Reading times, one millisecond apart, an hour ago: a repeated time would be a duplicate.
_CLOCK = itertools.count(int(time.time() * 1000) - 3_600_000)
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class PrivateBroker:
    """Mosquitto on a free port with persistence in ``home``: restartable by the test."""

    def __init__(self) -> None:
        if not Path(MOSQUITTO).exists():
            pytest.skip("mosquitto is not installed")
        # Run as root, mosquitto drops to its own user, which must be able to write here.
        self.home = home = Path(tempfile.mkdtemp(prefix="smartcity-mosquitto-"))
        home.chmod(0o777)
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        # max_queued_messages: a persistent session keeps what arrives while its node is away
        # (the default, 1000, drops the rest: see docs/reliability.md).
        (home / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {home}/\nautosave_interval 1\nmax_queued_messages 1000000\n"
            f"log_dest file {home}/mosquitto.log\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.home / "mosquitto.conf")])
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # a clean stop writes the persistence file
            self.proc.wait(10)
        self.proc = None


@contextmanager
def private_broker() -> Iterator[PrivateBroker]:
    broker = PrivateBroker()
    broker.start()
    try:
        yield broker
    finally:
        if broker.proc is not None and broker.proc.poll() is None:
            broker.proc.kill()
            broker.proc.wait(5)
        shutil.rmtree(broker.home, ignore_errors=True)


@contextmanager
def scratch_postgres() -> Iterator[str]:
    """A migrated PostgreSQL database of its own (several processes share it)."""
    if not PG_URL:
        pytest.skip("SMARTCITY_TEST_POSTGRES_URL not set: nodes share a PostgreSQL database")
    name = f"smartcity_mqtt_share_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    db = Database(url)
    migrate.upgrade(db)
    db.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def register_devices(db_url: str, pattern: str, count: int) -> list[tuple[str, str]]:
    """``count`` devices on ``pattern``; their (topic, secret)."""
    from smartcity.bench.ingest import _register
    from smartcity.config import Settings
    from smartcity.hub.runtime import build_hub
    from smartcity.live.ingest.runtime import IngestConfig, build_ingest

    db = Database(db_url)
    try:
        hub = build_hub(Settings(database_url=db_url), db)
        ingest = build_ingest(hub, IngestConfig(topic_pattern=pattern))
        return [(d.mqtt_topic, s) for d, s in _register(ingest, count)]
    finally:
        db.dispose()


def reading_rows(db_url: str) -> tuple[int, int]:
    """(history rows of the devices' entities, ledger rows): readings stored, and recognised."""
    from smartcity.live.tables import live_readings

    db = Database(db_url)
    try:
        with db.read() as conn:
            history = conn.execute(
                select(func.count()).select_from(schema.attr_history)
            ).scalar_one()
            ledger = conn.execute(select(func.count()).select_from(live_readings)).scalar_one()
        return int(history), int(ledger)
    finally:
        db.dispose()


def temperature_rows(db_url: str) -> int:
    """History instances of the devices' readings (their entities' temperature): one per
    reading stored, so a reading stored twice shows here."""
    db = Database(db_url)
    try:
        with db.read() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(schema.attr_history)
                    .where(schema.attr_history.c.attr.like("%temperature"))
                ).scalar_one()
            )
    finally:
        db.dispose()


class Node:
    """One ingesting node: a `smartcity ingest mqtt` process in a share group."""

    def __init__(
        self, db_url: str, mqtt_url: str, pattern: str, group: str | None, name: str, log: Path
    ) -> None:
        self.name = name
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTCITY_MQTT")}
        env |= {
            "SMARTCITY_MQTT_TOPIC_PATTERN": pattern,
            "SMARTCITY_MQTT_CLIENT_ID": name,
            "PYTHONUNBUFFERED": "1",
        }
        if group:
            env["SMARTCITY_MQTT_SHARE_GROUP"] = group
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            [*CLI, "ingest", "mqtt", "--url", mqtt_url, "--database", db_url],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"ingesting " in self.log.read_bytes():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log.read_text()}")
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not subscribed after {timeout} s:\n{self.text()}")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()


class Publisher:
    """Devices publishing readings at QoS 1 over one persistent paho session (a gateway):
    unacknowledged messages are sent again after a reconnect. ``acked`` counts the readings
    the broker acknowledged: those the platform must end up with."""

    def __init__(self, mqtt_url: str, devices: list[tuple[str, str]], per_message: int = 1):
        self.devices = devices
        self.per_message = per_message
        self.acked = 0
        self.sent = 0
        port = int(mqtt_url.rsplit(":", 1)[1])
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pub-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5,
        )
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.on_publish = self._on_publish
        self.client.reconnect_delay_set(0.2, 1)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600
        self.client.connect_async("127.0.0.1", port, clean_start=False, properties=props)
        self.client.loop_start()
        self._stop = threading.Event()
        self.gate = threading.Event()  # cleared: publishing pauses
        self.gate.set()
        self._thread: threading.Thread | None = None

    def _on_publish(self, _c: Any, _u: Any, _mid: int, _rc: Any, _p: Any) -> None:
        # paho's thread, holding paho's locks: no lock of ours here (publish() takes paho's).
        self.acked += self.per_message

    def run(self, rate: float) -> None:
        """Publish ``rate`` messages/s in a thread until ``stop()``."""

        def loop() -> None:
            start, m = time.monotonic(), 0
            m0 = 0
            while not self._stop.is_set():
                if not self.gate.is_set():
                    self.gate.wait()
                    start, m0 = time.monotonic(), m
                    start -= m0 / rate
                ahead = start + m / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                self.publish_one(m)
                m += 1

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def publish_one(self, m: int) -> None:
        topic, secret = self.devices[m % len(self.devices)]
        items = []
        for _ in range(self.per_message):
            t = next(_CLOCK)  # every reading of the test run at its own time
            items.append({"t": t / 1000, "value": t % 100})
        body = {"key": secret, **items[0]} if self.per_message == 1 else {
            "key": secret, "readings": items}  # fmt: skip
        self.sent += self.per_message
        self.client.publish(topic, orjson.dumps(body), qos=1)

    def stop(self, settle: float = 20.0) -> None:
        """Stop publishing; wait (bounded) for the broker to acknowledge what was sent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        deadline = time.monotonic() + settle
        while self.acked < self.sent and time.monotonic() < deadline:
            time.sleep(0.05)
        self.client.disconnect()
        self.client.loop_stop()


def wait_stored(db_url: str, expected: int, timeout: float = 30.0) -> tuple[int, int]:
    """Wait until ``expected`` readings are in the ledger (or the timeout); the counts."""
    deadline = time.monotonic() + timeout
    while True:
        counts = reading_rows(db_url)
        if counts[1] >= expected or time.monotonic() > deadline:
            return counts
        time.sleep(0.25)


PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb in a temporary directory, a free port),
    run as the ``postgres`` user when the tests run as root: restartable by the test."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            pytest.skip("PostgreSQL 15 server binaries are not installed")
        self.home = Path(tempfile.mkdtemp(prefix="smartcity-pg-"))
        self.data = self.home / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/smartcity"
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.home, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def _run(self, *cmd: str) -> None:
        subprocess.run([*self._as, *cmd], check=True, capture_output=True, timeout=60)

    def _ctl(self, *args: str) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.home} -c fsync=off"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", opts,
                  "-l", str(self.home / "log"), "-w", *args)  # fmt: skip

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every session is ended, in-flight transactions roll
        back; the server is back once it accepts connections."""
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        self._ctl("stop", "-m", "immediate")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    pg.start()
    try:
        admin = create_engine(
            normalise_url(pg.url.rsplit("/", 1)[0] + "/postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text('CREATE DATABASE "smartcity"'))
        admin.dispose()
        db = Database(pg.url)
        migrate.upgrade(db)
        db.dispose()
        yield pg
    finally:
        with contextlib.suppress(Exception):
            pg.stop()
        shutil.rmtree(pg.home, ignore_errors=True)


def start_server(database_url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A real `smartcity serve` process (no MQTT); its base URL once it answers."""
    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTCITY_MQTT")}
    out = log.open("wb")
    proc = subprocess.Popen(
        [
            *CLI,
            "serve",
            "--no-auth",
            "--port",
            str(port),
            "--database",
            database_url,
            "--log-level",
            "warning",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"server not ready in 40 s:\n{log.read_text()}")


def stored_ids(db_url: str, ids: list[str]) -> int:
    """How many of the entity ids are in the database."""
    db = Database(db_url)
    try:
        with db.read() as conn:
            found = conn.execute(
                select(func.count())
                .select_from(schema.entities)
                .where(schema.entities.c.entity_id.in_(ids))
            ).scalar_one()
        return int(found)
    finally:
        db.dispose()
