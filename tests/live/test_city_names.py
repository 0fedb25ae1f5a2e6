"""Names that match everywhere: the simulator, the connectors, the dashboard, the portal's live
links and an API client sending the platform's city @context all mean the same IRIs.

The simulated city is provisioned in process (as ``smartcity demo`` does) and every device
sends one reading through the real readings endpoint, on every backend.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.city_context import city_link

from smartcity.hub.contexts import city_context, city_terms
from smartcity.hub.service import EntityService
from smartcity.live.connectors.base import COMMON_TERMS, Connector
from smartcity.live.dashboard.kinds import KINDS
from smartcity.live.simulator.models import CityModel
from smartcity.live.simulator.places import SimDevice, build_fleet
from smartcity.live.simulator.provision import LocalRegistrar, State, prepare
from smartcity.portal.blueprint.dataset import load_blueprint
from smartcity.portal.site import live

SEED = 5
# What the simulated city writes besides its devices' own entities: the device mirrors, and
# the bus stops and routes the bus panels' arrival estimations point to.
ALSO = {"Device", "GtfsStop", "GtfsRoute"}


@pytest.fixture
def city(client: TestClient, tmp_path: Path) -> tuple[TestClient, list[SimDevice]]:
    """The simulated city in the client's hub, each device having sent one reading."""
    app: Any = client.app
    ingest, hub = app.state.ingest, app.state.hub
    fleet = build_fleet(100, SEED)
    credentials = prepare(
        fleet,
        LocalRegistrar(ingest.registry, hub.entities, hub.contexts),
        State("city-names", tmp_path),
        interval_s=60,
    )
    model = CityModel(SEED)
    t_us = (int(time.time()) - 60) * 1_000_000  # a minute ago: never "future"
    for device in fleet:
        reading = {"t": t_us / 1e6, **model.reading(device, t_us)}
        secret = credentials[device.index].secret
        r = client.post(
            f"/api/v1/devices/{device.device_id}/readings",
            json=reading,
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert r.status_code == 200 and r.json()["status"] == "written", r.text
    return client, fleet


def _subclasses(cls: type) -> list[type]:
    return [s for c in cls.__subclasses__() for s in (c, *_subclasses(c))]


def test_types_come_back_as_short_names_through_the_city_context(
    city: tuple[TestClient, list[SimDevice]],
) -> None:
    client, fleet = city
    expected = {d.entity_type for d in fleet} | ALSO
    # One naming: with the city context every type the demo holds is a short name...
    listed = client.get("/ngsi-ld/v1/types", headers=city_link()).json()["typeList"]
    assert sorted(listed) == sorted(expected)
    attributes = client.get("/ngsi-ld/v1/attributes", headers=city_link()).json()
    assert all(":" not in name for name in attributes["attributeList"]), attributes
    # ... and each is one IRI, the one the city context gives its short name (without the
    # context the core applies: Smart Data Models types come back as IRIs).
    plain = client.get("/ngsi-ld/v1/types").json()["typeList"]
    ctx = city_context()
    assert sorted(ctx.expand(name) for name in plain) == sorted(ctx.expand(n) for n in expected)
    # The README's query, with the documented context, finds the simulated car parks.
    parks = client.get(
        "/ngsi-ld/v1/entities?type=OffStreetParking&options=keyValues&limit=100",
        headers=city_link("http://127.0.0.1:8000"),
    ).json()
    assert len(parks) == sum(d.kind == "carpark" for d in fleet)
    assert all(isinstance(p["availableSpotNumber"], int) for p in parks)


def test_every_live_linked_measure_has_its_figure(
    city: tuple[TestClient, list[SimDevice]],
) -> None:
    client, _fleet = city
    entities: EntityService = client.app.state.hub.entities  # type: ignore[attr-defined]
    links = {m.id: m.live for area in load_blueprint().areas for m in area.measures if m.live}
    assert len(links) == 6
    for measure_id, measure_links in links.items():
        for link in measure_links:
            figure = live.compute(entities, link)
            assert figure.value is not None and figure.value > 0, (measure_id, figure)
            assert figure.entities > 0, (measure_id, figure)
            # Every one of them is the simulator's: the page labels the figure as simulated.
            assert figure.simulated == figure.entities, (measure_id, figure)
            # The data behind the figure is found by a browser, which sends no Link header.
            behind = client.get(figure.api_url)
            assert behind.status_code == 200 and behind.json(), (measure_id, figure.api_url)


def test_every_writer_and_reader_takes_its_names_from_the_city_context() -> None:
    city = city_terms()
    for connector in _subclasses(Connector):
        context = getattr(connector, "context", None)
        if context:
            assert {**COMMON_TERMS, **context}.items() <= city.items(), connector.__name__
    ctx = city_context()
    for kind in KINDS:
        assert kind.type_iris == (city[kind.type_name],), kind.key
        assert kind.attr_iris == (city[kind.attr],), kind.key
        assert kind.type_name in {d.entity_type for d in build_fleet(100, SEED)}, kind.key
    # Short names of the context are not shadowed by the core context (it is applied last).
    assert all(ctx.expand(name) == iri for name, iri in city.items())


def test_measure_pages_label_simulated_figures(city: tuple[TestClient, list[SimDevice]]) -> None:
    client, _fleet = city
    linked = next(m for area in load_blueprint().areas for m in area.measures if m.live)
    for prefix, label in (("en", "Simulated data"), ("tc", "模擬數據"), ("sc", "模拟数据")):
        page = client.get(f"/{prefix}/measures/{linked.id}")
        assert page.status_code == 200
        assert page.text.count('class="figure-simulated"') == len(linked.live)
        assert f">{label}</span>" in page.text
