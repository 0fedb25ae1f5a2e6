"""The open data portal's CKAN API under hostile input: long Chinese queries, deep query
nesting, oversized uploads; the server stays responsive and answers in CKAN's envelope."""

from __future__ import annotations

import json
import socket

import httpx
from tests.hostile.harness import Server, assert_responsive, while_probing

ACTION = "/api/3/action/"


def test_a_very_long_chinese_query_stays_cheap(server: Server) -> None:
    """2,000 different characters of Chinese are 1,999 character pairs: the search must not
    join the index once per pair (SQLite refused such a statement: a 500)."""
    q = "".join(chr(0x4E00 + i) for i in range(2000))

    def search() -> httpx.Response:
        with server.client() as http:
            return http.get(ACTION + "package_search", params={"q": q, "rows": 1000})

    probes = while_probing(server, search)
    assert probes.result.status_code == 200, probes.result.text
    assert probes.result.json()["success"] is True
    assert_responsive(probes)


def test_deep_or_wide_queries_are_refused_with_a_reason(server: Server) -> None:
    with server.client() as http:
        deep = http.get(ACTION + "package_search", params={"q": "(" * 1000 + "a" + ")" * 1000})
        wide = http.get(ACTION + "package_search", params={"q": " OR ".join(["x"] * 500)})
    for response in (deep, wide):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["__type"] == "Search Query Error"


def test_an_oversized_upload_is_refused_before_it_is_read(server: Server) -> None:
    """A declared size over the limit is refused at once, in the envelope, without waiting
    for (or keeping) the 50 GB the client announced."""
    host, port = server.base.removeprefix("http://").split(":")
    head = (
        f"POST {ACTION}resource_create HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {50 * 1024**3}\r\nConnection: close\r\n\r\n--x\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert b" 409 " in status_line, answer[:300]
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert "larger than" in body["error"]["upload"][0]
