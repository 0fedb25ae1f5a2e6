"""The MQTT subscriber: device readings from a broker into the batching writer.

Delivery: MQTT v5, QoS 1, a persistent session (fixed client id, ``clean_start=False``,
session expiry one day) and manual acknowledgement: a PUBACK is sent only after the reading's
transaction committed. A reading the platform received but had not committed when it crashed
is redelivered by the broker when the subscriber reconnects; the ledger turns any
redelivery of a committed reading into a counted duplicate.

Sharing (``SMARTCITY_MQTT_SHARE_GROUP``): nodes subscribe to ``$share/<group>/<filter>`` and
the broker spreads messages over them. Each node's persistent session is its own: Mosquitto
(2.0) neither hands a dead member's unacknowledged messages to the others nor stops queueing
new ones for it (measured, docs/reliability.md), so a node that dies is taken over by a
survivor (members.py): it resumes the dead session, takes what was queued, unsubscribes and
ends the session. A subscriber built with ``drain=True`` is that survivor's side.

Backpressure: the session's Receive Maximum bounds unacknowledged messages, so the broker
stops sending when the writer is behind; if the writer's queue is full anyway, the network
callback waits, which stops reading from the socket.

Credentials on a shared broker: a subscriber never learns which MQTT user published a
message, so the platform cannot check the publisher itself. Each device therefore has a
policy: ``secret`` (default) - the payload carries the device secret in ``key``, checked
against its digest; ``broker`` - the broker's per-device ACL (e.g. Mosquitto
``pattern write city/+/devices/%u/readings``) is trusted to let only that device publish on
its topic. In both cases the topic must be exactly the device's registered topic.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from smartcity.hub.timeutil import now_us
from smartcity.live.ingest.readings import Reading, Rejected, parse_reading
from smartcity.live.ingest.runtime import Ingest
from smartcity.live.ingest.writer import Outcome, Submission

log = logging.getLogger(__name__)

_PUBACK = struct.Struct("!BBH")
MAX_PAYLOAD = 256 * 1024
MAX_READINGS = 1_000
RECEIVE_MAXIMUM = 20_000  # unacknowledged messages the broker may send us
SESSION_EXPIRY_S = 86_400
READ_BURST = 500  # packets read from the buffer per pass of paho's loop
RESUBMIT_S = 1.0  # a batch the database could not take is offered again after this
WILL_DELAY_S = 1  # a node not back this long after its connection dropped is said offline
RECONNECT_MAX_S = 4  # below members.CONFIRM_S: a reconnecting node is not taken over


class _BufferedSocket:
    """The broker connection with a read buffer: paho reads each packet's header a byte at a
    time (three recv() system calls per message); served from one 64 KiB read instead, the
    profile's largest per-message cost goes away. ``pending()`` tells paho's loop that data is
    buffered (it checks this for TLS sockets), so it reads before waiting in select()."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, n: int) -> bytes:
        if self._pos >= len(self._buf):
            self._buf = self._sock.recv(65536)  # BlockingIOError when empty, as paho expects
            self._pos = 0
            if not self._buf:
                return b""
        chunk = self._buf[self._pos : self._pos + n]
        self._pos += len(chunk)
        return chunk

    def pending(self) -> int:
        return len(self._buf) - self._pos

    def __getattr__(self, name: str) -> Any:  # fileno, send, close, setblocking, ...
        return getattr(self._sock, name)


