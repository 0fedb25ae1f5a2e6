"""Fixtures of the open data tests: an app per test (both backends) with its uploads in a
temporary folder, and ``act`` to call an action the way a CKAN client does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.opendata.helpers import Act, make_act, open_settings, trilingual

from smartcity.app import create_app
from smartcity.storage.engine import Database


@pytest.fixture
def od_client(db: Database, tmp_path: Path) -> Iterator[TestClient]:
    """The app without authentication (every caller is a sysadmin)."""
    app = create_app(open_settings(db, tmp_path, auth=False))
    app.state.opendata.organisations.seed_licences()  # the test database starts empty
    with TestClient(app) as client:
        yield client


@pytest.fixture
def act(od_client: TestClient) -> Act:
    return make_act(od_client)


@pytest.fixture
def transport(act: Act) -> dict[str, Any]:
    """An organisation, two groups and a dataset with a link resource."""
    act(
        "organization_create",
        name="td",
        title_translated=trilingual("Transport Department", "運輸署", "运输署"),
    )
    act("organization_create", name="epd", title="Environmental Protection Department")
    act("group_create", name="transport", title_translated=trilingual("Transport", "運輸", "运输"))
    act("group_create", name="environment", title="Environment")
    return act(
        "package_create",
        name="car-park-vacancy",
        owner_org="td",
        title_translated=trilingual("Car park vacancy", "停車場空置車位", "停车场空置车位"),
        notes="Real-time vacancy of public car parks, every minute.",
        tags=[{"name": "parking"}, {"name": "transport"}],
        groups=[{"name": "transport"}],
        license_id="datagovhk-terms",
        frequency="continuous",
        resources=[{"url": "https://example.org/vacancy.csv", "name": "Vacancy (CSV)"}],
    )["result"]
