"""The DataStore under hostile input (a real server per backend): an endless query through
datastore_search_sql is stopped at the site's time limit, and a wide word search over a
table, while the server keeps answering others."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.hostile.harness import Server, assert_responsive, serve, while_probing

ACTION = "/api/3/action/"


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[Server]:
    env = {
        "SMARTCITY_OPENDATA_DATASTORE_SQL": "1",
        "SMARTCITY_OPENDATA_DATASTORE_SQL_TIMEOUT_S": "1.5",
    }
    with serve(database_url, env=env, args=("--no-auth",)) as running:
        yield running


@pytest.fixture(scope="module")
def rid(server: Server) -> str:
    with server.client() as http:
        http.post(ACTION + "organization_create", json={"name": "td", "title": "TD"})
        http.post(ACTION + "package_create", json={"name": "big", "owner_org": "td"})
        r = http.post(
            ACTION + "datastore_create",
            json={
                "resource": {"package_id": "big"},
                "fields": [{"id": "n", "type": "int"}, {"id": "t", "type": "text"}],
                "records": [{"n": i, "t": f"row {i} 停車場"} for i in range(20_000)],
            },
        )
        assert r.status_code == 200, r.text
        return str(r.json()["result"]["resource_id"])


def test_an_endless_sql_query_is_stopped(server: Server, rid: str) -> None:
    sql = (
        f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
        f'SELECT count(*) FROM c, "{rid}"'
    )

    def run() -> httpx.Response:
        with server.client() as http:
            return http.post(ACTION + "datastore_search_sql", json={"sql": sql})

    probes = while_probing(server, run)
    assert probes.result.status_code == 409, probes.result.text
    assert "longer than 1.5 s" in probes.result.json()["error"]["sql"][0]
    assert_responsive(probes)


def test_a_wide_word_search_answers(server: Server, rid: str) -> None:
    words = " ".join(f"w{i}" for i in range(300)) + " 停車"

    def run() -> httpx.Response:
        with server.client() as http:
            return http.post(
                ACTION + "datastore_search",
                json={"resource_id": rid, "q": words, "limit": 32000},
            )

    probes = while_probing(server, run)
    assert probes.result.status_code == 200, probes.result.text
    assert probes.result.json()["result"]["total"] == 0
    assert_responsive(probes)
