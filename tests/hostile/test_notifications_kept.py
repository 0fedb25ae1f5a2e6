"""A server killed while delivering: another takes its notifications over within seconds.

A real ``smartcity serve`` claims notifications for a receiver that hangs, and is killed with
SIGKILL mid-delivery (no shutdown hook runs, nothing is handed back). A second server on the
same database must deliver them once the dead one's short lease runs out: seconds, not the two
minutes the old fixed lease held them, and in order.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tests.hostile.harness import serve

KIND = "KeptNotificationSensor"
# The default lease is 5 s: the takeover is due about that long after the kill (the second
# server wakes when the lease runs out), or at once if starting it took longer. The margins are
# for a loaded 2-core machine; the old lease held them 120 s.
AFTER_START_WITHIN = 7.0
AFTER_KILL_WITHIN = 20.0
# Loopback receivers must be allowed whatever the hostile suite's defaults become.
ENV = {"SMARTCITY_FORBID_PRIVATE_TARGETS": "0"}


class HangingReceiver:
    """Hangs on every request until ``release()``; after that it answers 204 at once and keeps
    the notifications it answered (the one a dead server sent is not among them)."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.released = threading.Event()
        self.delivered: list[Any] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                if not receiver.released.is_set():
                    receiver.arrived.set()
                    receiver.released.wait(60)
                    return  # its sender is dead: nobody reads an answer
                receiver.delivered.append(body)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[HangingReceiver]:
    r = HangingReceiver()
    yield r
    r.close()


def test_a_killed_servers_notifications_are_delivered_by_another_within_seconds(
    database_url: str, receiver: HangingReceiver
) -> None:
    with serve(database_url, env=ENV) as first, first.client() as http:
        made = http.post(
            "/ngsi-ld/v1/subscriptions",
            json={
                "type": "Subscription",
                "entities": [{"type": KIND}],
                "notification": {"endpoint": {"uri": receiver.url}},
            },
            headers=first.auth,
        )
        assert made.status_code == 201, made.text
        location = made.headers["location"]
        entity = f"urn:ngsi-ld:{KIND}:1"
        r = http.post(
            "/ngsi-ld/v1/entities",
            json={"id": entity, "type": KIND, "level": {"type": "Property", "value": 0}},
            headers=first.auth,
        )
        assert r.status_code == 201, r.text
        assert receiver.arrived.wait(15), "the first server never tried to deliver"
        for level in (1, 2):  # owed behind the one being delivered
            r = http.patch(
                f"/ngsi-ld/v1/entities/{entity}/attrs", json={"level": level}, headers=first.auth
            )
            assert r.status_code == 204, r.text
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(10)
    killed_at = time.monotonic()
    receiver.release()  # the receiver is healthy again; the dead server's request is lost

    with serve(database_url, env=ENV) as second, second.client() as http:
        started_at = time.monotonic()
        try:
            deadline = min(started_at + AFTER_START_WITHIN, killed_at + AFTER_KILL_WITHIN)
            while len(receiver.delivered) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            levels = [n["data"][0]["level"]["value"] for n in receiver.delivered]
            assert levels == [0, 1, 2], (
                f"{time.monotonic() - started_at:.1f} s after the second server started "
                f"({time.monotonic() - killed_at:.1f} s after the kill): {levels}"
            )
        finally:
            assert http.delete(location, headers=second.auth).status_code == 204
            http.delete(f"/ngsi-ld/v1/entities/{entity}", headers=second.auth)
