"""Schemathesis fuzzes every operation of the app's own OpenAPI document (the hub, the portal,
live-data and open data APIs): never a 5xx, and every error is a ProblemDetails a client can read
(CKAN's envelope on the open data portal's CKAN paths, DATA.GOV.HK's error list on its
historical archive API)."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from smartcity.opendata.ckan.endpoints import is_ckan_path

pytestmark = pytest.mark.slow


@pytest.fixture
def api_schema(client: TestClient) -> schemathesis.schemas.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", client.app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call()
    assert response.status_code < 500, (case.method, case.formatted_path, response.text)
    if response.status_code >= 400 and response.status_code != 405:
        problem = response.json()
        # CKAN's envelope on the open data portal's paths (actions, files, DCAT, live files),
        # the edge's refusals included
        if is_ckan_path(case.path):
            assert problem["success"] is False and problem["error"]["__type"], problem
            return
        if case.path.startswith("/api/v1/historical-archive/") and "errors" in problem:
            # DATA.GOV.HK's shape (docs/opendata.md); the edge's refusals are ProblemDetails
            assert all(e["message"] for e in problem["errors"]), problem
            return
        if case.path.startswith("/ngsi-ld/"):  # NGSI-LD clients switch on the ETSI error types
            assert problem["type"].startswith("https://uri.etsi.org/ngsi-ld/errors/"), problem
        else:  # the platform's own APIs: RFC 9457 ProblemDetails
            assert problem["type"] and problem["title"], problem
            assert problem["status"] == response.status_code, problem
        assert problem["detail"], problem
