"""``smartcity bench ingest``: sustained MQTT readings/s into the hub (with history) and the
latency from publish to commit, against a real Mosquitto broker.

Set-up: a fresh database; M devices registered; publisher processes (so they do not share
the ingesting process's interpreter) publish N readings at QoS 1 round-robin over the
devices, each carrying its publish time as ``t``; the subscriber runs in this process (or in
a real ``smartcity serve`` process with ``--server``), and at the end the history is counted
in the database: every reading must be there exactly once.

Latency is measured by the probes of ``smartcity.bench.probes``: publish -> committed
(in-process) and publish -> browser, the dashboard's event stream (``--server``).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson
from sqlalchemy import func, select

from smartcity.bench.harness import Result, fresh_database, percentile
from smartcity.bench.probes import PROBES, BenchContext
from smartcity.storage import schema


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _wait_acked(room: Any, acked: list[int], target: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with room:
        while acked[0] < target and time.monotonic() < deadline:
            room.wait(0.5)


def _publisher(
    mqtt_url: str,
    devices: list[tuple[str, str]],
    count: int,
    rate: float,
    per_message: int,
    ready: Any,
    committed: Any = None,
    backlog: int = 0,
    share: int = 1,
    record: str | None = None,
) -> None:
    """One publisher process: ``count`` readings round-robin over ``devices`` at ``rate``/s,
    ``per_message`` readings per MQTT message, QoS 1. With ``committed`` (a shared counter
    of readings committed by the platform, all publishers together), it pauses while more than
    ``backlog`` of its own readings are published but not committed: the broker drops
    messages once a session's queue is full, so an open-loop publisher faster than the
    platform would measure Mosquitto's drops, not the platform. With ``record`` (a file path),
    it writes there the publish times of every device's readings, for the latency probes.

    A load generator, not a client library: it speaks just enough MQTT 3.1.1 (CONNECT,
    PUBLISH QoS 1, counting PUBACKs to keep at most WINDOW messages unacknowledged) that the
    publishing side costs a few microseconds per message. A paho publisher tops out at ~2,000
    messages/s on this machine and would measure itself instead of the platform.
    """
    import socket
    import threading

    window = 5_000
    url = urlparse(mqtt_url)
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 1883))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client_id = f"bench-pub-{uuid.uuid4().hex[:12]}".encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x00" + len(client_id).to_bytes(2, "big") + client_id
    sock.sendall(b"\x10" + _remaining_length(len(body)) + body)  # keepalive 0: no pings
    if sock.recv(4)[:1] != b"\x20":
        raise RuntimeError("the broker refused the benchmark publisher")
    acked = [0]
    room = threading.Condition()

    def read_acks() -> None:
        pending = 0
        while True:
            data = sock.recv(65536)
            if not data:
                return
            pending += len(data)  # only PUBACKs (4 bytes each) arrive
            with room:
                acked[0] += pending // 4
                pending %= 4
                room.notify_all()

    threading.Thread(target=read_acks, daemon=True).start()
    ready.wait()
    last: dict[str, int] = {}
    published: dict[str, list[int]] = {}
    start = time.monotonic()
    messages = (count + per_message - 1) // per_message
    chunk: list[bytes] = []
    sent = 0
    for m in range(messages):
        topic, secret = devices[m % len(devices)]
        if rate:
            ahead = start + m * per_message / rate - time.monotonic()
            if ahead > 0:
                if chunk:
                    sock.sendall(b"".join(chunk))
                    chunk.clear()
                time.sleep(ahead)
        items = []
        now_ms = time.time_ns() // 1_000_000
        for k in range(per_message):
            # A device sending several readings at once measured them before: the readings of
            # a message take the milliseconds up to now (never later: latencies are counted
            # from t), one reading per device and millisecond.
            t_ms = max(now_ms - (per_message - 1 - k), last.get(topic, 0) + 1)
            last[topic] = t_ms
            if record:
                published.setdefault(topic, []).append(t_ms)
            items.append({"t": t_ms / 1000, "value": t_ms % 1000})
        payload = orjson.dumps(
            {"key": secret, **items[0]} if per_message == 1 else {"key": secret, "readings": items}
        )
        t_bytes = topic.encode()
        packet_id = m % 65535 + 1
        variable = len(t_bytes).to_bytes(2, "big") + t_bytes + packet_id.to_bytes(2, "big")
        chunk.append(b"\x32" + _remaining_length(len(variable) + len(payload)) + variable + payload)
        sent += 1
        if len(chunk) >= 64:
            sock.sendall(b"".join(chunk))
            chunk.clear()
        if committed is not None:
            mine = (m + 1) * per_message
            while mine - committed.value // share > backlog:
                time.sleep(0.002)
        if sent - acked[0] >= window:
            _wait_acked(room, acked, sent - window // 2)
    if chunk:
        sock.sendall(b"".join(chunk))
    _wait_acked(room, acked, sent, timeout=120)
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    if record:
        Path(record).write_bytes(orjson.dumps(published))


def run(
    database: str | None,
    *,
    mqtt_url: str,
    readings: int,
    devices: int,
    publishers: int,
    rate: float,
    server: bool,
    per_message: int = 1,
    processes: int = 0,
    progress: Callable[[str], None] = lambda _s: None,
) -> list[Result]:
    """``processes`` > 0: that many ingesting processes share the readings (one MQTT v5
    shared subscription, one database) instead of the subscriber in this process."""
    from smartcity.config import Settings
    from smartcity.hub.runtime import build_hub
    from smartcity.live.ingest.runtime import IngestConfig, build_ingest
    from smartcity.storage.engine import Database

    prefix = f"bench{os.getpid()}"
    pattern = prefix + "/{tenant}/devices/{device_id}/readings"
    with fresh_database(database) as db_url:
        db = Database(db_url)
        hub = build_hub(Settings(database_url=db_url), db)
        config = IngestConfig(
            mqtt_url=mqtt_url, topic_pattern=pattern, client_id=f"{prefix}-ingest"
        )
        ingest = build_ingest(hub, config)
        progress(f"registering {devices} devices")
        registered = [(d.mqtt_topic, s) for d, s in _register(ingest, devices)]
        server_ctx = _server(db_url, mqtt_url, pattern, prefix) if server else None
        base_url = server_ctx.__enter__() if server_ctx is not None else None
        nodes = _Nodes(db_url, mqtt_url, pattern, prefix, processes) if processes else None
        try:
            if nodes is not None:
                progress(f"starting {processes} ingesting processes")
                nodes.start()
            elif not server:
                ingest.start()
                assert ingest.mqtt is not None
                if not ingest.mqtt.wait_connected(10):
                    raise RuntimeError(f"cannot subscribe at {mqtt_url}; is Mosquitto running?")
            in_process = not server and nodes is None
            ctx = BenchContext(
                db_url,
                mqtt_url,
                base_url,
                ingest if in_process else None,
                [f"urn:ngsi-ld:WeatherObserved:bench-{d:06d}" for d in range(devices)],
            )
            probes = [factory() for factory in PROBES] if nodes is None else []
            for probe in probes:
                probe.start(ctx)
            progress(f"publishing {readings} readings from {publishers} processes")
            figures, published = _publish_and_wait(
                ingest if in_process else nodes,
                base_url,
                registered,
                mqtt_url,
                readings,
                publishers,
                rate,
                per_message,
                db,
                server_pid=server_ctx.pid if server_ctx is not None else None,
            )
            entity_of = {topic: ctx.entity_ids[d] for d, (topic, _) in enumerate(registered)}
            ctx.published = {entity_of[topic]: times for topic, times in published.items()}
            for probe in probes:
                lat = probe.stop()
                if lat:
                    figures[f"{probe.name} p50_ms"] = round(percentile(lat, 50), 1)
                    figures[f"{probe.name} p95_ms"] = round(percentile(lat, 95), 1)
                figures.update(probe.figures())
        finally:
            if nodes is not None:
                nodes.stop()
            elif not server:
                ingest.stop()
            if server_ctx is not None:
                server_ctx.__exit__(None, None, None)
            db.dispose()
    backend = "postgresql" if database else "sqlite"
    where = "server" if server else "in-process"
    if processes:
        where = f"{processes} shared process{'es' if processes > 1 else ''}"
    return [Result(f"mqtt ingest ({backend}, {where}, {per_message}/message)", figures)]


def _ingest_node(
    db_url: str,
    mqtt_url: str,
    pattern: str,
    group: str,
    client_id: str,
    counts: Any,
    cpu: Any,
    index: int,
    ready: Any,
    stop: Any,
) -> None:
    """One ingesting process of ``--processes N``: joins the share group and publishes its
    committed count (written + duplicates) in ``counts[index]`` until ``stop``."""
    from smartcity.config import Settings
    from smartcity.hub.runtime import build_hub
    from smartcity.live.ingest.runtime import IngestConfig, build_ingest
    from smartcity.storage.engine import Database

    db = Database(db_url)
    hub = build_hub(Settings(database_url=db_url), db)
    config = IngestConfig(
        mqtt_url=mqtt_url,
        topic_pattern=pattern,
        client_id=client_id,
        share_group=group,
        silence_check_s=3600,  # the sweep's device-status history is not what is measured
    )
    ingest = build_ingest(hub, config)
    ingest.start()
    assert ingest.mqtt is not None
    if not ingest.mqtt.wait_connected(15):
        raise RuntimeError(f"ingesting process {index} cannot subscribe at {mqtt_url}")
    ready.release()
    start_cpu = time.process_time()
    while not stop.wait(0.01):
        counts[index] = ingest.metrics.written + ingest.metrics.duplicates
    cpu[index] = time.process_time() - start_cpu
    ingest.stop()
    db.dispose()


class _Nodes:
    """``--processes N``: N ingesting processes in one share group."""

    def __init__(self, db_url: str, mqtt_url: str, pattern: str, prefix: str, n: int) -> None:
        spawn = mp.get_context("spawn")
        self.n = n
        self.counts = spawn.Array("q", n, lock=False)
        self.cpu = spawn.Array("d", n, lock=False)
        self.ready = spawn.Semaphore(0)
        self.stop_event = spawn.Event()
        self.procs = [
            spawn.Process(
                target=_ingest_node,
                args=(
                    db_url,
                    mqtt_url,
                    pattern,
                    prefix,
                    f"{prefix}-node{i}",
                    self.counts,
                    self.cpu,
                    i,
                    self.ready,
                    self.stop_event,
                ),
                daemon=True,
            )
            for i in range(n)
        ]

    def start(self) -> None:
        for p in self.procs:
            p.start()
        for _ in range(self.n):
            if not self.ready.acquire(timeout=60):
                raise RuntimeError("an ingesting process did not subscribe within 60 s")

    def committed(self) -> int:
        return int(sum(self.counts))

    def stop(self) -> None:
        self.stop_event.set()
        for p in self.procs:
            p.join(60)
            if p.is_alive():
                p.kill()


def _register(ingest: Any, devices: int) -> list[tuple[Any, str]]:
    """``devices`` sensors, each feeding the temperature of its own WeatherObserved entity
    (Smart Data Models names, through the city @context: what the dashboard shows)."""
    from smartcity.hub.contexts import CITY_CONTEXT_URL
    from smartcity.live.devices.schemas import DeviceCreate

    specs = [
        DeviceCreate.model_validate(
            {
                "id": f"sensor-{d:06d}",
                "entity_id": f"urn:ngsi-ld:WeatherObserved:bench-{d:06d}",
                "entity_type": "WeatherObserved",
                "context": CITY_CONTEXT_URL,
                "attributes": {"value": {"name": "temperature", "unitCode": "CEL"}},
                "interval_s": 60,
            }
        )
        for d in range(devices)
    ]
    return list(ingest.registry.create_many(specs))


def run_writer(
    database: str | None,
    *,
    readings: int,
    devices: int,
    batch: int = 5_000,
    progress: Callable[[str], None] = lambda _s: None,
) -> list[Result]:
    """The write path alone, as the writer thread runs it at saturation: batches of
    ``batch`` readings (ledger, latest state, history, rollup) in one transaction each, no
    MQTT and no HTTP. What the subscriber's side costs is the difference from ``run``."""
    import gc

    from smartcity.config import Settings
    from smartcity.hub.runtime import build_hub
    from smartcity.hub.timeutil import now_us
    from smartcity.live.ingest.readings import parse_reading
    from smartcity.live.ingest.runtime import IngestConfig, build_ingest
    from smartcity.storage.engine import Database

    with fresh_database(database) as db_url:
        db = Database(db_url)
        hub = build_hub(Settings(database_url=db_url), db)
        ingest = build_ingest(hub, IngestConfig())
        progress(f"registering {devices} devices")
        sensors = [d for d, _ in _register(ingest, devices)]
        progress(f"preparing {readings} readings")
        start_ms = now_us() // 1000 - 86_400_000  # a day ago, one ms apart per device
        batches = [
            [
                parse_reading(
                    sensors[i % devices],
                    {"t": (start_ms + i // devices) / 1000, "value": i % 100},
                    now_us(),
                )
                for i in range(first, min(first + batch, readings + batch))
            ]
            for first in range(0, readings + batch, batch)
        ]
        writer = ingest.writer
        writer._commit(batches[0])  # creates the entities: not part of the figure
        before = _history_rows(db)
        progress(f"writing {readings} readings")
        paused = gc.isenabled()
        gc.disable()  # as the writer thread does while it writes a batch
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            for readings_batch in batches[1:]:
                writer._commit(readings_batch)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            if paused:
                gc.enable()
        written = sum(len(b) for b in batches[1:])
        after = _history_rows(db)
        db.dispose()
    backend = "postgresql" if database else "sqlite"
    figures = {
        "readings": float(written),
        "history_rows": float(after - before),
        "readings_per_s": round(written / wall),
        # Includes the background checkpoint thread's CPU (storage/checkpoint.py).
        "cpu_us_per_reading": round(cpu / written * 1e6, 1),
    }
    return [Result(f"ingest writer only ({backend}, {batch:,}/transaction)", figures)]


def _history_rows(db: Any) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.attr_history)).scalar_one())