class _Client(paho.Client):
    def _create_socket(self) -> Any:
        return _BufferedSocket(super()._create_socket())

    def ack_many(self, mids: list[int]) -> None:
        """Acknowledge many QoS 1 messages in one write: paho's ack() queues a packet and
        wakes its loop per message (two system calls each, profiled at ~10% of the writer)."""
        if mids:
            packet = b"".join(_PUBACK.pack(0x40, 2, mid) for mid in mids)
            self._packet_queue(0x40, packet, 0, 0)

    def loop_read(self, max_packets: int = 1) -> paho.MQTTErrorCode:
        # paho's loop reads one packet per pass, and each pass costs a select() and its
        # bookkeeping (~20 % of the subscriber at one reading per message): while the read
        # buffer holds more, read on (a bounded number, so that acknowledgements and
        # keep-alives still go out between).
        rc = super().loop_read(max_packets)
        for _ in range(READ_BURST):
            sock = self._sock
            if rc != paho.MQTTErrorCode.MQTT_ERR_SUCCESS or not isinstance(sock, _BufferedSocket):
                break
            if not sock.pending():
                break
            rc = super().loop_read(max_packets)
        return rc

    def _handle_publish(self) -> paho.MQTTErrorCode:
        """An incoming PUBLISH, QoS 0 or 1, straight to ``on_message`` as a ``Publish``.

        Why not paho's own: it unpacks with struct formats built per packet, decodes the MQTT
        v5 properties into objects, builds an MQTTMessage, then matches the topic against
        per-topic callbacks with a recursive closure, one reference cycle per message for the
        garbage collector (py-spy and gc.DEBUG_SAVEALL; ~30 % of the subscriber's CPU). This
        subscriber needs topic, payload, QoS and packet id, and acknowledges manually. QoS 2
        (never requested here), topic aliases and malformed packets take paho's path."""
        command, packet = self._in_packet["command"], self._in_packet["packet"]
        qos = (command & 0x06) >> 1
        on_message = self.on_message
        if qos == 2 or on_message is None or not self._manual_ack:
            return super()._handle_publish()
        try:
            end = 2 + int.from_bytes(packet[0:2], "big")
            topic = bytes(packet[2:end]).decode()
            mid = 0
            if qos:
                mid = int.from_bytes(packet[end : end + 2], "big")
                end += 2
            if self._protocol == paho.MQTTv5:  # skip the properties: a variable byte length
                length, shift = 0, 0
                while True:
                    byte = packet[end]
                    end += 1
                    length |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        break
                    shift += 7
                    if shift > 21:
                        raise ValueError("properties length longer than 4 bytes")
                end += length
            if not topic or end > len(packet):
                raise ValueError("empty topic (an alias) or a truncated packet")
        except (ValueError, IndexError):  # includes UnicodeDecodeError
            return super()._handle_publish()
        message = Publish(topic, bytes(packet[end:]), qos, mid)
        with self._in_callback_mutex:
            on_message(self, self._userdata, message)  # type: ignore[arg-type]  # duck-typed
        return paho.MQTTErrorCode.MQTT_ERR_SUCCESS


@dataclass(slots=True)
class Publish:
    """What the subscriber reads of a PUBLISH (paho's MQTTMessage has the same fields)."""

    topic: str
    payload: bytes
    qos: int
    mid: int


def subscription_filter(pattern: str, share_group: str | None = None) -> str:
    """``city/{tenant}/devices/{device_id}/readings`` -> ``city/+/devices/+/readings``;
    with a share group ``g``: ``$share/g/city/+/devices/+/readings`` (MQTT v5)."""
    plain = "/".join("+" if "{" in level else level for level in pattern.split("/"))
    return f"$share/{share_group}/{plain}" if share_group else plain


def check_share_group(group: str) -> str:
    """A share group name is one topic level without wildcards (MQTT v5, 4.8.2)."""
    if not group or any(c in group for c in "/+#") or group.startswith("$"):
        raise ValueError(
            f"MQTT share group {group!r} must be a plain name such as 'smartcity' "
            "(no '/', '+', '#', not starting with '$')"
        )
    return group


