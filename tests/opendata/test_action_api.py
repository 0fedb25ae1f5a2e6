"""The CKAN Action API in process: envelope, errors, the catalogue's CRUD and the
per-language paths, on both backends."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.opendata.helpers import Act, make_act, trilingual

from smartcity.opendata.catalogue import tables as t
from smartcity.storage.engine import Database


def test_envelope_on_every_path(od_client: TestClient, transport: dict[str, Any]) -> None:
    for path in (
        "/api/3/action/package_show",
        "/api/action/package_show",
        "/en-data/api/3/action/package_show",
        "/tc-data/api/3/action/package_show",
        "/sc-data/api/3/action/package_show",
    ):
        response = od_client.get(path, params={"id": "car-park-vacancy"})
        assert response.status_code == 200, path
        body = response.json()
        assert set(body) == {"help", "success", "result"}
        assert body["success"] is True
        assert body["help"].endswith("/api/3/action/help_show?name=package_show")
        assert body["result"]["id"] == transport["id"]


def test_each_language_path_answers_in_its_language(
    od_client: TestClient, transport: dict[str, Any]
) -> None:
    titles = {}
    for prefix in ("en", "tc", "sc"):
        r = od_client.get(f"/{prefix}-data/api/3/action/package_show?id=car-park-vacancy")
        result = r.json()["result"]
        titles[prefix] = (
            result["title"],
            result["organization"]["title"],
            result["groups"][0]["title"],
        )
        assert result["title_translated"] == transport["title_translated"]
    assert titles == {
        "en": ("Car park vacancy", "Transport Department", "Transport"),
        "tc": ("停車場空置車位", "運輸署", "運輸"),
        "sc": ("停车场空置车位", "运输署", "运输"),
    }
    # A plain CKAN path answers in English.
    plain = od_client.get("/api/3/action/package_show?id=car-park-vacancy").json()["result"]
    assert plain["title"] == "Car park vacancy"


def test_errors_have_ckans_types_and_status(od_client: TestClient, act: Act) -> None:
    missing = act("package_show", 404, id="no-such-dataset")
    assert missing["error"]["__type"] == "Not Found Error"
    assert "no-such-dataset" in missing["error"]["message"]

    act("organization_create", name="td", title="Transport Department")
    invalid = act("package_create", 409, name="Not A Slug!", owner_org="td")
    assert invalid["error"]["__type"] == "Validation Error"
    assert "lowercase" in invalid["error"]["name"][0]

    no_org = act("package_create", 409, name="fine-name", owner_org="nowhere")
    assert no_org["error"]["owner_org"] == ["Organization 'nowhere' does not exist"]

    act("package_create", name="taken", owner_org="td")
    clash = act("package_create", 409, name="taken", owner_org="td")
    assert clash["error"]["name"] == ["That URL is already in use."]

    unknown = od_client.get("/api/3/action/no_such_action")
    assert unknown.status_code == 400
    assert "Action name not known: no_such_action" in unknown.json()["error"]["message"]

    # A write over GET is refused in the envelope, never redirected.
    write = od_client.get("/api/3/action/package_create?name=x", follow_redirects=False)
    assert write.status_code == 400 and write.json()["success"] is False

    not_json = od_client.post(
        "/api/3/action/package_show", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400 and "JSON" in not_json.json()["error"]["message"]
    not_object = od_client.post("/api/3/action/package_show", json=[1, 2])
    assert not_object.status_code == 400


def test_unknown_parameters_are_ignored_and_slashes_never_redirect(
    od_client: TestClient, transport: dict[str, Any]
) -> None:
    r = od_client.get(
        "/api/3/action/package_show/",
        params={"id": "car-park-vacancy", "use_default_schema": "true", "whatever": "1"},
        follow_redirects=False,
    )
    assert r.status_code == 200 and r.json()["result"]["name"] == "car-park-vacancy"


def test_package_lifecycle(act: Act, transport: dict[str, Any], db: Database) -> None:
    pkg = act("package_show", id="car-park-vacancy")["result"]
    assert pkg["organization"]["name"] == "td"
    assert [g["name"] for g in pkg["groups"]] == ["transport"]
    assert sorted(t["name"] for t in pkg["tags"]) == ["parking", "transport"]
    assert pkg["license_title"] == "DATA.GOV.HK Terms and Conditions of Use"
    assert pkg["resources"][0]["format"] == "CSV"  # guessed from the URL
    assert pkg["num_resources"] == 1 and pkg["state"] == "active"

    # package_show's dict goes back into package_update unchanged, with one edit.
    pkg["notes"] = "Vacancy of car parks"
    pkg["version"] = "2.0"
    updated = act("package_update", **pkg)["result"]
    assert updated["notes"] == "Vacancy of car parks" and updated["version"] == "2.0"
    assert updated["title_translated"] == pkg["title_translated"]  # other languages kept
    assert [r["id"] for r in updated["resources"]] == [r["id"] for r in pkg["resources"]]

    patched = act("package_patch", id=pkg["id"], groups=[{"name": "environment"}])["result"]
    assert [g["name"] for g in patched["groups"]] == ["environment"]
    assert patched["notes"] == "Vacancy of car parks"  # untouched

    act("package_delete", id="car-park-vacancy")
    # Deleted: gone from lists and search; a sysadmin still sees it as deleted.
    assert act("package_list")["result"] == []
    assert act("package_search", q="parking")["result"]["count"] == 0
    assert act("package_show", id="car-park-vacancy")["result"]["state"] == "deleted"
    assert act("package_create", 409, name="car-park-vacancy", owner_org="td")

    # The audit trail holds every change, with who made it.
    with db.read() as conn:
        actions = conn.execute(
            select(t.activity.c.action, t.activity.c.actor)
            .where(t.activity.c.dataset_id == pkg["id"])
            .order_by(t.activity.c.id)
        ).all()
    assert [a for a, _ in actions] == [
        "package_create",
        "package_update",
        "package_patch",
        "package_delete",
    ]
    assert all(actor == "anonymous (--no-auth)" for _, actor in actions)


def test_dataset_metadata_round_trips(act: Act) -> None:
    act("organization_create", name="epd", title="EPD")
    sent = {
        "name": "air-quality",
        "owner_org": "epd",
        "title_translated": trilingual("Air quality", "空氣質素", "空气质素"),
        "notes_translated": trilingual(
            "Hourly AQHI", "每小時空氣質素健康指數", "每小时空气质素健康指数"
        ),
        "frequency": "hourly",
        "temporal_start": "2020-01-01",
        "temporal_end": "2024-12-31",
        "spatial": {"type": "Point", "coordinates": [114.17, 22.3]},
        "spatial_label_translated": trilingual("Hong Kong", "香港", "香港"),
        "maintainer": "EPD Data Office",
        "maintainer_email": "data@epd.example",
        "version": "1.3",
        "data_dictionary": [
            {
                "name": "aqhi",
                "type": "int",
                "unit": "index",
                "description_translated": trilingual(
                    "The AQHI", "空氣質素健康指數", "空气质素健康指数"
                ),
            }
        ],
        "extras": [{"key": "source", "value": "EPD"}],
        "private": False,
    }
    got = act("package_create", **sent)["result"]
    for key in (
        "title_translated",
        "notes_translated",
        "frequency",
        "temporal_start",
        "temporal_end",
        "spatial",
        "spatial_label_translated",
        "maintainer",
        "maintainer_email",
        "version",
        "extras",
    ):
        assert got[key] == sent[key], key
    field = got["data_dictionary"][0]
    assert (field["name"], field["type"], field["unit"]) == ("aqhi", "int", "index")
    assert field["description_translated"] == sent["data_dictionary"][0]["description_translated"]

    bad = act(
        "package_create",
        409,
        name="bad",
        owner_org="epd",
        frequency="sometimes",
        temporal_start="last year",
        spatial={"type": "Point"},
    )
    assert {"frequency", "temporal_start", "spatial"} <= set(bad["error"])


def test_resource_crud(act: Act, transport: dict[str, Any]) -> None:
    created = act(
        "resource_create",
        package_id="car-park-vacancy",
        url="/ngsi-ld/v1/entities?type=CarPark",
        kind="hub-query",
        name_translated=trilingual("Live car parks", "實時停車場", "实时停车场"),
    )["result"]
    assert created["kind"] == "hub-query"
    assert created["url"] == "http://testserver/ngsi-ld/v1/entities?type=CarPark"
    assert act("resource_show", id=created["id"])["result"]["name"] == "Live car parks"

    patched = act("resource_patch", id=created["id"], format="JSON-LD")["result"]
    assert patched["format"] == "JSON-LD" and patched["name"] == "Live car parks"
    updated = act("resource_update", id=created["id"], name="Car parks now")["result"]
    assert updated["name_translated"]["en"] == "Car parks now"
    assert updated["name_translated"]["zh-Hant"] == "實時停車場"

    bad = act("resource_create", 409, package_id="car-park-vacancy", url="javascript:alert(1)")
    assert bad["error"]["url"]
    act("resource_create", 409, package_id="car-park-vacancy", kind="hub-query", url="/etc/passwd")

    found = act("resource_search", query=["name:實時", "format:json"])["result"]
    assert [r["id"] for r in found["results"]] == [created["id"]]

    act("resource_delete", id=created["id"])
    act("resource_show", 404, id=created["id"])
    assert act("package_show", id="car-park-vacancy")["result"]["num_resources"] == 1


def test_organizations_groups_tags_licences(act: Act, transport: dict[str, Any]) -> None:
    assert act("organization_list")["result"] == ["epd", "td"]
    full = act("organization_list", all_fields=True, sort="package_count desc")["result"]
    assert [(o["name"], o["package_count"]) for o in full] == [("td", 1), ("epd", 0)]
    td = act("organization_show", id="td", include_datasets=True)["result"]
    assert td["package_count"] == 1 and td["packages"][0]["name"] == "car-park-vacancy"
    assert act("group_list")["result"] == ["environment", "transport"]
    assert act("group_show", id="transport")["result"]["package_count"] == 1

    act("organization_patch", id="td", description="Roads and transport")
    assert act("organization_show", id="td")["result"]["description"] == "Roads and transport"
    act("group_update", id="environment", name="environment", title="Environment & Climate")
    assert act("group_show", id="environment")["result"]["title"] == "Environment & Climate"

    refused = act("organization_delete", 409, id="td")  # it still has a dataset
    assert "dataset" in refused["error"]["id"][0]
    act("organization_delete", id="epd")
    assert act("organization_list")["result"] == ["td"]
    act("group_delete", id="transport")
    assert act("package_show", id="car-park-vacancy")["result"]["groups"] == []

    assert act("tag_list")["result"] == ["parking", "transport"]
    assert act("tag_list", query="park")["result"] == ["parking"]
    tag = act("tag_show", id="parking", include_datasets=True)["result"]
    assert [p["name"] for p in tag["packages"]] == ["car-park-vacancy"]
    licences = {lic["id"] for lic in act("license_list")["result"]}
    assert {"datagovhk-terms", "cc-by", "cc-zero"} <= licences
    assert ":param facet.field:" in act("help_show", name="package_search")["result"]
    assert act("status_show")["result"]["ckan_version"].startswith("2.")
    assert act("site_read")["result"] is True


def test_lists_and_paging_without_a_1000_row_cap(act: Act) -> None:
    act("organization_create", name="td", title="TD")
    for n in range(25):
        act("package_create", name=f"dataset-{n:02d}", owner_org="td", title=f"Dataset {n}")
    assert len(act("package_list")["result"]) == 25
    assert act("package_list", limit=5, offset=20)["result"] == [
        f"dataset-{n:02d}" for n in range(20, 25)
    ]
    # More than CKAN's 1000 rows per page is accepted, and pages tile the results exactly.
    everything = act("package_search", rows=5000, sort="name asc")["result"]
    assert everything["count"] == 25 and len(everything["results"]) == 25
    pages = [
        act("package_search", rows=7, start=s, sort="name asc")["result"]["results"]
        for s in range(0, 25, 7)
    ]
    assert [p["name"] for page in pages for p in page] == [p["name"] for p in everything["results"]]
    too_many = act("package_search", 409, rows=10_001)
    assert too_many["error"]["rows"] == ["must be at most 10000"]
    recent = act("current_package_list_with_resources", limit=3)["result"]
    assert [p["name"] for p in recent] == ["dataset-24", "dataset-23", "dataset-22"]


def test_ckan_form_posts_are_understood(od_client: TestClient, transport: dict[str, Any]) -> None:
    """Old CKAN clients post a form whose only key is the JSON document."""
    r = od_client.post(
        "/api/3/action/package_show",
        content=b'{"id": "car-park-vacancy"}=1',
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200 and r.json()["result"]["name"] == "car-park-vacancy"
    act_tc = make_act(od_client, "/tc-data")
    assert act_tc("package_show", id="car-park-vacancy")["result"]["title"] == "停車場空置車位"


def test_licences_seeded_after_a_read_are_shown_at_once(
    db: Database, od_client: TestClient, act: Act, transport: dict[str, Any]
) -> None:
    """A process keeps the licences it read (they change only when an upgrade ships more);
    seeding them in that process shows the new ones at once."""
    from sqlalchemy import delete

    dataset = act("package_create", name="noise", owner_org="td", license_id="cc-by")["result"]
    assert dataset["license_title"] != "cc-by"
    with db.write() as conn:  # a database from before cc-by shipped
        conn.execute(delete(t.licences).where(t.licences.c.id == "cc-by"))
    od_client.app.state.opendata.catalogue.licences_changed()  # type: ignore[attr-defined]
    assert act("package_show", id="noise")["result"]["license_title"] == "cc-by"  # not known
    assert od_client.app.state.opendata.organisations.seed_licences() == 1  # type: ignore[attr-defined]
    shown = act("package_show", id="noise")["result"]
    assert shown["license_title"] == dataset["license_title"]
    assert shown["isopen"] == dataset["isopen"]
