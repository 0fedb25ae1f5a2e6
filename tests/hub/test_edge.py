"""The app's edge (hub/api/edge.py) as an ASGI component: how much it reads, when it stops.

The hostile suite (tests/hostile/test_bodies.py) drives it through a real server; here the
server is a fake receive, so the bounds themselves can be counted exactly.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from tests.asyncrun import run as run_async

from smartcity.hub.api.edge import BodyLimits, Edge, Linger

CHUNK = 64 * 1024


class Client:
    """An endless (or hanging) client: counts what the edge pulled, records what it sent."""

    def __init__(self, *, hang_after: int | None = None) -> None:
        self.pulled = 0
        self.calls = 0
        self.hang_after = hang_after
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        self.calls += 1
        if self.hang_after is not None and self.calls > self.hang_after:
            await asyncio.sleep(3600)
        self.pulled += CHUNK
        return {"type": "http.request", "body": b"x" * CHUNK, "more_body": True}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


def scope(path: str = "/ngsi-ld/v1/entities", **headers: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }


def run(edge: Edge, client: Client, request: dict[str, Any]) -> Any:
    return run_async(edge.admit(request, client.receive, client.send))


def test_a_chunked_body_is_read_to_its_limit_then_discarded_within_the_linger_bound() -> None:
    edge = Edge(BodyLimits([], default=100_000), Linger(max_bytes=1_000_000, max_seconds=30))
    client = Client()
    assert run(edge, client, scope(transfer_encoding="chunked")) is None
    start, *body, end = client.sent
    assert start["status"] == 413
    assert (b"connection", b"close") in start["headers"]
    problem = orjson.loads(body[0]["body"])
    assert problem["status"] == 413 and "100000 bytes" in problem["detail"]
    assert end == {"type": "http.response.body", "body": b"", "more_body": False}
    # Read: the limit plus one chunk; discarded: the linger bound plus one chunk. No more.
    assert client.pulled <= 100_000 + CHUNK + 1_000_000 + CHUNK


def test_a_client_that_stops_sending_is_not_waited_for() -> None:
    edge = Edge(BodyLimits([], default=1000), Linger(idle_seconds=0.2))
    client = Client(hang_after=3)
    started = time.monotonic()
    assert run(edge, client, scope(transfer_encoding="chunked")) is None
    assert time.monotonic() - started < 2
    assert client.sent[-1]["more_body"] is False


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    edge = Edge(BodyLimits([(r"/small$", 10)], default=1_000_000), Linger(max_bytes=0))
    client = Client()
    assert run(edge, client, scope("/small", content_length="11")) is None
    assert client.sent[0]["status"] == 413 and client.pulled <= CHUNK
    # With "Expect: 100-continue" the body is never asked for, so never read at all.
    waiting = Client()
    assert run(edge, waiting, scope("/small", content_length="11", expect="100-continue")) is None
    assert waiting.calls == 0 and waiting.sent[-1]["more_body"] is False


def test_an_admitted_body_reaches_the_app_whole_in_one_message() -> None:
    edge = Edge(BodyLimits([], default=10 * CHUNK))
    client = Client()

    async def admit_and_read() -> list[dict[str, Any]]:
        chunks = iter([True, True, False])

        async def receive() -> dict[str, Any]:
            more = next(chunks)
            return {"type": "http.request", "body": b"y" * CHUNK, "more_body": more}

        replay = await edge.admit(scope(transfer_encoding="chunked"), receive, client.send)
        assert replay is not None
        return [await replay()]

    (message,) = run_async(admit_and_read())
    assert message == {"type": "http.request", "body": b"y" * 3 * CHUNK, "more_body": False}
    assert client.sent == []


def test_paths_and_query_strings_that_cannot_be_ids_are_refused() -> None:
    edge = Edge(BodyLimits([], default=1000))
    for path, query in [
        ("/ngsi-ld/v1/entities/urn:a:%00", b""),
        ("/ngsi-ld/v1/entities/urn:a:%0A", b""),
        ("/ngsi-ld/v1/entities/urn:a:%C0", b""),
        ("/ngsi-ld/v1/entities", b"q=a%00"),
        ("/ngsi-ld/v1/entities", b"type=%FF"),
    ]:
        client = Client()
        request = {**scope(path), "method": "GET", "query_string": query}
        assert run(edge, client, request) is None, (path, query)
        assert client.sent[0]["status"] == 400 and client.calls == 0
    fine = {**scope("/ngsi-ld/v1/entities/urn:a:%E5%A4%A9"), "query_string": b"q=a%20b"}
    assert run(edge, Client(), fine) is not None
