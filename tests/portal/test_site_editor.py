"""Editors updating measures through the site, on every backend: who sees the forms, who may
post them, what changes (status, progress, dates, milestones, timeline, area roll-up)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from smartcity.app import create_app
from smartcity.config import FeedbackSettings, Settings
from smartcity.portal.blueprint.dataset import load_blueprint
from smartcity.portal.measures import loader
from smartcity.portal.measures.service import MeasureService
from smartcity.portal.users.service import UserService
from smartcity.storage.engine import Database

PASSWORD = "correct horse battery"
TD_MEASURE = "mobility-01"  # owned by the Transport Department (TD)
OGCIO_MEASURE = "living-01"  # owned by OGCIO


@pytest.fixture
def app(db: Database) -> FastAPI:
    loader.load(db, load_blueprint())
    users = UserService(db)
    users.create("td-editor", PASSWORD, "editor", department="TD", display_name="Tam Editor")
    users.create("root", PASSWORD, "admin")
    users.create("mod", PASSWORD, "moderator")
    feedback = FeedbackSettings(secret="test-secret-" + "z" * 20)
    return create_app(Settings(database_url=db.url, auth_required=False, feedback=feedback))


@pytest.fixture
def site(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def sign_in(client: TestClient, username: str) -> None:
    token = csrf(client.get("/en/login").text)
    r = client.post(
        "/en/login",
        data={"csrf": token, "username": username, "password": PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code == 303


def edit(client: TestClient, measure: str, **form: str) -> httpx.Response:
    token = csrf(client.get(f"/en/measures/{measure}").text)
    return client.post(
        f"/en/measures/{measure}/edit", data={"csrf": token, **form}, follow_redirects=False
    )


def area_progress(client: TestClient, area: str) -> str:
    html = client.get(f"/en/areas/{area}").text
    found = re.search(
        r'id="area-progress".*?<span class="progress-value">([^<]+)</span>', html, re.S
    )
    assert found
    return found.group(1)


def test_only_editors_of_the_department_see_the_forms(app: FastAPI, site: TestClient) -> None:
    assert 'id="editor"' not in site.get(f"/en/measures/{TD_MEASURE}").text
    sign_in(site, "td-editor")
    mine = site.get(f"/en/measures/{TD_MEASURE}").text
    assert 'id="editor"' in mine and "Update progress" in mine and "Add a milestone" in mine
    assert 'id="editor"' not in site.get(f"/en/measures/{OGCIO_MEASURE}").text
    account = site.get("/en/account").text
    assert f"/en/measures/{TD_MEASURE}/edit" in account
    assert f"/en/measures/{OGCIO_MEASURE}/edit" not in account
    # Another department's measure: 403 page for the form page and the post; nothing changes.
    assert site.get(f"/en/measures/{OGCIO_MEASURE}/edit").status_code == 403
    before = MeasureService(app.state.hub.entities.db).get_measure(OGCIO_MEASURE)
    token = csrf(site.get("/en/account").text)
    r = site.post(
        f"/en/measures/{OGCIO_MEASURE}/edit",
        follow_redirects=False,
        data={"csrf": token, "form": "progress", "status": "completed", "progress": "100"},
    )
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
    after = MeasureService(app.state.hub.entities.db).get_measure(OGCIO_MEASURE)
    assert after.status == before.status and after.progress == before.progress
    # A moderator edits nothing; anonymous visitors are sent to sign in.
    other = TestClient(app)
    r = other.get(f"/en/measures/{TD_MEASURE}/edit", follow_redirects=False)
    assert r.headers["location"] == f"/en/login?next=/en/measures/{TD_MEASURE}/edit"
    sign_in(other, "mod")
    assert other.get(f"/en/measures/{TD_MEASURE}/edit").status_code == 403


def test_progress_update_shows_in_timeline_and_area_rollup(site: TestClient) -> None:
    sign_in(site, "td-editor")
    before = area_progress(site, "mobility")
    r = edit(
        site,
        TD_MEASURE,
        form="progress",
        status="in_progress",
        progress="80",
        start="2021-01-04",
        end="2026-12-31",
        note="Trial on 30 roads finished",
    )
    assert r.status_code == 303
    # The confirmation is next to what changed: the status block, not the editor panel.
    assert r.headers["location"] == f"/en/measures/{TD_MEASURE}#status-message"
    page = site.get(f"/en/measures/{TD_MEASURE}").text
    assert "The progress of this measure is updated." in page
    assert '<progress max="100" value="80.0"' in page
    assert "Trial on 30 roads finished" in page and "Tam Editor" in page  # the timeline
    assert "4 January 2021" in page
    assert area_progress(site, "mobility") != before
    # A new status with the progress left as it was takes the status's usual progress.
    r = edit(site, TD_MEASURE, form="progress", status="completed", progress="80")
    assert r.status_code == 303
    assert '<progress max="100" value="100.0"' in site.get(f"/en/measures/{TD_MEASURE}").text


def test_mistakes_come_back_with_the_values(site: TestClient, app: FastAPI) -> None:
    sign_in(site, "root")  # an admin may edit any measure
    r = edit(
        site,
        OGCIO_MEASURE,
        form="progress",
        status="nonsense",
        progress="120",
        start="2026-05-01",
        end="2026-04-01",
        note="x",
    )
    assert r.status_code == 400
    for field in ("status", "progress"):
        assert f'href="#progress-{field}"' in r.text
    assert re.search(r'id="progress-progress"[^>]*value="120"', r.text)
    assert re.search(r'id="progress-progress"[^>]*aria-invalid="true"', r.text)
    r = edit(
        site,
        OGCIO_MEASURE,
        form="progress",
        status="planned",
        progress="10",
        start="2026-05-01",
        end="2026-04-01",
    )
    assert r.status_code == 400 and "The end date cannot be before the start date." in r.text
    m = MeasureService(app.state.hub.entities.db).get_measure(OGCIO_MEASURE)
    assert m.start is None and m.own_progress != 10


def test_milestones(site: TestClient) -> None:
    sign_in(site, "td-editor")
    r = edit(site, TD_MEASURE, form="milestone", date="2026-06-30", title_en="Pilot launched")
    assert r.status_code == 400
    assert 'href="#milestone-title_zh-Hant"' in r.text and 'value="Pilot launched"' in r.text
    r = edit(
        site,
        TD_MEASURE,
        **{
            "form": "milestone",
            "date": "2026-06-30",
            "title_en": "Pilot launched",
            "title_zh-Hant": "試點推出",
            "title_zh-Hans": "试点推出",
        },
    )
    assert r.status_code == 303
    page = site.get(f"/tc/measures/{TD_MEASURE}").text
    assert "試點推出" in page and "尚未" in page
    milestone = re.search(r'name="milestone" value="(\d+)"', page)
    assert milestone
    r = edit(site, TD_MEASURE, form="milestone_done", milestone=milestone.group(1), done="1")
    assert r.status_code == 303
    assert "The milestone is marked as reached." in site.get(f"/en/measures/{TD_MEASURE}").text


def test_who_may_post_is_decided_before_the_form_is_read(site: TestClient) -> None:
    """Every staff form (progress, bulk progress, official answers, moderation) decides who may
    use it before reading the body: a visitor posting JSON is sent to sign in, and an account
    without the role, or an editor of another department, gets the 403 page saying why —
    neither is told the body has the wrong type. (A body larger than any form is refused at
    the edge, for everyone, before a byte is kept.)"""
    posts = [
        f"/en/measures/{TD_MEASURE}/edit",
        "/en/account/progress",
        f"/en/measures/{TD_MEASURE}/answer",
        "/en/moderation/1",
    ]
    for path in posts:
        sent = site.post(path, json={"form": "progress"}, follow_redirects=False)
        assert sent.status_code == 303 and "/login" in sent.headers["location"], path
    sign_in(site, "mod")
    for path in posts[:3]:  # the editors' forms, posted by a moderator
        refused = site.post(path, json={"form": "progress"}, follow_redirects=False)
        assert refused.status_code == 403, path
        assert "This page is for editors and administrators." in refused.text, path
    site.post("/en/logout", data={"csrf": csrf(site.get("/en/account").text)})
    sign_in(site, "td-editor")
    for path in (f"/en/measures/{OGCIO_MEASURE}/edit", f"/en/measures/{OGCIO_MEASURE}/answer"):
        refused = site.post(path, json={"form": "progress"}, follow_redirects=False)
        assert refused.status_code == 403 and "OGCIO" in refused.text, path
    refused = site.post("/en/moderation/1", json={}, follow_redirects=False)
    assert refused.status_code == 403
    assert "This page is for moderators and administrators." in refused.text
    # The guarded pages themselves still open for those they are for.
    assert site.get(f"/en/measures/{TD_MEASURE}/edit").status_code == 200
    assert site.get("/en/account/progress").status_code == 200
    assert site.get("/en/account").status_code == 200
    assert site.get(f"/en/measures/{OGCIO_MEASURE}/edit").status_code == 403
    assert site.get("/en/measures/no-such-measure/edit").status_code == 404
