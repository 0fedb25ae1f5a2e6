"""How simulated devices send their readings: exactly as real devices do.

* MQTT: one QoS 1 message per reading on the device's own topic, the device secret in ``key``
  (docs/live.md). Backpressure: at most ``max_pending`` messages unacknowledged by the broker.
* HTTP: ``POST /api/v1/devices/{id}/readings`` with the device secret as a bearer token, from a
  few worker threads; a 503 (ingestion saturated) is retried after its Retry-After.

Neither writes the hub directly: what the platform does with a simulated reading is what it
does with a real one.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

import httpx
import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    device_id: str
    secret: str
    topic: str


@dataclass
class Stats:
    sent: int = 0  # handed to the transport
    acked: int = 0  # accepted by the broker (MQTT) or the platform (HTTP)
    outcomes: Counter[str] = field(default_factory=Counter)  # HTTP: written/duplicate/stale
    failed: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def fail(self, reason: str, n: int = 1) -> None:
        with self.lock:
            self.failed[reason] += n

    def outcome(self, status: str) -> None:
        with self.lock:
            self.outcomes[status] += 1


class Publisher(Protocol):
    stats: Stats
    description: str

    def send(self, device: Credentials, payload: dict[str, Any]) -> None: ...

    def pending(self) -> int: ...

    def flush(self, timeout: float) -> bool: ...

    def close(self) -> None: ...


class MqttPublisher:
    def __init__(self, url: str, *, client_id: str | None = None, max_pending: int = 5000) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "tcp"):
            raise ValueError(f"the MQTT URL must look like mqtt://host:1883, got {url!r}")
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 1883
        self.description = f"MQTT {self.host}:{self.port}"
        self.stats = Stats()
        self.max_pending = max_pending
        self._pending = 0
        self._cond = threading.Condition()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"smartcity-simulator-{os.getpid()}",
            protocol=paho.MQTTv311,
        )
        if parsed.username:
            self.client.username_pw_set(unquote(parsed.username), unquote(parsed.password or ""))
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)  # unbounded in paho; bounded by max_pending
        self.client.on_publish = self._on_publish
        self.client.reconnect_delay_set(1, 10)

    def connect(self, timeout: float = 5.0) -> None:
        """Connect or raise ConnectionError with what to do."""
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise ConnectionError(
                f"cannot reach the MQTT broker at {self.host}:{self.port} ({exc}); start "
                "Mosquitto, pass --mqtt URL, or use --via http"
            ) from None
        self.client.loop_start()

    def _on_publish(self, _c: Any, _u: Any, _mid: int, _rc: Any, _p: Any) -> None:
        self.stats.add(acked=1)
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()

    def send(self, device: Credentials, payload: dict[str, Any]) -> None:
        with self._cond:
            while self._pending >= self.max_pending:
                self._cond.wait(1.0)
            self._pending += 1
        body = orjson.dumps({"key": device.secret, **payload})
        info = self.client.publish(device.topic, body, qos=1)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            # NO_CONN: paho keeps QoS 1 messages and sends them once reconnected.
            self.stats.fail(f"mqtt error {info.rc}")
            with self._cond:
                self._pending -= 1
            return
        self.stats.add(sent=1)

    def pending(self) -> int:
        return self._pending

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class HttpPublisher:
    RETRIES = 5

    def __init__(self, base_url: str, *, workers: int = 8, queue_size: int = 2000) -> None:
        self.base = base_url.rstrip("/")
        self.description = f"HTTP {self.base}"
        self.stats = Stats()
        self._queue: queue.Queue[tuple[Credentials, dict[str, Any]] | None] = queue.Queue(
            queue_size
        )
        self._threads = [
            threading.Thread(target=self._work, name=f"sim-http-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def send(self, device: Credentials, payload: dict[str, Any]) -> None:
        self._queue.put((device, payload))  # blocks when the workers are behind
        self.stats.add(sent=1)

    def pending(self) -> int:
        return self._queue.unfinished_tasks

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(5)

    def _work(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10.0) as client:
            while True:
                item = self._queue.get()
                try:
                    if item is None:
                        return
                    self._post(client, *item)
                finally:
                    self._queue.task_done()

    def _post(self, client: httpx.Client, device: Credentials, payload: dict[str, Any]) -> None:
        url = f"/api/v1/devices/{device.device_id}/readings"
        headers = {"Authorization": f"Bearer {device.secret}", "Content-Type": "application/json"}
        body = orjson.dumps(payload)
        for attempt in range(self.RETRIES):
            try:
                response = client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                if attempt == self.RETRIES - 1:
                    self.stats.fail(f"unreachable ({type(exc).__name__})")
                    return
                time.sleep(0.5 * (attempt + 1))
                continue
            if response.status_code == 503:  # saturated: back off as told
                time.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            if response.status_code < 300:
                self.stats.add(acked=1)
                self.stats.outcome(str(response.json().get("status", "ok")))
            else:
                try:
                    reason = response.json().get("reason") or response.json().get("title")
                except ValueError:
                    reason = None
                self.stats.fail(f"HTTP {response.status_code} {reason or ''}".strip())
            return
        self.stats.fail("HTTP 503 (gave up)")
