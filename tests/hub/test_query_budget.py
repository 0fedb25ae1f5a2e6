"""A query that runs past the server's budget (Limits.query_timeout) is stopped in the
database and answered 403 TooComplexQuery, the specification's error for a query that would
exhaust the server's resources; the server goes on answering."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from smartcity.app import create_app
from smartcity.config import Limits, Settings
from smartcity.storage.engine import Database

ENTITIES = "/ngsi-ld/v1/entities"


@pytest.fixture
def stingy(db: Database) -> Iterator[TestClient]:
    """A server whose budget for one query is a millisecond."""
    settings = Settings(
        database_url=db.url, auth_required=False, limits=Limits(query_timeout=0.001)
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_query_past_the_budget_is_a_too_complex_query(stingy: TestClient) -> None:
    # One entity whose list a q must scan element by element: far more than a millisecond.
    long_list = {"type": "ListProperty", "valueList": list(range(200_000))}
    r = stingy.post(ENTITIES, json={"id": "urn:ngsi-ld:T:1", "type": "T", "readings": long_list})
    assert r.status_code == 201, r.text

    r = stingy.get(ENTITIES, params={"type": "T", "q": "readings==-1"})
    assert r.status_code == 403, r.text
    problem = r.json()
    assert problem["type"].endswith("/TooComplexQuery")
    assert "budget" in problem["detail"] and "narrow it" in problem["detail"]

    # The server goes on: a retrieval is no query and has no such budget.
    assert stingy.get(f"{ENTITIES}/urn:ngsi-ld:T:1").status_code == 200
    assert stingy.get("/healthz").status_code == 200
