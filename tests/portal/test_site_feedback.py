"""Public feedback through the site's HTML forms (no JavaScript), on every backend: posting,
errors kept in the form, honeypot, CSRF on every form, threads, votes, reports, moderation,
official answers, privacy requests, and e-mail addresses never reaching a page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from smartcity.app import create_app
from smartcity.config import FeedbackSettings, Settings
from smartcity.portal.blueprint.dataset import load_blueprint
from smartcity.portal.feedback.service import FeedbackService
from smartcity.portal.measures import loader
from smartcity.portal.users.service import UserService
from smartcity.storage.engine import Database

MEASURE = "/en/measures/mobility-12"
PASSWORD = "correct horse battery"
EMAIL = "resident.42@example.org"


@pytest.fixture
def app(db: Database) -> FastAPI:
    loader.load(db, load_blueprint())
    users = UserService(db)
    users.create("mod", PASSWORD, "moderator", display_name="Mo Moderator")
    users.create("td-editor", PASSWORD, "editor", department="TD")
    feedback = FeedbackSettings(
        reports_to_hide=2, comment_rate_session=(6, 600), secret="test-secret-" + "x" * 20
    )
    return create_app(Settings(database_url=db.url, auth_required=False, feedback=feedback))


@pytest.fixture
def site(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def another(app: FastAPI) -> TestClient:
    """A second browser: its own cookies (session, voter)."""
    return TestClient(app)


def fb(app: FastAPI) -> FeedbackService:
    service: FeedbackService = app.state.feedback
    return service


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


def post(client: TestClient, url: str, data: dict[str, str], **kw: str) -> httpx.Response:
    return client.post(url, data=data, follow_redirects=False, **kw)


def comment(
    client: TestClient, url: str = MEASURE, text: str = "More parking data, please.", **extra: str
) -> httpx.Response:
    token = csrf(client.get(url).text)
    data = {"csrf": token, "form": "comment", "text": text, "stance": "support", "website": ""}
    return post(client, url, {**data, **extra})


def posted_id(response: httpx.Response) -> int:
    assert response.status_code == 303, response.text[:500]
    found = re.search(r"#comment-(\d+)$", response.headers["location"])
    assert found, response.headers["location"]
    return int(found.group(1))


def sign_in(client: TestClient, username: str, prefix: str = "en") -> None:
    token = csrf(client.get(f"/{prefix}/login").text)
    r = post(
        client,
        f"/{prefix}/login",
        {"csrf": token, "username": username, "password": PASSWORD, "next": f"/{prefix}/account"},
    )
    assert r.status_code == 303


def test_comment_is_published_and_email_never_shown(site: TestClient, app: FastAPI) -> None:
    page = site.get(MEASURE).text
    # The honeypot: hidden from assistive technology, out of the tab order, never autofilled.
    trap = re.search(r'<div class="visually-hidden" aria-hidden="true">.*?</div>', page, re.S)
    assert trap and 'name="website"' in trap.group(0)
    assert 'tabindex="-1"' in trap.group(0) and 'autocomplete="off"' in trap.group(0)
    r = comment(
        site, text="Parking <script>alert(1)</script> https://example.org", name="Ann", email=EMAIL
    )
    cid = posted_id(r)
    voter = next(c for c in r.headers.get_list("set-cookie") if c.startswith("smartcity_voter="))
    assert "httponly" in voter.lower() and "samesite=lax" in voter.lower()
    assert "secure" not in voter.lower()  # plain http here; see the https test in test_site_auth
    shown = site.get(MEASURE).text
    assert f'id="comment-{cid}"' in shown and "Thank you: your comment is published." in shown
    assert "<script>alert(1)</script>" not in shown and "&lt;script&gt;" in shown
    assert 'href="https://example.org"' in shown and "Ann" in shown
    assert "Thank you: your comment is published." not in site.get(MEASURE).text  # once only
    # The e-mail address is on no page and in no public answer, in any language.
    sign_in(site, "mod")
    for url in (
        MEASURE,
        "/tc/measures/mobility-12",
        "/sc/measures/mobility-12",
        "/en/areas/mobility",
        "/en/moderation",
        f"/en/moderation?comment={cid}",
        "/api/v1/comments?target=measure:mobility-12",
        f"/api/v1/comments/{cid}",
    ):
        body = site.get(url).text
        assert "Parking" in body or url in ("/en/areas/mobility", "/en/moderation"), url
        assert EMAIL not in body and "resident.42" not in body, url


def test_mistakes_are_shown_with_the_text_kept(site: TestClient) -> None:
    r = comment(site, text="   ", email="not-an-address", name="Bo", stance="maybe")
    assert r.status_code == 400
    html = r.text
    summary = re.search(r'<div class="error-summary".*?</div>', html, re.S)
    assert summary is not None
    for field in ("text", "email", "stance"):
        assert f'href="#feedback-form-{field}"' in summary.group(0)
    assert re.search(r'<textarea id="feedback-form-text"[^>]*aria-invalid="true"', html)
    assert re.search(r'id="feedback-form-email"[^>]*value="not-an-address"', html)
    email_input = re.search(r'<input id="feedback-form-email"[^>]*>', html)
    assert email_input and "feedback-form-email-error" in email_input.group(0)
    assert 'value="Bo"' in html
    # Too many links: the text comes back as typed.
    text = "See https://a.example https://b.example https://c.example"
    r = comment(site, text=text)
    assert r.status_code == 400 and "too many links" in r.text and text in unescape(r.text)
    # In Chinese on the Chinese page.
    r = comment(site, "/tc/measures/mobility-12", text="")
    assert r.status_code == 400 and "請輸入您的意見" in r.text


def test_honeypot_is_answered_politely_and_nothing_is_stored(
    site: TestClient, app: FastAPI
) -> None:
    r = comment(site, text="Buy cheap watches", website="http://spam.example")
    assert r.status_code == 303 and r.headers["location"].endswith("#feedback-message")
    page = site.get(MEASURE).text
    assert "will be published once a moderator has read it" in page
    assert "cheap watches" not in page
    assert fb(app).stats().get("honeypot") == 1
    assert fb(app).moderation.queue()[0] == 0


def _state_unchanged(app: FastAPI) -> tuple[int, int]:
    page = fb(app).comments(fb_target())
    votes = sum(c.votes for c in page.threads)
    return page.total, votes


def fb_target():  # type: ignore[no-untyped-def]
    from smartcity.portal.feedback.model import Target

    return Target("measure", "mobility-12")


def test_every_form_enforces_csrf(site: TestClient, app: FastAPI, db: Database) -> None:
    cid = posted_id(comment(site, email=EMAIL))
    before = _state_unchanged(app)
    for bad in ({}, {"csrf": "1.abc.def"}, {"csrf": csrf(another(app).get(MEASURE).text)}):
        forms = [
            {"form": "comment", "text": "no token", "stance": "neutral"},
            {"form": "vote", "comment": str(cid)},
            {"form": "vote-email", "comment": str(cid), "email": "someone@example.org"},
            {"form": "report", "comment": str(cid), "reason": "spam"},
        ]
        for form in forms:
            r = post(site, MEASURE, {**form, **bad})
            assert r.status_code == 400, form
            assert "expired" in r.text
        assert (
            post(
                site,
                "/en/areas/mobility",
                {"form": "comment", "text": "x", "stance": "neutral", **bad},
            ).status_code
            == 400
        )
        r = post(site, "/en/privacy", {"email": EMAIL, "action": "export", **bad})
        assert r.status_code == 400
        assert (
            post(site, "/en/login", {"username": "mod", "password": PASSWORD, **bad}).status_code
            == 400
        )
    assert _state_unchanged(app) == before
    assert fb(app).privacy.pending_mail() == []
    assert "Signed in as" not in site.get("/en/account", follow_redirects=True).text
    # Signed in, the staff forms refuse a missing token too.
    sign_in(site, "mod")
    assert post(site, f"/en/moderation/{cid}", {"action": "hide"}).status_code == 400
    assert fb(app).moderation.item(cid).status == "published"
    assert post(site, "/en/logout", {}).status_code == 400
    assert "Signed in as" in site.get("/en/account").text
    # The privacy confirmation refuses a missing token and leaves the link usable.
    fb(app).privacy.request_privacy_action(EMAIL, "export")
    link = fb(app).privacy.pending_mail()[0].body
    token = parse_qs(urlsplit(re.search(r"http\S+", link).group(0)).query)["token"][0]  # type: ignore[union-attr]
    assert post(site, "/en/privacy/confirm", {"token": token}).status_code == 400
    assert fb(app).privacy.confirm_privacy_action(token).action == "export"


def test_replies_go_three_levels_deep(site: TestClient, app: FastAPI) -> None:
    ids = [posted_id(comment(site, text="Level 0"))]
    for depth in (1, 2, 3):
        ids.append(posted_id(comment(site, text=f"Level {depth}", parent=str(ids[-1]))))
    page = site.get(MEASURE).text
    for cid in ids[:3]:
        assert f'<input type="hidden" name="parent" value="{cid}">' in page
    assert f'<input type="hidden" name="parent" value="{ids[3]}">' not in page  # no Reply there
    assert re.search(
        rf'<ol class="comment-replies">\s*<li class="comment" id="comment-{ids[3]}"', page
    )
    r = comment(site, text="Level 4", parent=str(ids[3]))
    assert r.status_code == 400 and "three levels deep" in r.text
    assert 'aria-labelledby="reply-' not in r.text  # the forged form is reported at the top
    assert "Level 4" in r.text  # the text is kept


def vote(client: TestClient, cid: int, url: str = MEASURE) -> httpx.Response:
    token = csrf(client.get(url).text)
    return post(client, url, {"csrf": token, "form": "vote", "comment": str(cid)})


def vote_by_email(client: TestClient, cid: int, email: str) -> httpx.Response:
    data = {"csrf": csrf(client.get(MEASURE).text), "form": "vote-email", "comment": str(cid)}
    return post(client, MEASURE, {**data, "email": email})


def confirm_vote_link(app: FastAPI, client: TestClient, to: str) -> httpx.Response:
    """Open the newest vote link mailed to ``to`` (read from the outbox, as the operator's
    relay would) and press its button."""
    mails = [m for m in fb(app).privacy.pending_mail() if m.to == to]
    assert mails, f"no mail to {to}"
    link = urlsplit(re.search(r"http\S+/votes/confirm\?token=\S+", mails[-1].body).group(0))  # type: ignore[union-attr]
    page = client.get(f"{link.path}?{link.query}")
    assert page.status_code == 200 and "Count my vote" in page.text
    token = parse_qs(link.query)["token"][0]
    return post(client, link.path, {"csrf": csrf(page.text), "token": token})


def test_a_vote_needs_a_confirmed_email_or_an_account(site: TestClient, app: FastAPI) -> None:
    cid = posted_id(comment(site))
    voter = another(app)
    # Not signed in, no address proven: the comment asks for an address; nothing is counted.
    r = vote(voter, cid)
    assert r.status_code == 200 and f'id="vote-{cid}"' in r.text
    assert "One person, one vote" in r.text and fb(app).comment(cid).votes == 0
    r = vote_by_email(voter, cid, "not an address")
    assert r.status_code == 400 and "Enter an email address like name@example.com." in r.text
    r = vote_by_email(voter, cid, "Resident@Example.org")
    assert r.status_code == 303 and r.headers["location"].endswith(f"#comment-{cid}")
    assert "We have sent a link to Resident@Example.org." in voter.get(MEASURE).text
    assert fb(app).comment(cid).votes == 0
    r = confirm_vote_link(app, voter, "resident@example.org")
    assert r.status_code == 303 and r.headers["location"] == f"{MEASURE}#comment-{cid}"
    assert "Thank you: your vote is counted." in voter.get(MEASURE).text
    assert fb(app).comment(cid).votes == 1
    # Proven once, this browser votes without mail; a repeat is not counted.
    second = posted_id(comment(site, text="A second view"))
    assert vote(voter, second).status_code == 303
    assert fb(app).comment(second).votes == 1
    assert vote(voter, cid).status_code == 303
    assert "You have already voted for this comment." in voter.get(MEASURE).text
    # The same address in a third browser: one person, one vote.
    third = another(app)
    assert vote_by_email(third, cid, "resident@example.org").status_code == 303
    assert confirm_vote_link(app, third, "resident@example.org").status_code == 303
    assert "You have already voted for this comment." in third.get(MEASURE).text
    assert fb(app).comment(cid).votes == 1
    # A link works once.
    r = confirm_vote_link(app, third, "resident@example.org")
    assert r.status_code == 410 and "This link has been used already." in r.text
    assert "1 vote" in site.get(MEASURE).text


def test_one_account_votes_once_from_many_browsers(site: TestClient, app: FastAPI) -> None:
    cid = posted_id(comment(site))
    browsers = [another(app) for _ in range(3)]  # issue #9: three browser contexts
    for browser in browsers:
        sign_in(browser, "td-editor")
        assert vote(browser, cid).status_code == 303
    assert fb(app).comment(cid).votes == 1


def test_authors_cannot_vote_for_their_own_comment(site: TestClient, app: FastAPI) -> None:
    cid = posted_id(comment(site, email=EMAIL))
    # The author's browser, whatever address it gives.
    r = vote_by_email(site, cid, "someone.else@example.org")
    assert r.status_code == 403 and "You cannot vote for your own comment." in r.text
    # The author's address, from another browser.
    r = vote_by_email(another(app), cid, EMAIL.upper())
    assert r.status_code == 403 and "You cannot vote for your own comment." in r.text
    assert fb(app).privacy.pending_mail() == []
    # A comment posted signed in: the account may not vote for it from another browser.
    staff = another(app)
    sign_in(staff, "mod")
    own = posted_id(comment(staff, text="Posted by a moderator"))
    laptop = another(app)
    sign_in(laptop, "mod")
    r = vote(laptop, own)
    assert r.status_code == 403 and "You cannot vote for your own comment." in r.text
    assert fb(app).comment(cid).votes == fb(app).comment(own).votes == 0


def test_a_voter_cookie_we_did_not_sign_is_replaced(site: TestClient, app: FastAPI) -> None:
    cid = posted_id(comment(site))
    forged = another(app)
    fake = site.cookies["smartcity_voter"].split(".")[0] + ".00"
    forged.cookies.set("smartcity_voter", fake)
    r = vote(forged, cid)
    issued = [c for c in r.headers.get_list("set-cookie") if c.startswith("smartcity_voter=")]
    assert r.status_code == 200 and issued and fake not in issued[0]


def test_reports_hide_and_a_moderator_restores(site: TestClient, app: FastAPI) -> None:
    cid = posted_id(comment(site, text="Contested remark"))

    def report(client: TestClient, **form: str) -> httpx.Response:
        token = csrf(client.get(MEASURE).text)
        return post(client, MEASURE, {"csrf": token, "form": "report", "comment": str(cid), **form})

    r = report(site, reason="other")  # "other" needs a word of explanation
    assert r.status_code == 400 and f'href="#report-{cid}-detail"' in r.text
    assert re.search(r'<details class="comment-report" open>', r.text)
    assert report(site, reason="spam").status_code == 303
    assert "A moderator will look at this comment." in site.get(MEASURE).text
    assert report(site, reason="spam").status_code == 303
    assert "You have already reported this comment." in site.get(MEASURE).text
    assert report(another(app), reason="offensive").status_code == 303
    # Browsers alone (their cookie is all they are) never hide a comment: people do.
    assert "Contested remark" in site.get(MEASURE).text
    for name in ("td-editor", "mod"):
        person = another(app)
        sign_in(person, name)
        assert report(person, reason="offensive", detail="rude").status_code == 303
    assert "Contested remark" not in site.get(MEASURE).text  # hidden after 2 people's reports
    # Anonymous → sign in; an editor → 403 page; a moderator → the queue.
    r = another(app).get("/en/moderation", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/en/login?next=/en/moderation"
    editor = another(app)
    sign_in(editor, "td-editor")
    denied = editor.get("/en/moderation")
    assert denied.status_code == 403 and "text/html" in denied.headers["content-type"]
    sign_in(site, "mod")
    queue = site.get("/en/moderation").text
    assert "Contested remark" in queue and "Hidden after reports" in queue and "rude" in queue
    r = post(site, f"/en/moderation/{cid}", {"csrf": csrf(queue), "action": "restore"})
    assert r.status_code == 303
    queue = site.get("/en/moderation").text
    assert f"Comment {cid} is published again." in queue
    assert re.search(r"<td>Restored</td>\s*<td>mod</td>", queue)
    assert "Contested remark" in site.get(MEASURE).text


def test_hide_approve_and_official_answer(site: TestClient, app: FastAPI) -> None:
    cid = posted_id(comment(site, text="When will the app show more car parks?"))
    sign_in(site, "mod")
    token = csrf(site.get("/en/moderation").text)
    # An answer without its department's names is sent back with the text kept.
    r = post(
        site,
        f"/en/moderation/{cid}",
        {"csrf": token, "action": "answer", "text": "Soon, in 2026.", "language": "en"},
    )
    assert r.status_code == 400 and "Soon, in 2026." in r.text
    assert f'href="#mod-{cid}-answer-dept_en"' in r.text
    r = post(
        site,
        f"/en/moderation/{cid}",
        {
            "csrf": token,
            "action": "answer",
            "text": "Soon, in 2026.",
            "language": "en",
            "dept_en": "Transport Department",
            "dept_zh-Hant": "運輸署",
            "dept_zh-Hans": "运输署",
        },
    )
    assert r.status_code == 303
    tc = site.get("/tc/measures/mobility-12").text
    assert "官方回應" in tc and "運輸署" in tc and "Soon, in 2026." in tc
    r = post(site, f"/en/moderation/{cid}", {"csrf": token, "action": "hide", "reason": "test"})
    assert r.status_code == 303
    assert "When will the app" not in site.get(MEASURE).text
    assert fb(app).moderation.item(cid).status == "hidden_by_moderator"
    # Approving a comment that is not waiting is refused politely.
    r = post(site, f"/en/moderation/{cid}", {"csrf": token, "action": "approve"})
    assert "does not fit the comment" in site.get(r.headers["location"]).text


def test_rate_limit_is_explained_and_the_text_kept(site: TestClient) -> None:
    for n in range(6):
        posted_id(comment(site, text=f"Comment number {n}"))
    r = comment(site, text="One too many")
    assert r.status_code == 429
    assert "Please wait" in r.text and "One too many" in r.text


def test_comment_on_an_area(site: TestClient) -> None:
    cid = posted_id(comment(site, "/sc/areas/mobility", text="交通数据要更开放"))
    page = site.get("/sc/areas/mobility").text
    assert f'id="comment-{cid}"' in page and "交通数据要更开放" in page
    assert 'lang="zh-Hans"' in page
    assert site.post("/en/areas/atlantis", data={"form": "comment"}).status_code == 404


def _mailed_token(app: FastAPI) -> str:
    mail = fb(app).privacy.pending_mail()[-1]
    link = re.search(r"http\S+/en/privacy/confirm\?token=\S+", mail.body)
    assert link, mail.body
    return parse_qs(urlsplit(link.group(0)).query)["token"][0]


def test_privacy_export_and_delete(site: TestClient, app: FastAPI) -> None:
    about = site.get("/en/privacy").text
    assert "your e-mail address is never shown" in about  # the notice, from the backend
    cid = posted_id(comment(site, text="Mine to take back", email=EMAIL))
    r = post(site, "/en/privacy", {"csrf": csrf(about), "email": "nope", "action": "export"})
    assert r.status_code == 400 and 'href="#privacy-email"' in r.text
    r = post(site, "/en/privacy", {"csrf": csrf(about), "email": EMAIL, "action": "export"})
    assert r.status_code == 303
    assert "we have sent it a link" in site.get(r.headers["location"]).text
    token = _mailed_token(app)
    # Opening the link does nothing but show a button.
    confirm = site.get(f"/en/privacy/confirm?token={token}")
    assert confirm.status_code == 200 and f'value="{token}"' in confirm.text
    r = post(site, "/en/privacy/confirm", {"csrf": csrf(confirm.text), "token": token})
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    exported = r.json()
    assert exported["comments"][0]["id"] == cid and exported["comments"][0]["email"] == EMAIL
    again = post(site, "/en/privacy/confirm", {"csrf": csrf(confirm.text), "token": token})
    assert again.status_code == 410 and "used already" in again.text
    # Delete.
    post(site, "/en/privacy", {"csrf": csrf(about), "email": EMAIL, "action": "delete"})
    token = _mailed_token(app)
    confirm = site.get(f"/en/privacy/confirm?token={token}")
    r = post(site, "/en/privacy/confirm", {"csrf": csrf(confirm.text), "token": token})
    assert r.status_code == 200 and "1 comment was deleted." in r.text
    assert "Mine to take back" not in site.get(MEASURE).text
    bad = site.get("/tc/privacy/confirm?token=not-a-real-token-at-all")
    r = post(site, "/tc/privacy/confirm", {"csrf": csrf(bad.text), "token": "not-a-real-token"})
    assert r.status_code == 404 and "連結無效" in r.text
