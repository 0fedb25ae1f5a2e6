"""Oversized request bodies: refused at the app's edge (hub/api/edge.py) while they stream.

Issue #11: a 400 MiB device-readings body was read into memory before its 1 MiB check (RSS to
~1.1 GB), device registration had no limit at all, and a 20 MB body could get a reset instead
of a readable 413. Each hostile body here must get a 413 ProblemDetails within a second, store
nothing, and leave the server's memory within 50 MB of where it was.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.hostile.harness import (
    Server,
    assert_problem,
    assert_responsive,
    rss_mb,
    while_probing,
)

MB = 1_000_000
MiB = 1024 * 1024
CHUNK = 256 * 1024
# Each route with the JSON a careless client would send, endlessly long.
ENTITY = "urn:ngsi-ld:Oversized:1"
DEVICE_ENTITY = "urn:ngsi-ld:OversizedFeed:1"


def endless_json(head: bytes, filler: bytes, total: int) -> Iterator[bytes]:
    """``head`` followed by ``filler`` repeated: a valid JSON prefix ``total`` bytes long."""
    yield head
    sent = len(head)
    block = filler * (CHUNK // len(filler))
    while sent < total:
        piece = block[: total - sent]
        sent += len(piece)
        yield piece


ROUTES: dict[str, tuple[str, str, bytes, bytes]] = {
    # name: (path, content type, JSON head, filler)
    "ngsi-ld entity": (
        "/ngsi-ld/v1/entities",
        "application/json",
        b'{"id": "' + ENTITY.encode() + b'", "type": "Oversized", "v": {"value": "',
        b"x",
    ),
    "device readings": (
        "/api/v1/devices/oversized-1/readings",
        "application/json",
        b'[{"temp": 1.5}',
        b', {"temp": 1.5}',
    ),
    "device registration": ("/api/v1/devices", "application/json", b'{"name": "', b"x"),
    "public comment": ("/api/v1/comments", "application/json", b'{"text": "', b"x"),
    "site form": ("/en/login", "application/x-www-form-urlencoded", b"username=", b"x"),
}


@pytest.fixture(scope="module")
def device_secret(server: Server) -> str:
    with server.client() as http:
        r = http.post(
            "/api/v1/devices",
            json={
                "id": "oversized-1",
                "entity_id": DEVICE_ENTITY,
                "entity_type": "OversizedFeed",
                "attributes": {"temp": {"name": "temperature"}},
            },
            headers=server.auth,
        )
        assert r.status_code == 201, r.text
        return str(r.json()["secret"])


def _headers(server: Server, name: str, secret: str) -> dict[str, str]:
    if name == "device readings":
        return {"Authorization": f"Bearer {secret}"}
    return server.auth


def _nothing_written(server: Server) -> None:
    with server.client() as http:
        assert http.get(f"/ngsi-ld/v1/entities/{ENTITY}").status_code == 404
        metrics = http.get("/api/v1/ingest/metrics").json()
        assert metrics["received"] == 0, metrics
        devices = http.get("/api/v1/devices", headers=server.auth).json()
        assert [d["id"] for d in devices] == ["oversized-1"]


def _stream(server: Server, name: str, secret: str, total: int, **extra: Any) -> httpx.Response:
    path, ctype, head, filler = ROUTES[name]
    headers = {**_headers(server, name, secret), "Content-Type": ctype, **extra}
    with server.client(timeout=60) as http:
        return http.post(path, content=endless_json(head, filler, total), headers=headers)


@pytest.mark.parametrize("name", list(ROUTES))
def test_a_20_mb_body_gets_a_readable_413_and_costs_no_memory(
    server: Server, device_secret: str, name: str
) -> None:
    before = rss_mb(server)
    started = time.monotonic()
    response = _stream(server, name, device_secret, 20 * MB)
    assert time.monotonic() - started < 30
    body = assert_problem(response, 413)
    assert "larger than" in body["detail"]
    assert response.headers["connection"] == "close"
    assert rss_mb(server) - before < 50
    _nothing_written(server)


@pytest.mark.parametrize("name", ["device readings", "device registration"])
@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
def test_a_400_mib_body_is_refused_without_being_kept(
    server: Server, device_secret: str, name: str, declared: bool
) -> None:
    before = rss_mb(server)
    total = 400 * MiB
    extra = {"Content-Length": str(total)} if declared else {}
    started = time.monotonic()
    probes = while_probing(server, lambda: _stream(server, name, device_secret, total, **extra))
    assert time.monotonic() - started < 60
    assert_problem(probes.result, 413)
    assert_responsive(probes)  # discarding 400 MiB does not hold up other requests
    assert rss_mb(server) - before < 50
    _nothing_written(server)


def _raw_request(server: Server, path: str, headers: dict[str, str]) -> socket.socket:
    host, port = server.base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def _read_answer(sock: socket.socket) -> bytes:
    """Read until the headers and the announced body are in."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, data
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        piece = sock.recv(65536)
        assert piece
        body += piece
    return head + b"\r\n\r\n" + body


def test_the_413_arrives_while_the_client_is_still_sending_and_the_close_is_clean(
    server: Server, device_secret: str
) -> None:
    """Declared too large: answered before any byte of the body, within a second; then the
    server reads and discards what the client still sends and closes without a reset."""
    total = 20 * MB
    sock = _raw_request(
        server,
        "/api/v1/devices/oversized-1/readings",
        {
            "Authorization": f"Bearer {device_secret}",
            "Content-Type": "application/json",
            "Content-Length": str(total),
        },
    )
    with sock:
        started = time.monotonic()
        answer = _read_answer(sock)  # nothing of the body sent yet
        assert time.monotonic() - started < 1.0
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"connection: close" in answer.lower()
        block = b" " * CHUNK
        for _ in range(total // CHUNK):
            sock.sendall(block)  # a reset here would raise ConnectionResetError
        sock.sendall(block[: total % CHUNK])
        sock.settimeout(15)
        assert sock.recv(1) == b""  # an orderly close (FIN), not a reset
    _nothing_written(server)


def test_a_chunked_body_is_cut_off_at_the_limit(server: Server, device_secret: str) -> None:
    """Chunked: the server answers once the limit (1 MiB) is passed, while the client is
    still sending its 20 MB."""
    sock = _raw_request(
        server,
        "/api/v1/devices/oversized-1/readings",
        {
            "Authorization": f"Bearer {device_secret}",
            "Content-Type": "application/json",
            "Transfer-Encoding": "chunked",
        },
    )
    sent = 0
    stop = threading.Event()

    def send() -> None:
        # Paced at ~25 MB/s, as a real upload over a fast link (20 MB in ~0.8 s): unpaced,
        # loopback takes 20 MB in ~10 ms, and a reader that the loaded CI machine kept waiting
        # that long saw the whole body sent before it read the early answer.
        nonlocal sent
        block = b" " * CHUNK
        frame = f"{len(block):x}\r\n".encode() + block + b"\r\n"
        with contextlib.suppress(OSError):
            while not stop.wait(0.01) and sent < 20 * MB:
                sock.sendall(frame)
                sent += CHUNK

    with sock:
        started = time.monotonic()
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        answer = _read_answer(sock)
        elapsed, sent_then = time.monotonic() - started, sent
        stop.set()
        sender.join(15)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert elapsed < 1.0
    # Answered while the client was still sending (the kernel's buffers on loopback hold a
    # few MB, so "sent" runs ahead of what the server read).
    assert sent_then < 20 * MB
    _nothing_written(server)
