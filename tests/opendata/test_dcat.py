"""DCAT-AP 3: the catalogue and datasets validate against the official DCAT-AP 3.0.0 SHACL
shapes (pyshacl, zero violations), private and draft datasets stay out, pages link with Hydra,
``modified_since`` narrows, content negotiation answers each RDF type, and the schema.org
markup of a dataset page reads as a schema:Dataset."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pyshacl import validate
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF
from tests.opendata.helpers import Act, open_settings, trilingual

from smartcity.app import create_app
from smartcity.opendata.catalogue import tables
from smartcity.opendata.dcat.endpoints import negotiate
from smartcity.opendata.dcat.schemaorg import schema_org_dataset
from smartcity.storage.engine import Database

SHAPES = Path(__file__).resolve().parents[3] / "shared" / "dcat-ap" / "dcat-ap-3.0.0-SHACL.ttl"
if not SHAPES.exists():  # a worktree beside /work/main: the shapes sit in /work/shared
    SHAPES = Path("/work/shared/dcat-ap/dcat-ap-3.0.0-SHACL.ttl")
DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCT = Namespace("http://purl.org/dc/terms/")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
SDO = Namespace("https://schema.org/")
PARSERS = {"ttl": "turtle", "rdf": "xml", "jsonld": "json-ld"}


@cache
def shapes() -> Graph:
    return Graph().parse(SHAPES)


def assert_conforms(data: Graph) -> None:
    conforms, _report, text = validate(data, shacl_graph=shapes())
    assert conforms, text


def fetch(client: TestClient, path: str, fmt: str = "ttl", **params: Any) -> Graph:
    response = client.get(path, params=params or None)
    assert response.status_code == 200, response.text
    return Graph().parse(data=response.content, format=PARSERS[fmt])


@pytest.fixture
def catalogue(act: Act, transport: dict[str, Any]) -> dict[str, Any]:
    """Four public datasets (one rich, with an upload, a period, a place and a contact), a
    private one and a draft one."""
    rich = act(
        "package_create",
        name="air-quality",
        owner_org="epd",
        title_translated=trilingual("Air quality", "空氣質素", "空气质素"),
        notes_translated=trilingual("Hourly pollutants", "每小時污染物", "每小时污染物"),
        groups=[{"name": "environment"}],
        tags=[{"name": "air"}],
        license_id="cc-by",
        frequency="hourly",
        version="2.1",
        temporal_start="2020-01-01",
        temporal_end="2024-12-31T23:59:59",
        spatial={
            "type": "Polygon",
            "coordinates": [[[113.8, 22.1], [114.5, 22.1], [114.5, 22.6], [113.8, 22.1]]],
        },
        spatial_label_translated=trilingual("Hong Kong", "香港", "香港"),
        maintainer="EPD Data Office",
        maintainer_email="data@epd.example",
        resources=[{"url": "https://example.org/aq.json", "name": "Readings", "format": "JSON"}],
    )["result"]
    act("package_create", name="bus-stops", owner_org="td", title="Bus stops")
    act(
        "package_create",
        name="no-notes",
        owner_org="td",
        title="Nothing said",
        license_id="other-open",
    )
    act("package_create", name="secret-plan", owner_org="td", title="Secret plan", private=True)
    act("package_create", name="work-in-progress", owner_org="td", title="Draft", state="draft")
    return {"rich": rich, "transport": transport}


def test_the_catalogue_validates_and_hides_private_and_draft_datasets(
    od_client: TestClient, catalogue: dict[str, Any]
) -> None:
    for fmt in ("ttl", "rdf", "jsonld"):
        graph = fetch(od_client, f"/catalog.{fmt}", fmt)
        assert_conforms(graph)
        titles = {str(o) for o in graph.objects(None, DCT.title)}
        assert {"Car park vacancy", "停車場空置車位", "停车场空置车位", "Air quality"} <= titles
        assert "Secret plan" not in titles and "Draft" not in titles
        datasets = set(graph.subjects(RDF.type, DCAT.Dataset))
        assert len(datasets) == 4
        catalog = next(graph.subjects(RDF.type, DCAT.Catalog))
        assert set(graph.objects(catalog, DCAT.dataset)) == datasets
    # Multilingual titles are language-tagged literals.
    assert Literal("停車場空置車位", lang="zh-Hant") in set(graph.objects(None, DCT.title))


def test_a_dataset_validates_with_its_mandatory_and_recommended_properties(
    od_client: TestClient, catalogue: dict[str, Any]
) -> None:
    rich = catalogue["rich"]
    for fmt in ("ttl", "rdf", "jsonld"):
        graph = fetch(od_client, f"/dataset/air-quality.{fmt}", fmt)
        assert_conforms(graph)
    node = URIRef(f"http://testserver/dataset/{rich['id']}")
    assert (node, RDF.type, DCAT.Dataset) in graph
    publisher = graph.value(node, DCT.publisher)
    assert publisher is not None
    assert (publisher, RDF.type, FOAF.Agent) in graph
    assert graph.value(node, DCT.accrualPeriodicity) == URIRef(
        "http://publications.europa.eu/resource/authority/frequency/HOURLY"
    )
    assert URIRef("http://publications.europa.eu/resource/authority/data-theme/ENVI") in set(
        graph.objects(node, DCAT.theme)
    )
    distribution = graph.value(node, DCAT.distribution)
    assert graph.value(distribution, DCAT.accessURL) == URIRef("https://example.org/aq.json")
    licence = graph.value(distribution, DCT.license)
    assert licence is not None
    assert (licence, RDF.type, DCT.LicenseDocument) in graph
    # A dataset with no notes, no licence URL and no resources still validates.
    assert_conforms(fetch(od_client, "/dataset/no-notes.ttl"))


@pytest.fixture
def with_auth(db: Database, tmp_path: Path) -> Iterator[TestClient]:
    """A second app on the same database, with authentication on."""
    app = create_app(open_settings(db, tmp_path, auth=True))
    with TestClient(app) as client:
        yield client


def test_private_and_draft_datasets_are_not_found_for_outsiders(
    with_auth: TestClient, catalogue: dict[str, Any]
) -> None:
    client = with_auth
    app: Any = client.app
    stranger = app.state.hub.keys.create("stranger", scope="write")[1]
    editor = app.state.hub.keys.create("td-editor", scope="write")[1]
    with app.state.opendata.catalogue.db.write() as conn:
        from smartcity.opendata.catalogue import repository as repo

        org = repo.find_named(conn, tables.organisations, "td")
        assert org is not None
        repo.set_member(conn, org.id, "td-editor", "editor")
    for headers in ({}, {"Authorization": stranger}):
        for name in ("secret-plan", "work-in-progress"):
            response = client.get(f"/dataset/{name}.ttl", headers=headers)
            assert response.status_code == 404, response.text
            assert response.json()["error"]["__type"] == "Not Found Error"
    # Its organisation's editor sees both.
    for name in ("secret-plan", "work-in-progress"):
        response = client.get(f"/dataset/{name}.ttl", headers={"Authorization": editor})
        assert response.status_code == 200
        assert "private" in response.headers["cache-control"]
    # The catalogue is the public one, whoever asks.
    response = client.get("/catalog.ttl", headers={"Authorization": editor})
    titles = {str(o) for o in Graph().parse(data=response.content).objects(None, DCT.title)}
    assert "Secret plan" not in titles and "Draft" not in titles and "Bus stops" in titles


def test_pages_link_with_hydra_and_walk_the_whole_catalogue(
    od_client: TestClient, catalogue: dict[str, Any]
) -> None:
    seen: list[URIRef] = []
    url: str | None = "/catalog.ttl?page_size=3"
    pages = 0
    while url is not None and pages < 5:
        pages += 1
        graph = fetch(od_client, url)
        assert_conforms(graph)
        view = next(graph.subjects(RDF.type, HYDRA.PartialCollectionView))
        assert (view, RDF.type, HYDRA.PagedCollection) in graph
        assert int(graph.value(view, HYDRA.totalItems)) == 4
        assert str(graph.value(view, HYDRA.first)).endswith("page=1")
        assert str(graph.value(view, HYDRA.last)).endswith("page=2")
        seen.extend(graph.subjects(RDF.type, DCAT.Dataset))
        following = graph.value(view, HYDRA.next)
        assert graph.value(view, HYDRA.nextPage) == following
        url = str(following).replace("http://testserver", "") if following else None
    assert pages == 2
    assert len(seen) == len(set(seen)) == 4
    assert graph.value(view, HYDRA.previous) is not None


def test_modified_since_returns_only_what_changed(
    od_client: TestClient, act: Act, catalogue: dict[str, Any]
) -> None:
    changed = act("package_patch", id="bus-stops", version="2")["result"]["metadata_modified"]
    graph = fetch(od_client, "/catalog.ttl", modified_since=changed + "Z")
    titles = {str(o) for o in graph.objects(None, DCT.title)}
    assert "Bus stops" in titles and "Air quality" not in titles
    assert_conforms(graph)
    bad = od_client.get("/catalog.ttl", params={"modified_since": "yesterday"})
    assert bad.status_code == 409 and "modified_since" in bad.text


@pytest.mark.parametrize(
    ("accept", "fmt", "media_type"),
    [
        ("text/turtle", "ttl", "text/turtle"),
        ("application/rdf+xml", "rdf", "application/rdf+xml"),
        ("application/ld+json", "jsonld", "application/ld+json"),
        ("text/html;q=0.4, application/ld+json;q=0.5, */*;q=0.1", "jsonld", "application/ld+json"),
    ],
)
def test_the_dataset_page_negotiates_rdf(
    od_client: TestClient, catalogue: dict[str, Any], accept: str, fmt: str, media_type: str
) -> None:
    response = od_client.get("/dataset/car-park-vacancy", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert "Accept" in response.headers["vary"]
    graph = Graph().parse(data=response.content, format=PARSERS[fmt])
    assert (None, RDF.type, DCAT.Dataset) in graph
    catalog = od_client.get("/catalog", headers={"Accept": accept})
    assert catalog.headers["content-type"].startswith(media_type)


def test_negotiation_refuses_what_it_cannot_give() -> None:
    assert negotiate("text/html") is None
    assert negotiate(None) == "ttl"
    assert negotiate("application/rdf+xml;q=0.2, text/turtle;q=0.8") == "ttl"
    assert negotiate("application/ld+json;q=0") is None


def test_schema_org_markup_reads_as_a_dataset(
    od_client: TestClient, act: Act, catalogue: dict[str, Any]
) -> None:
    package = act("package_show", id="air-quality")["result"]
    markup = schema_org_dataset(package, "http://testserver", "en")
    graph = Graph().parse(data=json.dumps(markup), format="json-ld")
    node = URIRef(f"http://testserver/dataset/{package['id']}")
    assert (node, RDF.type, SDO.Dataset) in graph
    assert graph.value(node, SDO.name) == Literal("Air quality", lang="en")
    assert Literal("空氣質素", lang="zh-Hant") in set(graph.objects(node, SDO.alternateName))
    assert str(graph.value(node, SDO.url)) == "http://testserver/dataset/air-quality"
    download = graph.value(node, SDO.distribution)
    assert str(graph.value(download, SDO.contentUrl)) == "https://example.org/aq.json"
    place = graph.value(node, SDO.spatialCoverage)
    assert place is not None and (place, RDF.type, SDO.Place) in graph
    assert graph.value(node, SDO.temporalCoverage) == Literal(
        "2020-01-01/2024-12-31T23:59:59", lang="en"
    )


def test_a_client_wanting_html_gets_the_page_and_one_wanting_neither_is_told(
    od_client: TestClient, catalogue: dict[str, Any]
) -> None:
    for accept in ("text/html", "text/html;q=0.9, application/ld+json;q=0.5, */*;q=0.1"):
        response = od_client.get(
            "/dataset/car-park-vacancy", headers={"Accept": accept}, follow_redirects=False
        )
        assert response.status_code == 303, accept
        assert response.headers["location"] == "/en/dataset/car-park-vacancy"
    response = od_client.get("/dataset/car-park-vacancy", headers={"Accept": "image/png"})
    assert response.status_code == 406
    assert response.json()["error"]["__type"] == "Not Acceptable"
    assert "text/turtle" in response.json()["error"]["message"]
    assert od_client.get("/dataset/nothing-here.ttl").status_code == 404


def test_the_site_apis_are_data_services(od_client: TestClient, act: Act) -> None:
    """The catalogue lists its APIs as dcat:DataService; a distribution with a DataStore
    table, or a hub query, names the service it is also reached through."""
    act("organization_create", name="td", title="TD")
    act("package_create", name="spaces", owner_org="td", title="Spaces",
        resources=[{"url": "/ngsi-ld/v1/entities?type=CarPark", "name": "Now",
                    "kind": "hub-query"}])  # fmt: skip
    table = act("datastore_create", resource={"package_id": "spaces", "name": "Table"},
                fields=[{"id": "n", "type": "int"}], records=[{"n": 1}])["result"]  # fmt: skip
    graph = Graph().parse(data=od_client.get("/catalog.ttl").content, format="turtle")
    base = "http://testserver"
    services = set(graph.subjects(RDF.type, DCAT.DataService))
    assert services == {
        URIRef(base + "/api/3/action/"),
        URIRef(base + "/api/3/action/datastore_search"),
        URIRef(base + "/ngsi-ld/v1/"),
    }
    catalog = URIRef(base + "/catalog")
    assert set(graph.objects(catalog, DCAT.service)) == services
    for service in services:
        assert graph.value(service, DCAT.endpointURL) is not None
        assert graph.value(service, DCT.title) is not None
    dataset = graph.value(predicate=DCT.title, object=Literal("Spaces", lang="en"))
    assert dataset is not None
    distribution = URIRef(f"{dataset}/resource/{table['resource_id']}")
    assert graph.value(distribution, DCAT.accessService) == URIRef(
        base + "/api/3/action/datastore_search"
    )
    assert (URIRef(base + "/ngsi-ld/v1/"), DCAT.servesDataset, dataset) in graph
    assert_conforms(graph)