class MqttSubscriber:
    def __init__(
        self,
        ingest: Ingest,
        url: str,
        *,
        client_id: str | None = None,
        drain: bool = False,
        status_topic: str | None = None,
    ) -> None:
        """``drain``: take over another node's session (its ``client_id``): no subscription,
        take what the broker queued for it, then unsubscribe and end the session.
        ``status_topic``: where a sharing node says it is online; its will says "offline"
        there when the connection drops (members.py watches it)."""
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "tcp", ""):
            raise ValueError(f"MQTT URL must look like mqtt://host:1883, got {url!r}")
        self.ingest = ingest
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 1883
        self.pattern = ingest.config.topic_pattern
        levels = self.pattern.split("/")
        if "{device_id}" not in levels:
            raise ValueError("the MQTT topic pattern needs a {device_id} level")
        self._id_level = levels.index("{device_id}")
        self._levels = len(levels)
        self.share_group = ingest.config.share_group
        self.filter = subscription_filter(self.pattern, self.share_group)
        self.client_id = client_id or ingest.config.client_id
        self.drain = drain
        self.status_topic = status_topic
        self.client = _Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=paho.MQTTv5,
            manual_ack=True,
        )
        if parsed.username:
            self.client.username_pw_set(unquote(parsed.username), unquote(parsed.password or ""))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_unsubscribe = self._on_unsubscribe
        self.client.reconnect_delay_set(1, RECONNECT_MAX_S)
        self.connected = threading.Event()
        self._generation = 0  # bumped on every (re)connect: acks of an old session are void
        self._stopping = False
        self._last_log: dict[str, float] = {}
        self._acks: list[int] = []  # committed, to acknowledge after the batch
        self._ack_lock = threading.Lock()
        self.inflight = 0  # QoS 1 messages received and not acknowledged yet
        self.last_message = time.monotonic()
        self.unsubscribed = threading.Event()  # drain / leave: the broker sends no new ones
        self.finished = threading.Event()  # drain: over (done, taken over or given up)
        self.session_present: bool | None = None
        self.failed = False  # drain: a batch could not be written (the session is kept)
        self._unplug = ingest.writer.after_batch.add(self.flush_acks)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = min(RECEIVE_MAXIMUM, max(1, self.ingest.writer.capacity))
        if self.status_topic is not None and not self.drain:
            # Said by the broker when this connection drops without a DISCONNECT (a crash,
            # SIGKILL, a lost network) and is not back within the delay: survivors then take
            # the session over.
            will = Properties(PacketTypes.WILLMESSAGE)
            will.WillDelayInterval = WILL_DELAY_S
            self.client.will_set(self.status_topic, b"offline", 1, True, will)
        self.client.connect_async(
            self.host, self.port, keepalive=30, clean_start=False, properties=props
        )
        self.client.loop_start()

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self.connected.wait(timeout)

    def stop(self) -> None:
        """Stop taking messages (later ones stay unacknowledged and will be redelivered)."""
        self._stopping = True

    def leave(self, timeout: float = 10.0) -> bool:
        """A sharing node's orderly exit: unsubscribe (the broker sends the group's messages to
        the others from then on), let what was received be committed and acknowledged, then
        ``close(end_session=True)``. False if something stayed unacknowledged (the session is
        then kept and said offline, so that a survivor takes it over)."""
        if self.connected.is_set() and not self.unsubscribed.is_set():
            self.client.unsubscribe(self.filter)
            self.unsubscribed.wait(min(timeout, 5.0))
        if not self.unsubscribed.is_set():
            # Not connected (or no answer): the session is still in the group and must be
            # taken over; its will says offline once the connection is gone.
            return False
        return self.wait_idle(timeout, quiet=0.3)

    def wait_idle(self, timeout: float, quiet: float = 1.0) -> bool:
        """Wait until nothing is unacknowledged and no message came for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.inflight == 0 and time.monotonic() - self.last_message >= quiet:
                return True
            time.sleep(0.05)
        return False

    def close(self, *, end_session: bool = False) -> None:
        """Disconnect; ``end_session``: tell the broker to drop the session (session expiry
        0), which also takes it out of the share group."""
        self._unplug()
        props = None
        if end_session:
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = 0
        self.client.disconnect(properties=props)
        self.client.loop_stop()

    def status(self) -> dict[str, Any]:
        return {
            "broker": f"{self.host}:{self.port}",
            "subscription": self.filter,
            "connected": self.connected.is_set(),
        }

    # -- callbacks (paho's network thread) ----------------------------------------------------
    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.error("MQTT: broker %s:%s refused the connection: %s", self.host, self.port, rc)
            if self.drain:
                self._give_up()
            return
        self._generation += 1
        with self._ack_lock:
            self.inflight = 0  # the broker sends the unacknowledged ones again
        self.session_present = bool(_f.session_present)
        if self.drain:
            # The broker sends what it queued for the session whatever its subscriptions;
            # unsubscribing at once stops new messages of the group coming here.
            self.last_message = time.monotonic()
            client.unsubscribe(self.filter)
            self.connected.set()
            return
        client.subscribe(self.filter, qos=1)
        if self.status_topic is not None:
            client.publish(self.status_topic, b"online", qos=1, retain=True)
        log.info("MQTT: subscribed to %s on %s:%s", self.filter, self.host, self.port)

    def _on_unsubscribe(self, _c: paho.Client, _u: Any, _mid: int, _codes: Any, _p: Any) -> None:
        self.unsubscribed.set()

    def _give_up(self) -> None:
        """Drain mode: stop for good (paho's loop would reconnect otherwise)."""
        self._stopping = True
        self.finished.set()
        self.client.disconnect()

    def _on_subscribe(self, _c: paho.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        if all(not c.is_failure for c in codes):
            self.connected.set()  # ready: the subscription is in place
        else:
            log.error("MQTT: the broker refused the subscription to %s: %s", self.filter, codes)

    def _on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.connected.clear()
        if self.drain and not self.finished.is_set():
            # Taken over (the node came back, or another survivor) or the broker went away:
            # whoever has the session now gets the unacknowledged messages again.
            log.warning("MQTT: takeover of %s interrupted (%s)", self.client_id, rc)
            self._give_up()
            return
        if not self._stopping:
            log.warning("MQTT: disconnected (%s); reconnecting", rc)

    def _on_message(self, client: paho.Client, _u: Any, msg: Publish | paho.MQTTMessage) -> None:
        if self._stopping:
            return
        self.last_message = time.monotonic()
        if msg.qos:
            with self._ack_lock:
                self.inflight += 1
        metrics = self.ingest.metrics
        try:
            readings = self.parse(msg.topic, bytes(msg.payload))
        except Rejected as exc:
            metrics.add(received=1)
            metrics.reject(exc.reason)
            self._log_rejected(msg.topic, exc)
            self._ack_now(msg)  # redelivery would not make it acceptable
            return
        except Exception:  # a bug must not stop ingestion either
            metrics.add(received=1)
            metrics.reject("internal_error")
            log.exception("MQTT: message on %s could not be handled", msg.topic)
            self._ack_now(msg)
            return
        if not readings:  # every reading of a multi-reading message was refused
            self._ack_now(msg)
            return
        generation, mid, qos = self._generation, msg.mid, msg.qos
        submission = Submission(readings)
        submission.done = lambda o: self._done(generation, mid, qos, o, submission)
        while not self.ingest.writer.offer(submission, timeout=1.0):
            if self._stopping:
                return  # not acknowledged: the broker redelivers it to the next session

    def _ack_now(self, msg: Publish | paho.MQTTMessage) -> None:
        if msg.qos:
            with self._ack_lock:
                self.inflight = max(0, self.inflight - 1)
            self.client.ack(msg.mid, msg.qos)

    def _done(
        self, generation: int, mid: int, qos: int, outcome: Outcome, submission: Submission
    ) -> None:
        """In the writer's thread, once the message's readings are committed (or refused)."""
        if outcome.error is not None and outcome.retryable:
            # The database is away (restarting, failing over): not acknowledged, and offered
            # again shortly, so the broker's in-flight window is not held until a reconnect.
            if self.drain:
                self.failed = True  # the session is kept: a later takeover resumes it
                self._give_up()
                return
            timer = threading.Timer(RESUBMIT_S, self._resubmit, (generation, submission))
            timer.daemon = True
            timer.start()
            return
        if qos and generation == self._generation:
            self._acks.append(mid)

    def _resubmit(self, generation: int, submission: Submission) -> None:
        if generation != self._generation or self._stopping:
            return  # a new session: the broker sends the message again itself
        while not self.ingest.writer.offer(submission, timeout=1.0):
            if self._stopping or generation != self._generation:
                return

    def flush_acks(self) -> None:
        """Called by the writer after each batch: one write for all its acknowledgements."""
        mids, self._acks = self._acks, []
        if mids:
            with self._ack_lock:
                self.inflight = max(0, self.inflight - len(mids))
            self.client.ack_many(mids)

    # -- parsing -------------------------------------------------------------------------------
    def parse(self, topic: str, payload: bytes) -> list[Reading]:
        """The readings of one message; raises Rejected for the whole message."""
        levels = topic.split("/")
        if len(levels) != self._levels:
            raise Rejected("wrong_topic", f"topic {topic} does not match {self.pattern}")
        registry = self.ingest.registry
        device = registry.cached(levels[self._id_level])
        if device is None:
            raise Rejected("unknown_device", f"no device {levels[self._id_level]} (topic {topic})")
        if device.revoked_at is not None:
            raise Rejected("revoked", f"device {device.device_id} is revoked")
        if device.mqtt_topic != topic:
            raise Rejected(
                "wrong_topic", f"device {device.device_id} may only publish on {device.mqtt_topic}"
            )
        if len(payload) > MAX_PAYLOAD:
            raise Rejected("too_large", f"payload larger than {MAX_PAYLOAD} bytes")
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise Rejected("malformed", f"payload is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise Rejected("malformed", "payload must be a JSON object")
        if device.mqtt_auth == "secret" and not registry.verify(device, data.get("key")):
            raise Rejected("bad_credentials", f"wrong or missing 'key' for {device.device_id}")
        items = data.get("readings") if "readings" in data else [data]
        if not isinstance(items, list) or len(items) > MAX_READINGS:
            raise Rejected("malformed", f"'readings' must be a list of at most {MAX_READINGS}")
        now = now_us()
        self.ingest.metrics.add_received(len(items))
        readings = []
        for item in items:
            try:
                readings.append(parse_reading(device, item, now))
            except Rejected as exc:  # one bad reading does not sink the others
                self.ingest.metrics.reject(exc.reason)
                self._log_rejected(topic, exc)
        return readings

    def _log_rejected(self, topic: str, exc: Rejected) -> None:
        # At most one line per reason and second: a misbehaving device must not flood the log.
        now = time.monotonic()
        if now - self._last_log.get(exc.reason, 0.0) >= 1.0:
            self._last_log[exc.reason] = now
            log.warning("MQTT: refused a message on %s (%s): %s", topic, exc.reason, exc.detail)
