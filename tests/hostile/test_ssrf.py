"""Issue #11, finding 8 (SSRF), against a real ``smartcity serve`` with
``SMARTCITY_FORBID_PRIVATE_TARGETS=1`` on each backend: every way a client can make the hub
connect somewhere — a subscription's notification endpoint (HTTP and MQTT), a registration
subscription's, a context source registration's endpoint, a ``Link`` @context — is refused
with a 400 ProblemDetails when it points at loopback, URL tricks included (the finding:
``127.0.0.1.``, ``localhost.`` and ``nonexistent.invalid#@127.0.0.1`` were accepted with 201),
and a receiver listening on loopback gets nothing, not even a connection attempt.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.hostile.harness import Server, assert_problem, serve

NGSI = "/ngsi-ld/v1"
REL = "http://www.w3.org/ns/json-ld#context"


class Receiver:
    """A loopback TCP listener that counts every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    listening = Receiver()
    yield listening
    listening.close()


@pytest.fixture(scope="module")
def guarded(database_url: str) -> Iterator[Server]:
    with serve(database_url, env={"SMARTCITY_FORBID_PRIVATE_TARGETS": "1"}) as running:
        yield running


def subscription(uri: str) -> dict[str, Any]:
    return {
        "type": "Subscription",
        "entities": [{"type": "Probe"}],
        "notification": {"endpoint": {"uri": uri, "accept": "application/json"}},
    }


def tricks(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/",
        f"http://127.0.0.1.:{port}/",  # a trailing dot
        f"http://localhost.:{port}/",
        f"http://nonexistent.invalid#@127.0.0.1:{port}/",  # userinfo after a fragment
        f"http://[::1]:{port}/",
        f"http://2130706433:{port}/",  # 127.0.0.1 as one number
        f"http://0x7f.1:{port}/",
    ]


def test_loopback_targets_are_refused_and_the_receiver_gets_nothing(
    guarded: Server, receiver: Receiver
) -> None:
    port = receiver.port
    # A tenant of its own: the database is shared with the suite's other modules.
    headers = {**guarded.auth, "NGSILD-Tenant": "ssrf"}
    with guarded.client(headers=headers) as http:
        for uri in tricks(port):
            r = http.post(f"{NGSI}/subscriptions", json=subscription(uri))
            assert_problem(r, 400)
            r = http.post(
                f"{NGSI}/csourceSubscriptions",
                json={**subscription(uri), "type": "Subscription"},
            )
            assert_problem(r, 400)
        mqtt = http.post(f"{NGSI}/subscriptions", json=subscription(f"mqtt://127.0.0.1:{port}/t"))
        assert_problem(mqtt, 400)
        registration = {
            "type": "ContextSourceRegistration",
            "information": [{"entities": [{"type": "Probe"}]}],
            "endpoint": f"http://127.0.0.1.:{port}/",
        }
        assert_problem(http.post(f"{NGSI}/csourceRegistrations", json=registration), 400)
        link = f'<http://localhost.:{port}/ctx.jsonld>; rel="{REL}"'
        r = http.get(f"{NGSI}/entities", params={"type": "Probe"}, headers={"Link": link})
        assert_problem(r, 400)
        # Nothing was stored, so nothing can be sent later either.
        assert http.get(f"{NGSI}/subscriptions").json() == []
        probes = {"type": "Probe"}
        assert http.get(f"{NGSI}/csourceRegistrations", params=probes).json() == []
        assert http.get(f"{NGSI}/csourceSubscriptions").json() == []
        # A write that a loopback subscription would have been told of.
        r = http.post(f"{NGSI}/entities", json={"id": "urn:ngsi-ld:Probe:ssrf", "type": "Probe"})
        assert r.status_code in (201, 409), r.text
    time.sleep(1.0)  # a notification would be on its way by now
    assert receiver.connections == 0
