"""Outbound requests a client can trigger: a remote @context that never answers must hold up
only the requests that name it, and a malformed @context Link is the client's error."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.hostile.harness import Server, assert_problem, assert_responsive, while_probing

REL = "http://www.w3.org/ns/json-ld#context"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


@pytest.fixture(scope="module")
def silent_server() -> Iterator[str]:
    """A context server that accepts connections and never answers (loopback: the SSRF
    setting is off by default, so the hub fetches from it)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # connections complete in the backlog; nothing is ever read
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_contexts_that_never_arrive_hold_up_no_one_else(server: Server, silent_server: str) -> None:
    """Five requests, each naming a different never-answering @context URL (so the failure
    memory cannot help), while /healthz and a retrieve keep answering at once."""

    def ask(n: int) -> httpx.Response:
        link = f'<{silent_server}/ctx-{n}.jsonld>; rel="{REL}"'
        with server.client() as http:
            return http.get("/ngsi-ld/v1/entities", params={"type": "T"}, headers={"Link": link})

    def hostile() -> list[httpx.Response]:
        with ThreadPoolExecutor(5) as pool:
            return list(pool.map(ask, range(5)))

    probes = while_probing(server, hostile)
    for response in probes.result:
        assert response.status_code == 503, response.text
        assert response.json()["type"] == ERRORS + "LdContextNotAvailable"
        assert silent_server in response.json()["detail"]
    assert_responsive(probes)


@pytest.mark.parametrize(
    "link",
    [
        b'<http://example.org/\xffctx.jsonld>; rel="' + REL.encode() + b'"',
        b'<http://ex\xffample.org/ctx.jsonld>; rel="' + REL.encode() + b'"',
    ],
)
def test_a_link_header_with_non_ascii_bytes_is_a_bad_request(server: Server, link: bytes) -> None:
    with server.client() as http:
        r = http.get("/ngsi-ld/v1/entities", params={"type": "T"}, headers=[(b"Link", link)])
        body = assert_problem(r, 400)
        assert body["type"] == ERRORS + "BadRequestData"
        r = http.post(
            "/ngsi-ld/v1/entities",
            content=b'{"id": "urn:ngsi-ld:T:1", "type": "T"}',
            headers=[(b"Content-Type", b"application/json"), (b"Link", link), *server.auth.items()],
        )
        assert_problem(r, 400)
