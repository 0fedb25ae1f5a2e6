"""The members of an MQTT share group, and the takeover of a member that died.

Why this exists: with a shared subscription (``$share/<group>/...``) each node still has its
own persistent session. Mosquitto 2.0 keeps a dead member's unacknowledged messages in that
session (it does not hand them to the others) and goes on queueing the group's new messages
for it, round robin, as if it were alive, until the session expires, when they are gone
(measured; docs/reliability.md "Several nodes and faults"). MQTT has no way to move a session,
but any client may resume one by its client id. So:

- each sharing node says ``online`` (retained) on ``smartcity-ingest/<group>/members/<id>``
  when it connects, and leaves a will (retained ``offline``, 1 s will delay) that the broker
  publishes if the connection drops without a DISCONNECT;
- every node watches that topic (a small second connection); when a member is still offline
  ``CONFIRM_S`` after it was said so, one survivor (chosen the same way by all: the dead id's
  hash over the live ids, sorted) resumes the dead session, the others ``GRACE_S`` later if
  it is still offline;
- the survivor (``MqttSubscriber(drain=True)``) unsubscribes the session from the group,
  commits and acknowledges what the broker queued, then ends the session (expiry 0) and
  clears the member's status. Its readings go through the survivor's writer and the shared
  ledger, so a redelivery of what the dead node had committed counts as a duplicate.

If the dead node comes back first, it simply resumes its own session (a takeover in
progress is interrupted, "session taken over"; nothing is acknowledged twice before commit).
"""

from __future__ import annotations

import logging
import threading
import zlib
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

if TYPE_CHECKING:
    from smartcity.live.ingest.runtime import Ingest

log = logging.getLogger(__name__)

# A member said offline is taken over only if it is still offline this much later: a node
# whose connection dropped (or a broker that restarted: Mosquitto publishes every will as it
# shuts down) reconnects within its back-off (RECONNECT_MAX_S) and says online again. Taking
# over a live node's session would unsubscribe it from the group while it is away.
CONFIRM_S = 5.0
GRACE_S = 15.0  # the other survivors step in if the chosen one did not clear the member
DRAIN_TIMEOUT_S = 300.0  # one takeover at most this long (then the session is kept)


def status_topic(group: str, client_id: str) -> str:
    return f"smartcity-ingest/{group}/members/{client_id}"


class Membership:
    """Watches the share group's members and takes over the dead ones' sessions."""

    def __init__(self, ingest: Ingest, url: str, group: str, own_id: str) -> None:
        self.ingest = ingest
        self.url = url
        self.group = group
        self.own_id = own_id
        self.prefix = status_topic(group, "")
        self.status: dict[str, str] = {}  # client id -> online | offline
        self.draining: set[str] = set()
        self.taken_over: list[str] = []  # ids whose sessions this node ended (tests, logs)
        self._lock = threading.Lock()
        self._timers: list[threading.Timer] = []
        self._closed = False
        parsed = urlparse(url)
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{own_id}-members",
            protocol=paho.MQTTv5,
        )
        if parsed.username:
            self.client.username_pw_set(unquote(parsed.username), unquote(parsed.password or ""))
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 30)
        self._host, self._port = parsed.hostname or "127.0.0.1", parsed.port or 1883

    def start(self) -> None:
        self.client.connect_async(self._host, self._port, keepalive=30, clean_start=True)
        self.client.loop_start()

    def close(self) -> None:
        self._closed = True
        for timer in self._timers:
            timer.cancel()
        self.client.disconnect()
        self.client.loop_stop()

    def clear(self, client_id: str) -> None:
        """Forget a member for good (its session is over): an empty retained message."""
        self.client.publish(status_topic(self.group, client_id), b"", qos=1, retain=True)

    # -- paho's network thread -------------------------------------------------------------------
    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if not rc.is_failure:
            client.subscribe(self.prefix + "+", qos=1)  # the retained statuses come at once

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        member = msg.topic[len(self.prefix) :]
        state = msg.payload.decode(errors="replace")
        with self._lock:
            if state:
                self.status[member] = state
            else:
                self.status.pop(member, None)
        if state == "offline":
            self._consider(member)

    # -- takeover ---------------------------------------------------------------------------------
    def chosen(self, member: str) -> str:
        """The live member that takes ``member`` over first: the same answer on every node."""
        with self._lock:
            live = sorted(m for m, s in self.status.items() if s == "online" and m != member)
        if self.own_id not in live:
            live = sorted([*live, self.own_id])
        return live[zlib.crc32(member.encode()) % len(live)]

    def _consider(self, member: str, *, stage: int = 0) -> None:
        """Stage 0: a member was said offline; stage 1 (``CONFIRM_S`` later): still offline,
        the chosen survivor takes over; stage 2 (``GRACE_S`` after that): anyone does."""
        if self._closed or member == self.own_id:
            return
        with self._lock:
            if self.status.get(member) != "offline" or member in self.draining:
                return
        if stage == 2 or (stage == 1 and self.chosen(member) == self.own_id):
            threading.Thread(
                target=self._take_over, args=(member,), name=f"takeover-{member}", daemon=True
            ).start()
            return
        timer = threading.Timer(
            CONFIRM_S if stage == 0 else GRACE_S, self._consider, (member,), {"stage": stage + 1}
        )
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _take_over(self, member: str) -> None:
        from smartcity.live.ingest.mqtt import MqttSubscriber

        with self._lock:
            if member in self.draining:
                return
            self.draining.add(member)
        drainer = MqttSubscriber(self.ingest, self.url, client_id=member, drain=True)
        try:
            log.warning("MQTT: member %s of group %s is offline; taking its session over",
                        member, self.group)  # fmt: skip
            drainer.start()
            if not drainer.wait_connected(10) or drainer.finished.is_set():
                drainer.close()
                return
            # Quiet for a second with nothing unacknowledged, after the broker confirmed the
            # session left the group: everything it held has been committed and acknowledged.
            drainer.unsubscribed.wait(10)
            done = drainer.wait_idle(DRAIN_TIMEOUT_S, quiet=1.0)
            if drainer.finished.is_set() or drainer.failed or not done:
                drainer.close()  # the session stays; a later takeover resumes it
                return
            drainer.finished.set()  # before the disconnect: it is not an interruption
            drainer.close(end_session=True)
            self.clear(member)
            self.taken_over.append(member)
            log.warning("MQTT: took over %s's session (session present: %s) and ended it",
                        member, drainer.session_present)  # fmt: skip
        finally:
            with self._lock:
                self.draining.discard(member)
