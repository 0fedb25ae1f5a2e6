"""The open data portal's editor pages (/publish...): signed-in staff create, edit and delete
their organisations' datasets and resources through forms, on both backends. The forms write
through the Action API's own service functions, so what a form saves reads back through
``package_show``; who may do what is checked on every GET and POST."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.city_context import city_link
from tests.opendata.helpers import Act, make_act, open_settings, trilingual

from smartcity.app import create_app
from smartcity.portal.users.service import UserService
from smartcity.storage.engine import Database

PASSWORD = "correct horse battery"
MAX_UPLOAD = 2048
CSV = "district,spaces\n中西區,120\nWan Chai,80\n".encode()


class Site:
    """The app (authentication on) with portal accounts whose catalogue roles differ."""

    def __init__(self, client: TestClient, root_key: str, uploads: Path) -> None:
        self.client = client
        self.root_key = root_key  # a sysadmin's API key
        self.root: Act = make_act(client, headers={"Authorization": root_key})
        self.uploads = uploads

    def sign_in(self, username: str) -> None:
        token = csrf(self.client.get("/en/login").text)
        r = self.client.post(
            "/en/login",
            data={"csrf": token, "username": username, "password": PASSWORD},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text[:500]

    def show(self, name: str) -> dict[str, Any]:
        return self.root("package_show", id=name)["result"]

    def activity(self, name: str) -> list[dict[str, Any]]:
        return self.root("package_activity_list", id=name)["result"]


@pytest.fixture
def site(db: Database, tmp_path: Path) -> Iterator[Site]:
    settings = open_settings(db, tmp_path, auth=True, max_upload_bytes=MAX_UPLOAD)
    app = create_app(settings)
    app.state.opendata.organisations.seed_licences()
    users = UserService(db)
    # Portal roles and departments grant nothing in the catalogue: td-member is a portal
    # editor of TD but only a member of the catalogue's td.
    for name, role, department in (
        ("td-editor", "editor", "TD"),
        ("epd-editor", "editor", "EPD"),
        ("td-member", "editor", "TD"),
        ("nobody", "moderator", None),
        ("root", "admin", None),
    ):
        users.create(name, PASSWORD, role, department=department)
    with TestClient(app) as client:
        keys = app.state.hub.keys
        app.state.opendata.organisations.set_sysadmin(keys.create("root")[0].name, True)
        root_key = keys.create("root")[1]
        root = make_act(client, headers={"Authorization": root_key})
        root(
            "organization_create",
            name="td",
            title_translated=trilingual("Transport Department", "運輸署", "运输署"),
        )
        root("organization_create", name="epd", title="Environmental Protection Department")
        root("group_create", name="transport", title="Transport")
        root("group_create", name="environment", title="Environment")
        for user, org, role in (
            ("td-editor", "td", "editor"),
            ("td-member", "td", "member"),
            ("epd-editor", "epd", "editor"),
        ):
            root("organization_member_create", id=org, username=user, role=role)
        root("package_create", name="air-quality", owner_org="epd", title="Air quality")
        yield Site(client, root_key, tmp_path / "opendata" / "uploads")


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


DATASET_FORM = {
    "owner_org": "td",
    "name": "journey-times",
    "title_en": "Journey times",
    "title_zh-Hant": "行車時間",
    "title_zh-Hans": "行车时间",
    "notes_en": "Journey times on major roads.",
    "notes_zh-Hant": "主要道路的行車時間。",
    "notes_zh-Hans": "主要道路的行车时间。",
    "groups": ["transport", "environment"],
    "tag_string": "traffic, roads",
    "license_id": "cc-by",
    "frequency": "daily",
    "temporal_start": "2024-01-01",
    "temporal_end": "2024-12-31",
    "visibility": "private",
    "publication": "draft",
    "url": "https://www.td.gov.hk/",
    "version": "1.0",
    "author": "Traffic Unit",
    "author_email": "traffic@example.org",
    "maintainer": "Chan Tai Man",
    "maintainer_email": "chan@example.org",
}


def post_form(client: TestClient, url: str, form: dict[str, Any]) -> httpx.Response:
    token = csrf(client.get(url).text)
    return client.post(url, data={"csrf": token, **form}, follow_redirects=False)


def test_an_editor_creates_a_dataset_that_reads_back_with_every_field(site: Site) -> None:
    site.sign_in("td-editor")
    page = site.client.get("/en/publish")
    assert page.status_code == 200
    assert "Transport Department" in page.text and "Environmental Protection" not in page.text
    form = site.client.get("/en/publish/new?organization=td")
    assert form.status_code == 200
    # Only the organisations the editor may publish in are offered.
    assert '<option value="td" selected>' in form.text and 'value="epd"' not in form.text

    created = post_form(site.client, "/en/publish/new", DATASET_FORM)
    assert created.status_code == 303, created.text[:3000]
    assert created.headers["location"] == "/en/publish/dataset/journey-times#publish-message"
    landed = site.client.get(created.headers["location"])
    assert "The dataset was created" in landed.text

    p = site.show("journey-times")
    assert p["organization"]["name"] == "td"
    assert p["title_translated"] == trilingual("Journey times", "行車時間", "行车时间")
    assert p["notes_translated"] == trilingual(
        "Journey times on major roads.", "主要道路的行車時間。", "主要道路的行车时间。"
    )
    assert sorted(g["name"] for g in p["groups"]) == ["environment", "transport"]
    assert sorted(t["name"] for t in p["tags"]) == ["roads", "traffic"]
    assert p["license_id"] == "cc-by" and p["frequency"] == "daily"
    assert p["temporal_start"].startswith("2024-01-01")
    assert p["temporal_end"].startswith("2024-12-31")
    assert p["private"] is True and p["state"] == "draft"
    assert p["url"] == "https://www.td.gov.hk/" and p["version"] == "1.0"
    assert (p["author"], p["author_email"]) == ("Traffic Unit", "traffic@example.org")
    assert (p["maintainer"], p["maintainer_email"]) == ("Chan Tai Man", "chan@example.org")
    # The private draft is on the editor's publish page, and its page is the editors' alone
    # (test_site_restricted.py).
    assert "Journey times" in site.client.get("/en/publish").text
    assert "Draft: only" in site.client.get("/en/dataset/journey-times").text
    # The audit trail names the signed-in user.
    assert site.activity("journey-times")[0]["user_id"] == "td-editor (site)"
    assert p["creator_user_id"] == "td-editor"


def test_chinese_pages_and_text_round_trip(site: Site) -> None:
    site.sign_in("td-editor")
    form = {**DATASET_FORM, "name": "tc-dataset", "visibility": "public", "publication": "active"}
    created = post_form(site.client, "/tc/publish/new", form)
    assert created.status_code == 303
    page = site.client.get(created.headers["location"])
    assert "已建立" in page.text  # the confirmation, in Traditional Chinese
    assert 'value="行車時間"' in page.text and "主要道路的行車時間。" in page.text
    public = site.client.get("/sc/dataset/tc-dataset")
    assert "行车时间" in public.text
    assert site.show("tc-dataset")["title_translated"]["zh-Hant"] == "行車時間"


def test_editing_keeps_what_the_form_does_not_show(site: Site) -> None:
    site.root(
        "package_create",
        name="vacancy",
        owner_org="td",
        title_translated=trilingual("Vacancy", "空置", "空置"),
        tags=[{"name": "parking"}, {"name": "old"}],
        spatial={"type": "Point", "coordinates": [114.17, 22.3]},
        data_dictionary=[{"name": "spaces", "type": "int"}],
        resources=[{"url": "https://example.org/v.csv", "name": "Vacancy (CSV)"}],
    )
    site.sign_in("td-editor")
    page = site.client.get("/en/publish/dataset/vacancy")
    assert page.status_code == 200 and re.search(r'value="(parking, old|old, parking)"', page.text)
    form = {
        "owner_org": "td",
        "name": "car-park-vacancy",  # renamed
        "title_en": "Car park vacancy",
        "title_zh-Hant": "停車場空置車位",
        "title_zh-Hans": "",  # cleared
        "tag_string": "parking",  # "old" removed
        "visibility": "public",
        "publication": "active",
    }
    saved = post_form(site.client, "/en/publish/dataset/vacancy", form)
    assert saved.status_code == 303, saved.text[:3000]
    assert saved.headers["location"].startswith("/en/publish/dataset/car-park-vacancy")
    assert "Your changes were saved" in site.client.get(saved.headers["location"]).text
    p = site.show("car-park-vacancy")
    assert p["title_translated"] == {"en": "Car park vacancy", "zh-Hant": "停車場空置車位",
                                     "zh-Hans": ""}  # fmt: skip
    assert [t["name"] for t in p["tags"]] == ["parking"]
    assert p["spatial"]["type"] == "Point" and p["data_dictionary"][0]["name"] == "spaces"
    assert [r["name"] for r in p["resources"]] == ["Vacancy (CSV)"]
    assert site.activity("car-park-vacancy")[0]["user_id"] == "td-editor (site)"
    # The public page offers the editor a link back to the form.
    public = site.client.get("/en/dataset/car-park-vacancy").text
    assert 'href="/en/publish/dataset/car-park-vacancy">Edit this dataset' in public


def test_a_bad_name_keeps_the_input_and_says_what_is_wrong(site: Site) -> None:
    site.sign_in("td-editor")
    form = {**DATASET_FORM, "name": "Journey Times!"}
    sent = post_form(site.client, "/en/publish/new", form)
    assert sent.status_code == 400
    html = sent.text
    assert "There is a problem" in html
    assert 'id="ds-name-error"' in html and "lowercase letters a to z" in html
    assert 'aria-describedby="ds-name-hint ds-name-error" aria-invalid="true"' in html
    assert 'value="Journey Times!"' in html and 'value="行車時間"' in html
    assert "主要道路的行車時間。" in html
    assert 'value="environment" checked' in html and 'value="private" checked' in html
    assert site.root("package_list")["result"] == ["air-quality"]
    # A name already taken: the same message as the API's, next to the field, in Chinese.
    taken = post_form(site.client, "/tc/publish/new", {**DATASET_FORM, "name": "air-quality"})
    assert taken.status_code == 400 and "已被使用" in taken.text


def test_delete_asks_then_deletes(site: Site) -> None:
    site.root("package_create", name="old-data", owner_org="td", title="Old data")
    site.sign_in("td-editor")
    ask = site.client.get("/en/publish/dataset/old-data/delete")
    assert ask.status_code == 200 and "Delete the dataset “Old data”?" in ask.text
    done = post_form(site.client, "/en/publish/dataset/old-data/delete", {})
    assert done.status_code == 303 and done.headers["location"].startswith("/en/publish")
    assert "“Old data” was deleted." in site.client.get(done.headers["location"]).text
    assert site.show("old-data")["state"] == "deleted"  # a sysadmin could restore it
    assert site.client.get("/en/dataset/old-data").status_code == 404


def test_resources_link_and_upload(site: Site) -> None:
    site.root("package_create", name="car-parks", owner_org="td", title="Car parks")
    site.sign_in("td-editor")
    new = "/en/publish/dataset/car-parks/resource/new"
    link = post_form(
        site.client,
        new,
        {"url": "https://example.org/parks.json", "name_en": "Parks", "name_zh-Hant": "停車場"},
    )
    assert link.status_code == 303, link.text[:2000]
    token = csrf(site.client.get(new).text)
    sent = site.client.post(
        new,
        data={"csrf": token, "name_en": "Spaces", "description_zh-Hans": "车位"},
        files={"upload": ("spaces.csv", CSV, "text/csv")},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text[:2000]
    resources = site.show("car-parks")["resources"]
    assert [r["name"] for r in resources] == ["Parks", "Spaces"]
    assert resources[0]["url"] == "https://example.org/parks.json"
    assert resources[0]["name_translated"]["zh-Hant"] == "停車場"
    uploaded = resources[1]
    assert uploaded["url_type"] == "upload" and uploaded["format"] == "CSV"
    assert uploaded["description_translated"]["zh-Hans"] == "车位"
    assert site.client.get(uploaded["url"].removeprefix("http://testserver")).content == CSV
    assert site.activity("car-parks")[0]["user_id"] == "td-editor (site)"

    # Edit: a new name, the file kept (no file chosen); then delete the link.
    edit = f"/en/publish/dataset/car-parks/resource/{uploaded['id']}"
    token = csrf(site.client.get(edit).text)
    saved = site.client.post(
        edit,
        data={"csrf": token, "name_en": "Spaces by district"},
        files={"upload": ("", b"", "application/octet-stream")},  # what a browser sends
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text[:2000]
    after = site.show("car-parks")["resources"][1]
    assert after["name"] == "Spaces by district" and after["url_type"] == "upload"
    gone = post_form(
        site.client, f"/en/publish/dataset/car-parks/resource/{resources[0]['id']}/delete", {}
    )
    assert gone.status_code == 303
    assert [r["name"] for r in site.show("car-parks")["resources"]] == ["Spaces by district"]


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        ("big.csv", b"a,b\n" + b"1,2\n" * MAX_UPLOAD, "larger than the largest upload"),
        ("fake.csv", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "does not match its extension"),
    ],
)
def test_a_refused_upload_writes_nothing(
    site: Site, filename: str, content: bytes, message: str
) -> None:
    site.root("package_create", name="car-parks", owner_org="td", title="Car parks")
    site.sign_in("td-editor")
    new = "/en/publish/dataset/car-parks/resource/new"
    token = csrf(site.client.get(new).text)
    sent = site.client.post(
        new,
        data={"csrf": token, "name_en": "Spaces"},
        files={"upload": (filename, content, "text/csv")},
    )
    assert sent.status_code == 400
    assert 'id="res-upload-error"' in sent.text and message in sent.text
    assert 'value="Spaces"' in sent.text
    assert site.show("car-parks")["resources"] == []
    # Nothing kept: neither a resource's file nor the staged copy (.upload-*) of the refused one.
    kept = [p for p in site.uploads.rglob("*") if p.is_file()] if site.uploads.exists() else []
    assert kept == []


def test_another_organisations_dataset_is_refused_on_get_and_post(site: Site) -> None:
    site.sign_in("td-editor")
    for path in (
        "/en/publish/dataset/air-quality",
        "/en/publish/dataset/air-quality/delete",
        "/en/publish/dataset/air-quality/resource/new",
    ):
        page = site.client.get(path)
        assert page.status_code == 403, path
        assert "Environmental Protection Department" in page.text
        token = csrf(site.client.get("/en/publish").text)
        grab = {"csrf": token, "name": "air-quality", "owner_org": "td", "title_en": "Mine"}
        posted = site.client.post(path, data=grab)
        assert posted.status_code == 403, path
    p = site.show("air-quality")
    assert p["title"] == "Air quality" and p["organization"]["name"] == "epd"
    assert p["state"] == "active" and p["resources"] == []
    # Nor may a TD editor create a dataset in EPD by changing the form.
    sent = post_form(site.client, "/en/publish/new", {**DATASET_FORM, "owner_org": "epd"})
    assert sent.status_code == 403 and "journey-times" not in site.root("package_list")["result"]
    # And the public page of EPD's dataset has no edit link for them.
    assert "Edit this dataset" not in site.client.get("/en/dataset/air-quality").text


def test_a_sysadmin_may_edit_every_organisation(site: Site) -> None:
    site.sign_in("root")
    page = site.client.get("/en/publish")
    assert "Transport Department" in page.text and "Environmental Protection" in page.text
    form = {"owner_org": "epd", "name": "air-quality", "title_en": "Air quality (hourly)",
            "visibility": "public", "publication": "active"}  # fmt: skip
    assert post_form(site.client, "/en/publish/dataset/air-quality", form).status_code == 303
    assert site.show("air-quality")["title"] == "Air quality (hourly)"
    assert site.activity("air-quality")[0]["user_id"] == "root (site)"


@pytest.mark.parametrize(
    ("user", "says"),
    [("td-member", "is a member of its organisations"), ("nobody", "has no role")],
)
def test_members_and_accounts_without_a_role_are_refused(site: Site, user: str, says: str) -> None:
    site.sign_in(user)
    for path in ("/en/publish", "/en/publish/new", "/en/publish/dataset/air-quality"):
        page = site.client.get(path)
        assert page.status_code == 403 and says in page.text
        assert "editor or admin role" in page.text
    token = csrf(site.client.get("/en/publish").text)
    sent = site.client.post("/en/publish/new", data={"csrf": token, **DATASET_FORM})
    assert sent.status_code == 403
    assert site.root("package_list")["result"] == ["air-quality"]
    assert "Publish data" not in site.client.get("/en/dataset").text


def test_visitors_are_sent_to_sign_in(site: Site) -> None:
    for path in ("/en/publish", "/tc/publish/new", "/en/publish/dataset/air-quality"):
        r = site.client.get(path, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"].startswith(f"/{path.split('/')[1]}/login?next=")
    sent = site.client.post("/en/publish/new", data=DATASET_FORM, follow_redirects=False)
    assert sent.status_code == 303 and "/login" in sent.headers["location"]
    assert site.root("package_list")["result"] == ["air-quality"]
    # The open data pages offer staff a sign-in link, and no publishing link.
    page = site.client.get("/en/dataset").text
    assert 'href="/en/login?next=' in page and "/en/publish" not in page


def test_the_guard_answers_before_a_body_is_read(site: Site) -> None:
    """Who may use a page is decided before its form or upload is read: a visitor posting
    JSON is sent to sign in (not told the body is of the wrong type), and another
    organisation's editor uploading more than the largest upload is refused with the 403
    page (not told the file is too large), and nothing is written."""
    sent = site.client.post("/en/publish/new", json={"name": "x"}, follow_redirects=False)
    assert sent.status_code == 303 and "/login" in sent.headers["location"]
    site.sign_in("td-editor")
    refused = site.client.post(
        "/en/publish/dataset/air-quality/resource/new",
        data={"csrf": "any", "name_en": "Spaces"},
        files={"upload": ("big.csv", b"a,b\n" + b"1,2\n" * MAX_UPLOAD, "text/csv")},
    )
    assert refused.status_code == 403
    assert "Environmental Protection Department" in refused.text
    assert site.show("air-quality")["resources"] == []
    kept = [p for p in site.uploads.rglob("*") if p.is_file()] if site.uploads.exists() else []
    assert kept == []


def test_a_form_without_its_csrf_token_saves_nothing(site: Site) -> None:
    site.sign_in("td-editor")
    sent = site.client.post("/en/publish/new", data=DATASET_FORM)
    assert sent.status_code == 400 and "This form had expired" in sent.text
    assert 'value="journey-times"' in sent.text  # the input is kept
    site.root("package_create", name="old-data", owner_org="td", title="Old data")
    bad = site.client.post("/en/publish/dataset/old-data/delete", data={"csrf": "forged"})
    assert bad.status_code == 400
    assert site.show("old-data")["state"] == "active"
    assert sorted(site.root("package_list")["result"]) == ["air-quality", "old-data"]


def test_the_account_bar_is_the_portals_on_the_open_data_pages(site: Site) -> None:
    """One account bar (components.html) for the portal and the open data pages: the same
    words in every language and the same sign-out form (the open data copy once said
    （政策局及部門職員） where the portal says （供政策局及部門職員使用））."""
    for path in ("/tc/", "/tc/dataset"):
        page = site.client.get(path).text
        assert 'href="/tc/login?next=' in page and "（供政策局及部門職員使用）" in page, path
    site.sign_in("td-editor")
    for path in ("/tc/", "/tc/dataset"):
        page = site.client.get(path).text
        assert "已登入：td-editor" in page, path
        form = re.search(r'<form method="post" action="/tc/logout"[^>]*>(.*?)</form>', page, re.S)
        assert form and 'name="csrf"' in form.group(1) and "登出" in form.group(1), path
    sent = site.client.post("/tc/logout", data={"csrf": csrf(site.client.get("/tc/dataset").text)})
    assert "已登入" not in site.client.get("/tc/dataset").text and sent.status_code == 200


def test_the_publish_link_is_in_the_account_bar_of_editors_only(site: Site) -> None:
    site.sign_in("td-editor")
    for path in ("/tc/dataset", "/tc/account", "/tc/"):  # open data's pages and the portal's
        page = site.client.get(path)
        assert page.status_code == 200 and '<a href="/tc/publish">發布數據</a>' in page.text, path
    site.sign_in("td-member")
    for path in ("/tc/dataset", "/tc/account"):
        assert "/tc/publish" not in site.client.get(path).text


def test_an_editor_publishes_a_hub_entity_type_as_a_live_dataset(site: Site) -> None:
    for n in (1, 2):
        made = site.client.post(
            "/ngsi-ld/v1/entities",
            json={
                "id": f"urn:ngsi-ld:OffStreetParking:{n}",
                "type": "OffStreetParking",
                "availableSpotNumber": {"type": "Property", "value": 10 * n},
            },
            headers={**city_link(), "Authorization": f"Bearer {site.root_key}"},
        )
        assert made.status_code == 201, made.text
    # EPD's editor may not publish car parks, whose feed's department (the default) is TD.
    site.sign_in("epd-editor")
    page = site.client.get("/en/publish/live")
    assert page.status_code == 200 and "OffStreetParking (2)" in page.text
    refused = post_form(site.client, "/en/publish/live", {"type": "OffStreetParking"})
    assert refused.status_code == 403 and "You may not publish in that organisation" in (
        refused.text
    )
    assert site.root("package_list")["result"] == ["air-quality"]
    site.sign_in("td-editor")
    assert 'href="/en/publish/live"' in site.client.get("/en/publish").text
    form = {"type": "OffStreetParking", "owner_org": "td", "visibility": "public"}
    sent = post_form(site.client, "/en/publish/live", form)
    assert sent.status_code == 303, sent.text[:2000]
    assert sent.headers["location"].startswith("/en/publish/dataset/live-off-street-parking")
    p = site.show("live-off-street-parking")
    assert p["organization"]["name"] == "td" and len(p["resources"]) == 5
    assert site.activity("live-off-street-parking")[0]["user_id"] == "td-editor (site)"
    csv_url = next(r["url"] for r in p["resources"] if r["format"] == "CSV")
    assert "urn:ngsi-ld:OffStreetParking:2" in site.client.get(
        csv_url.removeprefix("http://testserver")
    ).content.decode("utf-8-sig")
    # An unknown type is said next to its field, and nothing is written.
    bad = post_form(site.client, "/en/publish/live", {**form, "type": "Spaceship"})
    assert bad.status_code == 400 and 'id="live-type-error"' in bad.text


def test_a_long_chinese_description_is_accepted_as_the_api_accepts_it(site: Site) -> None:
    """20,000 Chinese characters are 180 KB once percent-encoded: more than the site's other
    forms take, well within what package_create takes as JSON."""
    site.sign_in("td-editor")
    notes = "行車時間" * 5000
    sent = post_form(site.client, "/en/publish/new", {**DATASET_FORM, "notes_zh-Hant": notes})
    assert sent.status_code == 303, sent.text[:1000]
    assert site.show("journey-times")["notes_translated"]["zh-Hant"] == notes
