"""The open data portal's generated files and DCAT pages under hostile use: a large live CSV
streams without stopping the server, and out-of-range paging, dates and keys are refused with
a message (CKAN's envelope), never a 500 or a huge page."""

from __future__ import annotations

from tests.hostile.harness import Server, assert_responsive, cli, while_probing

ENTITIES = 3000


def test_live_files_stream_and_bad_parameters_are_refused(server: Server) -> None:
    with server.client() as http:
        for start in range(0, ENTITIES, 1000):
            batch = [
                {"id": f"urn:ngsi-ld:Crowd:{n}", "type": "Crowd", "level": {"value": n}}
                for n in range(start, start + 1000)
            ]
            r = http.post("/ngsi-ld/v1/entityOperations/upsert", json=batch, headers=server.auth)
            assert r.status_code in (201, 204), r.text[:300]
    cli("opendata", "seed", "--database", server.database_url)
    cli("opendata", "publish-type", "Crowd", "--org", "td", "--database", server.database_url)

    def download() -> int:
        with server.client() as http:
            r = http.get("/dataset/live-crowd/live/current.csv")
            assert r.status_code == 200
            return r.text.count("urn:ngsi-ld:Crowd:")

    probes = while_probing(server, download)
    assert probes.result == ENTITIES
    assert_responsive(probes)

    with server.client() as http:
        for path, params, status in (
            ("/catalog.ttl", {"page_size": "1000000000"}, 409),
            ("/catalog.ttl", {"page": "-1"}, 409),
            ("/catalog.ttl", {"modified_since": "not a time"}, 409),
            ("/dataset/live-crowd/live/history/99999-12-31.csv", {}, 409),
            ("/dataset/live-crowd/live/history/2999-01-01.csv", {}, 409),
            ("/dataset/..%2F..%2Fetc%2Fpasswd/live/current.csv", {}, 404),
            ("/dataset/" + "x" * 5000 + ".ttl", {}, 404),
        ):
            r = http.get(path, params=params)
            assert r.status_code in (status, 414), (path, r.status_code, r.text[:300])
            if r.status_code == status:
                body = r.json()
                # A message, or CKAN's per-field messages for a Validation Error.
                assert body["success"] is False and set(body["error"]) - {"__type"}, body
