"""Live city datasets: a hub entity type published in one call (or one command) whose CSV,
GeoJSON and daily history files are generated on request from the hub, so they follow it; the
Hong Kong feeds' DATA.GOV.HK provenance; the portal's measures, KPIs and public comments (no
personal data) as datasets. Both backends."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rdflib import Graph, Namespace
from rdflib.namespace import RDF, RDFS
from sqlalchemy import insert
from tests.city_context import city_link
from tests.opendata.helpers import Act, open_settings, trilingual
from tests.opendata.test_dcat import assert_conforms
from typer.testing import CliRunner

from smartcity.app import create_app
from smartcity.cli.main import app as cli
from smartcity.opendata.citydata.exports import HKT
from smartcity.portal.feedback.tables import comments
from smartcity.storage.engine import Database

DCT = Namespace("http://purl.org/dc/terms/")
PROV = Namespace("http://www.w3.org/ns/prov#")
NGSI = "/ngsi-ld/v1"


def car_park(n: int, spots: int, name: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:OffStreetParking:{n}",
        "type": "OffStreetParking",
        "name": {"type": "LanguageProperty", "languageMap": {"en": name or f"Car park {n}"}},
        "availableSpotNumber": {"type": "Property", "value": spots},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [114.1, 22.3]},
        },
        **extra,
    }


class City:
    def __init__(self, client: TestClient, act: Act) -> None:
        self.client = client
        self.act = act

    def create(self, entity: dict[str, Any]) -> None:
        response = self.client.post(f"{NGSI}/entities", json=entity, headers=city_link())
        assert response.status_code == 201, response.text

    def set_spots(self, n: int, spots: int) -> None:
        response = self.client.patch(
            f"{NGSI}/entities/urn:ngsi-ld:OffStreetParking:{n}/attrs",
            json={"availableSpotNumber": {"type": "Property", "value": spots}},
            headers=city_link(),
        )
        assert response.status_code == 204, response.text

    def get(self, url: str, status: int = 200) -> Any:
        response = self.client.get(url.replace("http://testserver", ""))
        assert response.status_code == status, response.text
        return response

    def rows(self, url: str) -> list[dict[str, str]]:
        text = self.get(url).content.decode("utf-8-sig")
        return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def city(od_client: TestClient, act: Act) -> City:
    act("organization_create", name="td", title_translated=trilingual("TD", "運輸署", "运输署"))
    act("organization_create", name="itb", title="Innovation, Technology and Industry Bureau")
    act("group_create", name="city-management", title="City Management")
    return City(od_client, act)


def resource(dataset: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in dataset["resources"] if r["name"] == name)


def test_a_published_type_has_downloads_that_follow_the_hub(city: City) -> None:
    city.create(car_park(1, 10, name='=HYPERLINK("http://evil")'))
    city.create(car_park(2, 20))
    # One call publishes it; the organisation is the Transport Department's (the carparks
    # connector's), as no owner_org is given.
    dataset = city.act("live_dataset_publish", type="OffStreetParking")["result"]
    assert dataset["name"] == "live-off-street-parking"
    assert dataset["organization"]["name"] == "td"
    assert {r["kind"] for r in dataset["resources"]} == {"hub-query", "live"}
    fields = {f["name"]: f for f in dataset["data_dictionary"]}
    assert fields["availableSpotNumber"]["type"] == "text"
    assert fields["location"]["type"] == "geojson"

    csv_url = resource(dataset, "Current state (CSV)")["url"]
    rows = {r["id"]: r for r in city.rows(csv_url)}
    assert rows["urn:ngsi-ld:OffStreetParking:2"]["availableSpotNumber"] == "20"
    # A spreadsheet would run this as a formula: it is neutralised.
    assert rows["urn:ngsi-ld:OffStreetParking:1"]["name/en"] == '\'=HYPERLINK("http://evil")'
    assert rows["urn:ngsi-ld:OffStreetParking:2"]["name/en"] == "Car park 2"

    city.set_spots(2, 3)
    city.create(car_park(3, 30))
    rows = {r["id"]: r for r in city.rows(csv_url)}
    assert rows["urn:ngsi-ld:OffStreetParking:2"]["availableSpotNumber"] == "3"
    assert "urn:ngsi-ld:OffStreetParking:3" in rows

    geojson = city.get(resource(dataset, "Current state (GeoJSON)")["url"]).json()
    features = {f["id"]: f for f in geojson["features"]}
    assert features["urn:ngsi-ld:OffStreetParking:2"]["properties"]["availableSpotNumber"] == 3
    assert features["urn:ngsi-ld:OffStreetParking:3"]["geometry"]["type"] == "Point"

    # The NGSI-LD links answer with the same entities.
    query = city.get(resource(dataset, "Current state (NGSI-LD API)")["url"]).json()
    assert len(query) == 3
    temporal = city.get(resource(dataset, "History (NGSI-LD temporal API)")["url"]).json()
    assert len(temporal) == 3


def test_publishing_again_updates_in_place(city: City) -> None:
    city.create(car_park(1, 10))
    first = city.act("live_dataset_publish", type="OffStreetParking", owner_org="td")["result"]
    added = city.act(
        "resource_create", package_id=first["id"], url="https://example.org/notes.pdf", name="Notes"
    )["result"]
    again = city.act("live_dataset_publish", type="OffStreetParking")["result"]
    assert again["id"] == first["id"]
    assert [r["id"] for r in again["resources"][:5]] == [r["id"] for r in first["resources"]]
    assert added["id"] in {r["id"] for r in again["resources"]}  # an editor's own resource stays
    names = city.act("package_list")["result"]
    assert names.count("live-off-street-parking") == 1


def test_the_history_is_one_csv_file_per_day(city: City) -> None:
    city.create(car_park(1, 10))
    city.set_spots(1, 7)
    dataset = city.act("live_dataset_publish", type="OffStreetParking")["result"]
    index = city.get(resource(dataset, "History, one CSV file per day (index)")["url"]).json()
    today = dt.datetime.now(HKT).date()
    assert index["days"][0]["date"] == today.isoformat()
    rows = city.rows(index["days"][0]["url"])
    spots = [r["value"] for r in rows if r["attribute"] == "availableSpotNumber"]
    assert spots == ["10", "7"]
    assert {r["entityId"] for r in rows} == {"urn:ngsi-ld:OffStreetParking:1"}
    assert city.rows(index["days"][1]["url"]) == []  # yesterday: nothing recorded
    base = index["days"][0]["url"].rsplit("/", 1)[0]
    tomorrow = today + dt.timedelta(days=1)
    assert "has not happened" in city.get(f"{base}/{tomorrow}.csv", 409).text
    assert "YYYY-MM-DD" in city.get(f"{base}/yesterday.csv", 409).text


def test_a_type_the_hub_does_not_hold_is_refused_saying_what_it_holds(city: City) -> None:
    city.create(car_park(1, 10))
    error = city.act("live_dataset_publish", 409, type="Spaceship", owner_org="td")["error"]
    assert "no entities of type 'Spaceship'" in error["type"][0]
    assert "OffStreetParking" in error["type"][0]
    # A type no connector fills needs an organisation.
    city.create({"id": "urn:ngsi-ld:Bench:1", "type": "Bench"})
    error = city.act("live_dataset_publish", 409, type="Bench")["error"]
    assert "owner_org" in error
    # Only live datasets have live files.
    city.act("package_create", name="plain", owner_org="td", title="Plain")
    assert "not a live city dataset" in city.get("/dataset/plain/live/current.csv", 404).text


def test_connector_data_carries_its_data_gov_hk_provenance(city: City) -> None:
    city.create(car_park(1, 10))
    dataset = city.act("live_dataset_publish", type="OffStreetParking")["result"]
    extras = {e["key"]: e["value"] for e in dataset["extras"]}
    assert extras["source"] == "DATA.GOV.HK"
    assert "Transport Department" in extras["provenance"]
    assert "https://resource.data.one.gov.hk/td/carpark/vacancy_all.json" in extras["source_url"]
    graph = Graph().parse(data=city.get("/dataset/live-off-street-parking.ttl").content)
    statement = next(graph.objects(None, DCT.provenance))
    assert (statement, RDF.type, DCT.ProvenanceStatement) in graph
    assert "Collected from DATA.GOV.HK" in str(graph.value(statement, RDFS.label))
    assert_conforms(graph)  # DCAT-AP 3 with the live resources and the provenance
    sources = {str(o) for o in graph.objects(None, PROV.wasDerivedFrom)}
    assert "https://api.data.gov.hk/v1/carpark-info-vacancy" in sources


@pytest.fixture
def with_auth(db: Database, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(open_settings(db, tmp_path, auth=True))
    with TestClient(app) as client:
        yield client


def test_a_private_live_dataset_keeps_its_files_private(city: City, with_auth: TestClient) -> None:
    city.create(car_park(1, 10))
    city.act("live_dataset_publish", type="OffStreetParking", private=True)
    for path in ("current.csv", "current.geojson", "history", f"history/{dt.date.today()}.csv"):
        response = with_auth.get(f"/dataset/live-off-street-parking/live/{path}")
        assert response.status_code == 404, path
    # Publishing needs a writer: an anonymous call is refused before anything is looked up.
    response = with_auth.post(
        "/api/3/action/live_dataset_publish", json={"type": "OffStreetParking"}
    )
    assert response.status_code == 403


def _comment(db: Database, **values: Any) -> None:
    now = int(dt.datetime.now(dt.UTC).timestamp() * 1_000_000)
    row = {
        "target_kind": "measure",
        "target_id": "mobility-01",
        "depth": 0,
        "stance": "support",
        "language": "en",
        "status": "published",
        "official": False,
        "vote_count": 2,
        "created_at": now,
        "modified_at": now,
        **values,
    }
    with db.write() as conn:
        conn.execute(insert(comments).values(**row))


def test_the_portals_measures_kpis_and_comments_are_datasets(city: City, db: Database) -> None:
    _comment(db, name="Chan Tai Man", email="chan@example.org", text="More bus lanes please",
             author_digest="d" * 64, author_person="p" * 64)  # fmt: skip
    _comment(db, name="Hidden Person", email="h@example.org", text="spam", status="hidden")
    published = {}
    for which in ("measures", "kpis", "comments"):
        dataset = city.act("portal_dataset_publish", dataset=which, owner_org="itb")["result"]
        assert dataset["groups"][0]["name"] == "city-management"
        for res in dataset["resources"]:
            assert res["kind"] == "live"
            city.get(res["url"])  # each export answers, generated now
        published[which] = dataset
    assert published["measures"]["name"] == "blueprint-measures"
    measures_csv = resource(published["measures"], "Measures (CSV)")["url"]
    header = city.get(measures_csv).content.decode("utf-8-sig").splitlines()[0].split(",")
    assert "progress" in header and "rolled_up_progress" in header
    comments_csv = resource(published["comments"], "Published comments (CSV)")["url"]
    text = city.get(comments_csv).content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["text"] for r in rows] == ["More bus lanes please"]
    assert rows[0]["target"] == "measure:mobility-01"
    for personal in ("Chan Tai Man", "chan@example.org", "d" * 64, "p" * 64, "Hidden"):
        assert personal not in text
    as_json = city.get(resource(published["comments"], "Published comments (JSON)")["url"]).text
    assert "More bus lanes" in as_json and "Chan" not in as_json and "@example.org" not in as_json
    # A new comment shows at once: nothing was copied.
    _comment(db, name="Wong", text="And cycle tracks")
    assert "And cycle tracks" in city.get(comments_csv).text


def test_the_command_publishes_a_type(city: City, db: Database) -> None:
    city.create(car_park(1, 10))
    runner = CliRunner()
    result = runner.invoke(
        cli, ["opendata", "publish-type", "OffStreetParking", "--org", "td", "--database", db.url]
    )
    assert result.exit_code == 0, result.output
    assert "live-off-street-parking" in result.output
    shown = city.act("package_show", id="live-off-street-parking")["result"]
    assert len(city.rows(resource(shown, "Current state (CSV)")["url"])) == 1
    result = runner.invoke(cli, ["opendata", "publish-type", "Nothing", "--database", db.url])
    assert result.exit_code == 1 and "no entities of type" in result.output
