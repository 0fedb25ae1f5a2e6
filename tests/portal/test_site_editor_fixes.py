"""Editors (issue #9, item 4): a visible sign-in link, refusals that say the real reason, a
timeline with old -> new values and translated field names, trilingual notes with a marked
fallback, locale-proof date inputs, confirmations next to what changed."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from html import unescape

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
TD_MEASURE = "mobility-01"
OGCIO_MEASURE = "living-01"


@pytest.fixture
def app(db: Database) -> FastAPI:
    loader.load(db, load_blueprint())
    users = UserService(db)
    users.create("td-editor", PASSWORD, "editor", department="TD", display_name="Tam Editor")
    users.create("mod", PASSWORD, "moderator")
    feedback = FeedbackSettings(secret="test-secret-" + "z" * 20)
    return create_app(Settings(database_url=db.url, auth_required=False, feedback=feedback))


@pytest.fixture
def site(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def _sign_in(client: TestClient, username: str) -> None:
    token = _csrf(client.get("/en/login").text)
    r = client.post(
        "/en/login",
        data={"csrf": token, "username": username, "password": PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code == 303


def _edit(client: TestClient, measure: str, prefix: str = "en", **form: str) -> httpx.Response:
    token = _csrf(client.get(f"/{prefix}/measures/{measure}").text)
    return client.post(
        f"/{prefix}/measures/{measure}/edit", data={"csrf": token, **form}, follow_redirects=False
    )


def test_a_visible_sign_in_link(site: TestClient) -> None:
    for prefix, label in (("en", "Sign in"), ("tc", "登入"), ("sc", "登录")):
        page = site.get(f"/{prefix}/measures/{TD_MEASURE}").text
        link = re.search(r'<p class="wrap sign-in-link"><a href="([^"]+)">([^<]+)</a>', page)
        assert link, prefix
        assert link.group(1) == f"/{prefix}/login?next=/{prefix}/measures/{TD_MEASURE}"
        assert link.group(2) == label
    assert "sign-in-link" not in site.get("/en/login").text
    _sign_in(site, "td-editor")
    assert "sign-in-link" not in site.get("/en/").text  # signed in: the account bar instead


def test_refusals_say_the_real_reason(site: TestClient) -> None:
    _sign_in(site, "td-editor")
    r = site.get(f"/en/measures/{OGCIO_MEASURE}/edit")
    assert r.status_code == 403
    page = _text(r.text)
    assert "does not have the role" not in page
    assert f"Measure {OGCIO_MEASURE} is the responsibility of OGCIO" in page
    assert "Editors of TD can update only their own department's measures." in page
    tc = _text(site.get(f"/tc/measures/{OGCIO_MEASURE}/edit").text)
    assert f"措施 {OGCIO_MEASURE} 由 OGCIO 負責" in tc
    other = TestClient(site.app)
    _sign_in(other, "mod")
    page = _text(other.get(f"/en/measures/{TD_MEASURE}/edit").text)
    assert "This page is for editors and administrators." in page
    assert "Your account is a moderator account." in page


def test_timeline_shows_old_and_new_values_in_the_readers_language(
    app: FastAPI, site: TestClient
) -> None:
    _sign_in(site, "td-editor")
    assert _edit(site, TD_MEASURE, form="progress", status="in_progress", progress="50",
                 start="2021-01-04").status_code == 303  # fmt: skip
    assert _edit(site, TD_MEASURE, form="progress", status="in_progress", progress="50",
                 start="2021-02-01").status_code == 303  # fmt: skip
    en = _text(site.get(f"/en/measures/{TD_MEASURE}").text)
    assert "Start date changed from 4 January 2021 to 1 February 2021" in en
    assert "Start date set to 4 January 2021" in en
    assert "Changed: start" not in en
    tc = _text(site.get(f"/tc/measures/{TD_MEASURE}").text)
    assert "開始日期由 2021年1月4日 改為 2021年2月1日" in tc
    assert "已更改：start" not in tc and "start" not in tc.split("時間線")[-1].split("返回")[0]


def test_a_changed_end_date_reads_old_to_new_in_chinese() -> None:
    from pathlib import Path

    import smartcity.portal.site as site_pkg
    from smartcity.portal.measures.schemas import AuditEntry
    from smartcity.portal.site import timeline
    from smartcity.web.i18n import TC, Formatter, translations

    entry = AuditEntry(
        id=1, measure_id="x", at=dt.datetime.now(dt.UTC), user_id=1, user="Tam",
        field="end", old="2024-03-31", new="2025-06-30",
    )  # fmt: skip
    locale = Path(site_pkg.__file__).parent / "locale"
    gettext = translations(TC, (locale,)).gettext
    assert (
        timeline.describe(entry, gettext, Formatter(TC), {})
        == "完成日期由 2024年3月31日 改為 2025年6月30日"
    )


def test_trilingual_notes_with_a_marked_fallback(app: FastAPI, site: TestClient) -> None:
    _sign_in(site, "td-editor")
    r = _edit(
        site, TD_MEASURE, form="progress", status="in_progress", progress="60",
        **{"note_en": "Tender awarded", "note_zh-Hant": "已批出合約"},
    )  # fmt: skip
    assert r.status_code == 303
    assert "Tender awarded" in _text(site.get(f"/en/measures/{TD_MEASURE}").text)
    tc = site.get(f"/tc/measures/{TD_MEASURE}").text
    assert "已批出合約" in tc and "Tender awarded" not in tc
    sc = site.get(f"/sc/measures/{TD_MEASURE}").text
    # No Simplified Chinese note: the English one, in an element marked lang="en", labelled.
    assert '<span class="small" lang="en">Tender awarded</span>' in sc
    assert "（英文：未有提供翻译）" in sc
    entry = MeasureService(app.state.hub.entities.db).timeline(TD_MEASURE)[0]
    assert entry.notes == {"en": "Tender awarded", "zh-Hant": "已批出合約"}
    # The form asks for the note in each language.
    form = site.get(f"/en/measures/{TD_MEASURE}/edit").text
    for key in ("en", "zh-Hant", "zh-Hans"):
        assert f'name="note_{key}"' in form


def test_date_inputs_are_locale_proof(site: TestClient) -> None:
    _sign_in(site, "td-editor")
    form = site.get(f"/en/measures/{TD_MEASURE}/edit").text
    assert 'type="date"' not in form  # the browser's own "mm/dd/yyyy" beside our hint
    for field in ("progress-start", "progress-end", "milestone-date"):
        tag = re.search(rf'<input id="{field}"[^>]*>', form)
        assert tag and 'type="text"' in tag.group(0), field
        assert f'aria-describedby="{field}-hint"' in tag.group(0)
    assert "Year-month-day, for example 2026-03-31." in form


def test_the_confirmation_is_next_to_what_changed(site: TestClient) -> None:
    _sign_in(site, "td-editor")
    r = _edit(site, TD_MEASURE, form="progress", status="in_progress", progress="70")
    assert r.headers["location"] == f"/en/measures/{TD_MEASURE}#status-message"
    page = site.get(r.headers["location"]).text
    status = page.split('id="status-heading"')[1].split("</section>")[0]
    assert 'id="status-message"' in status and "The progress of this measure is updated." in status
    r = _edit(
        site, TD_MEASURE, form="milestone", date="2026-06-30",
        **{"title_en": "Pilot", "title_zh-Hant": "試點", "title_zh-Hans": "试点"},
    )  # fmt: skip
    assert r.headers["location"] == f"/en/measures/{TD_MEASURE}#milestones-message"
    page = site.get(r.headers["location"]).text
    milestones = page.split('id="milestones-heading"')[1].split("</section>")[0]
    assert "The milestone is added." in milestones


def _post_comment(client: TestClient, measure: str, text: str) -> int:
    page = client.get(f"/en/measures/{measure}").text
    r = client.post(
        f"/en/measures/{measure}",
        data={"csrf": _csrf(page), "form": "comment", "text": text, "stance": "neutral",
              "website": ""},
        follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 303, r.text
    found = re.search(r"#comment-(\d+)", r.headers["location"])
    assert found, r.headers["location"]
    return int(found.group(1))


def test_editors_answer_comments_officially(app: FastAPI, site: TestClient) -> None:
    citizen = TestClient(app)
    cid = _post_comment(citizen, TD_MEASURE, "When will the tolling start?")
    other = _post_comment(citizen, OGCIO_MEASURE, "And the Wi-Fi?")
    assert "Answer officially" not in citizen.get(f"/en/measures/{TD_MEASURE}").text
    _sign_in(site, "td-editor")
    page = site.get(f"/en/measures/{TD_MEASURE}").text
    assert f'action="/en/measures/{TD_MEASURE}/answer"' in page and "Answer officially" in page
    assert "Answer officially" not in site.get(f"/en/measures/{OGCIO_MEASURE}").text
    r = site.post(
        f"/en/measures/{TD_MEASURE}/answer",
        data={"csrf": _csrf(page), "comment": str(cid), "text": "In 2026.", "language": "en"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    answer = int(r.headers["location"].rsplit("-", 1)[1])
    shown = site.get(f"/en/measures/{TD_MEASURE}").text
    item = shown.split(f'id="comment-{answer}"')[1].split("</li>")[0]
    assert "Official answer" in item and "Transport Department" in item and "In 2026." in item
    assert "Your official answer is published." in item
    # Not on another department's measure, nor a comment of another page through this one.
    r = site.post(
        f"/en/measures/{OGCIO_MEASURE}/answer",
        data={"csrf": _csrf(page), "comment": str(other), "text": "No", "language": "en"},
        follow_redirects=False,
    )
    assert r.status_code == 403 and "is the responsibility of OGCIO" in _text(r.text)
    r = site.post(
        f"/en/measures/{TD_MEASURE}/answer",
        data={"csrf": _csrf(page), "comment": str(other), "text": "No", "language": "en"},
        follow_redirects=False,
    )
    assert r.status_code == 403 and "not about measure mobility-01" in _text(r.text)
