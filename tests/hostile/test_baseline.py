"""The probe itself: an ordinary slow-ish request leaves the server responsive."""

from __future__ import annotations

from tests.hostile.harness import Server, assert_responsive, while_probing


def test_an_ordinary_query_leaves_the_server_responsive(server: Server) -> None:
    def query() -> int:
        with server.client() as http:
            return http.get("/ngsi-ld/v1/entities", params={"type": "Probe"}).status_code

    probes = while_probing(server, query)
    assert probes.result == 200
    assert_responsive(probes)
