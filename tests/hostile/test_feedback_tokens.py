"""Issue #11, finding 9, against a real ``smartcity serve`` on each backend: the portal's voter
token is the client's choice, so made-up tokens must buy nothing. 70 tokens made 70 votes
(fixed on main: votes count per person); 3 tokens hid any comment by reporting it (second
wave: reports count towards hiding per person; a browser's report waits for a moderator).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.hostile.harness import Server, assert_problem, cli, serve

TARGET = "measure:mobility-01"


@pytest.fixture(scope="module")
def portal(database_url: str) -> Iterator[Server]:
    cli("blueprint", "load", "--database", database_url)
    with serve(database_url) as running:
        yield running


def visible(http: httpx.Client) -> int:
    r = http.get("/api/v1/comments", params={"target": TARGET, "limit": 100})
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


def test_made_up_tokens_neither_vote_nor_hide(portal: Server) -> None:
    with portal.client() as http:
        before = visible(http)
        r = http.post(
            "/api/v1/comments",
            json={"target": TARGET, "text": "Keep the tram stop.", "language": "en"},
            headers={"X-Voter-Token": "hostile-author-token-0001"},
        )
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        for n in range(70):
            token = {"X-Voter-Token": f"hostile-voter-token-{n:04d}"}
            assert_problem(http.post(f"/api/v1/comments/{cid}/votes", headers=token), 403)
        for n in range(20):
            token = {"X-Voter-Token": f"hostile-reporter-token-{n:04d}"}
            r = http.post(f"/api/v1/comments/{cid}/reports", json={"reason": "spam"}, headers=token)
            assert r.status_code == 201 and r.json()["countsToHide"] is False, r.text
        assert http.get(f"/api/v1/comments/{cid}").json()["votes"] == 0
        assert visible(http) == before + 1  # still published
