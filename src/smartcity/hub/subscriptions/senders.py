"""Delivering one rendered notification to a receiver: HTTP(S) (clause 6) or MQTT (clause 7).

Both senders keep connections open between notifications (an httpx connection pool; one paho
client per broker and credentials), because a busy subscription notifies many times a second
and a TCP (and TLS) handshake per notification would dominate. Any failure raises
:class:`DeliveryError` with a short reason, which the notifier records and retries.

Both connect through the outbound guard (``hub.outbound``): with
SMARTCITY_FORBID_PRIVATE_TARGETS a receiver's address is checked at every connection, on the
address actually connected to, whatever the name resolved to when the subscription was made.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from smartcity.hub.outbound import GuardedMqttClient, TargetGuard, http_client
from smartcity.hub.subscriptions.model import MQTT_QOS, MQTT_VERSION, endpoint_target

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0  # seconds, when the endpoint gives none
MAX_TIMEOUT = 30.0  # an endpoint's own timeout is capped: a receiver cannot hold a worker long


class DeliveryError(Exception):
    """The receiver did not accept the notification (the reason is in the message)."""


@dataclass
class Message:
    uri: str
    notification: dict[str, Any]
    headers: dict[str, str]  # Content-Type, Link, NGSILD-Tenant and the receiverInfo pairs
    timeout: float = DEFAULT_TIMEOUT
    notifier_info: dict[str, str] = field(default_factory=dict)


def timeout_of(endpoint: dict[str, Any]) -> float:
    if "timeout" in endpoint:  # milliseconds in the payload
        return min(MAX_TIMEOUT, max(0.001, endpoint["timeout"] / 1000))
    return DEFAULT_TIMEOUT


class HttpSender:
    def __init__(self, guard: TargetGuard | None = None, *, max_connections: int = 64) -> None:
        self.client = http_client(
            guard or TargetGuard(),
            # Redirects are not followed: a notification is delivered to the receiver named,
            # or not at all.
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            timeout=DEFAULT_TIMEOUT,
        )

    def send(self, message: Message) -> None:
        try:
            response = self.client.post(
                message.uri,
                content=orjson.dumps(message.notification),
                headers=message.headers,
                timeout=message.timeout,
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"the receiver answered HTTP {response.status_code}")

    def close(self) -> None:
        self.client.close()


class _Broker:
    """One connection to an MQTT broker, kept open and shared by every notification to it."""

    def __init__(self, key: tuple[Any, ...], timeout: float, guard: TargetGuard) -> None:
        scheme, host, port, username, password, version = key
        self.connected = threading.Event()
        self.failed: str | None = None
        protocol = mqtt.MQTTv5 if version == "mqtt5.0" else mqtt.MQTTv311
        self.client = GuardedMqttClient(
            guard,
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"smartcity-{uuid.uuid4().hex[:12]}",
            protocol=protocol,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if scheme == "mqtts":
            self.client.tls_set()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.connect_timeout = timeout
        default_port = 8883 if scheme == "mqtts" else 1883
        try:
            self.client.connect(host, port or default_port, keepalive=60)
        except Exception as exc:  # socket errors, TLS errors, bad host names
            raise DeliveryError(f"cannot connect to MQTT broker {host}: {exc}") from exc
        self.client.loop_start()
        if not self.connected.wait(timeout):
            self.close()
            raise DeliveryError(
                f"MQTT broker {host} did not accept the connection: {self.failed or 'timeout'}"
            )

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.failed = str(reason)
        else:
            self.connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        self.failed = str(reason)

    def publish(self, topic: str, payload: bytes, qos: int, timeout: float) -> None:
        if not self.connected.is_set():
            raise DeliveryError(f"not connected to the MQTT broker ({self.failed})")
        try:
            info = self.client.publish(topic, payload, qos=qos)
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            raise DeliveryError(str(exc)) from exc
        if not info.is_published():
            raise DeliveryError("the MQTT broker did not acknowledge the notification in time")

    def close(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()


class MqttSender:
    """Publishes ``{"metadata": {...headers}, "body": notification}`` (clause 7.2) at QoS 1
    unless the endpoint's notifierInfo says otherwise (MQTT-QoS, MQTT-Version)."""

    def __init__(self, guard: TargetGuard | None = None) -> None:
        self.guard = guard or TargetGuard()
        self._brokers: dict[tuple[Any, ...], _Broker] = {}
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        scheme, host, port, topic = endpoint_target(message.uri)
        parts = urlsplit(message.uri)
        username = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        version = message.notifier_info.get(MQTT_VERSION, "mqtt3.1.1")
        qos = int(message.notifier_info.get(MQTT_QOS, "1"))
        key = (scheme, host, port, username, password, version)
        payload = orjson.dumps({"metadata": message.headers, "body": message.notification})
        broker = self._broker(key, message.timeout)
        try:
            broker.publish(topic, payload, qos, message.timeout)
        except DeliveryError:
            self._drop(key, broker)  # reconnect from scratch next time
            raise

    def _broker(self, key: tuple[Any, ...], timeout: float) -> _Broker:
        with self._lock:
            broker = self._brokers.get(key)
        if broker is not None and broker.connected.is_set():
            return broker
        if broker is not None:
            self._drop(key, broker)
        fresh = _Broker(key, timeout, self.guard)
        with self._lock:
            raced = self._brokers.get(key)
            if raced is None:
                self._brokers[key] = fresh
                return fresh
        fresh.close()  # another worker connected first: share its connection
        return raced

    def _drop(self, key: tuple[Any, ...], broker: _Broker) -> None:
        with self._lock:
            if self._brokers.get(key) is broker:
                del self._brokers[key]
        try:
            broker.close()
        except Exception:
            log.debug("closing an MQTT connection failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            brokers = list(self._brokers.items())
        for key, broker in brokers:
            self._drop(key, broker)


class Senders:
    """Picks the sender by URI scheme. Both connect through the SSRF guard, which checks the
    address at every connection (a host name may resolve elsewhere than it did when the
    subscription was made); a refused receiver is a DeliveryError like any other."""

    def __init__(self, *, forbid_private: bool = False) -> None:
        guard = TargetGuard(forbid_private)
        self.http = HttpSender(guard)
        self.mqtt = MqttSender(guard)

    def send(self, message: Message) -> None:
        scheme, _, _, _ = endpoint_target(message.uri)
        if scheme in ("http", "https"):
            self.http.send(message)
        else:
            self.mqtt.send(message)

    def close(self) -> None:
        self.http.close()
        self.mqtt.close()