def _publish_and_wait(
    ingest: Any,
    base_url: str | None,
    devices: list[tuple[str, str]],
    mqtt_url: str,
    readings: int,
    publishers: int,
    rate: float,
    per_message: int,
    db: Any,
    server_pid: int | None = None,
) -> tuple[dict[str, float], dict[str, list[int]]]:
    """Publish, wait until everything is committed; the figures, and the publish times (ms)
    of each topic's readings."""
    import tempfile

    import httpx

    spawn = mp.get_context("spawn")
    ready = spawn.Event()
    committed = spawn.Value("q", 0, lock=False)
    backlog = 15_000 // publishers  # below the session's Receive Maximum + broker queue
    per = readings // publishers
    records = Path(tempfile.mkdtemp(prefix="smartcity-bench-"))
    procs = [
        spawn.Process(
            target=_publisher,
            args=(
                mqtt_url,
                devices[i::publishers],
                per,
                rate / publishers,
                per_message,
                ready,
                committed,
                backlog,
                publishers,
                str(records / f"published-{i}.json"),
            ),
        )
        for i in range(publishers)
    ]
    for p in procs:
        p.start()
    before = _history_rows(db)  # the device mirrors' own history, not readings
    time.sleep(1.0)  # let the publishers connect
    total = -(-per // per_message) * per_message * publishers  # whole messages
    started = time.monotonic()
    cpu_start = time.process_time()  # this process only: the publishers are other processes
    server_cpu_start = _process_cpu(server_pid)
    ready.set()

    nodes = ingest if isinstance(ingest, _Nodes) else None
    if nodes is not None:
        ingest = None

    def written() -> int:
        if nodes is not None:
            return nodes.committed()
        if ingest is not None:
            return int(ingest.metrics.written + ingest.metrics.duplicates)
        got = httpx.get(f"{base_url}/api/v1/ingest/metrics", timeout=5).json()
        return int(got["written"] + got["duplicates"])

    deadline = started + max(120.0, total / 2_000)
    # Over HTTP, a slower poll: each request costs the server under test some CPU.
    poll = 0.05 if base_url is not None else 0.01
    while (done := written()) < total and time.monotonic() < deadline:
        committed.value = done
        time.sleep(poll)
    done_at = time.monotonic()
    cpu = time.process_time() - cpu_start
    server_cpu = _process_cpu(server_pid) - server_cpu_start
    publish_s = 0.0
    for p in procs:
        p.join(60)
        publish_s = max(publish_s, time.monotonic() - started)
    published: dict[str, list[int]] = {}
    for path in sorted(records.glob("published-*.json")):
        published.update(orjson.loads(path.read_bytes()))
        path.unlink()
    records.rmdir()
    stored = _history_rows(db)
    count = written()
    figures: dict[str, float] = {
        "readings": float(total),
        "committed": float(count),
        "history_rows": float(stored - before),
        "elapsed_s": round(done_at - started, 2),
        "readings_per_s": round(count / (done_at - started), 0),
        "messages_per_s": round(count / per_message / (done_at - started), 0),
    }
    # CPU time of the ingesting process per reading: a figure that does not depend on what
    # else the machine is doing.
    ingest_cpu = cpu if ingest is not None else server_cpu
    if nodes is not None:
        nodes.stop()  # the processes record their CPU time as they stop
        ingest_cpu = float(sum(nodes.cpu))
        figures["per_process"] = float(min(nodes.counts))  # the smallest share
    if ingest_cpu > 0:
        figures["cpu_us_per_reading"] = round(ingest_cpu / max(count, 1) * 1e6, 1)
        figures["cpu_bound_readings_per_s"] = round(count / ingest_cpu)
    if ingest is not None:
        figures["transactions"] = float(ingest.metrics.batches)
        figures["duplicates"] = float(ingest.metrics.duplicates)
    if count < total:
        figures["MISSING"] = float(total - count)
    return figures, published


def _process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by another process; 0 where /proc is absent."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _server:
    """A real ``smartcity serve`` process subscribing to the broker."""

    def __init__(self, db_url: str, mqtt_url: str, pattern: str, prefix: str) -> None:
        from smartcity.bench.harness import server

        os.environ["SMARTCITY_MQTT_URL"] = mqtt_url
        os.environ["SMARTCITY_MQTT_TOPIC_PATTERN"] = pattern
        os.environ["SMARTCITY_MQTT_CLIENT_ID"] = f"{prefix}-server"
        self._pids: list[int] = []
        self._cm = server(db_url, workers=1, pids=self._pids)

    @property
    def pid(self) -> int | None:
        return self._pids[0] if self._pids else None

    def __enter__(self) -> str:
        return self._cm.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(None, None, None)
        for name in (
            "SMARTCITY_MQTT_URL",
            "SMARTCITY_MQTT_TOPIC_PATTERN",
            "SMARTCITY_MQTT_CLIENT_ID",
        ):
            os.environ.pop(name, None)
