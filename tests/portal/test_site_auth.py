"""Staff sign-in on the site, on every backend: sessions (cookie flags, a new session id at
sign-in, idle and absolute time-outs from settings, server-side so that signing out, a
password change or a deactivation ends every copy of the cookie), sign-out, login throttling,
safe ``next`` redirects."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from smartcity.app import create_app
from smartcity.config import FeedbackSettings, SessionSettings, Settings
from smartcity.portal import tables as portal_tables
from smartcity.portal.blueprint.dataset import load_blueprint
from smartcity.portal.measures import loader
from smartcity.portal.site import sessions
from smartcity.portal.users.service import UserService
from smartcity.storage.engine import Database

PASSWORD = "correct horse battery"


@pytest.fixture
def app(db: Database) -> FastAPI:
    UserService(db).create("mod", PASSWORD, "moderator", display_name="Mo Moderator")
    feedback = FeedbackSettings(secret="test-secret-" + "y" * 20)
    return create_app(Settings(database_url=db.url, auth_required=False, feedback=feedback))


@pytest.fixture
def site(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def login(
    client: TestClient, password: str = PASSWORD, prefix: str = "en", next_url: str = ""
) -> httpx.Response:
    token = csrf(client.get(f"/{prefix}/login").text)
    data = {"csrf": token, "username": "mod", "password": password, "next": next_url}
    return client.post(f"/{prefix}/login", data=data, follow_redirects=False)


def session_cookie(response: httpx.Response) -> str:
    return next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("smartcity_session=")
    )


def test_sign_in_and_out(site: TestClient) -> None:
    page = site.get("/en/login")
    assert page.status_code == 200
    assert 'autocomplete="current-password"' in page.text and 'autocomplete="username"' in page.text
    before = site.cookies["smartcity_session"]
    r = login(site, next_url="/en/moderation")
    assert r.status_code == 303 and r.headers["location"] == "/en/moderation"
    cookie = session_cookie(r).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    after = site.cookies["smartcity_session"]
    assert after != before
    # A new session id: a token minted for the old session no longer works.
    assert sessions.SESSION_COOKIE == "smartcity_session"
    account = site.get("/tc/account").text
    assert "已登入：Mo Moderator" in account and "審核人員" in account
    assert 'action="/tc/logout"' in account
    # The header's sign-out form carries a token; signing out ends the session.
    r = site.post("/tc/logout", data={"csrf": csrf(account)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/tc/login"
    assert "您已登出。" in site.get("/tc/login").text
    r = site.get("/en/account", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/en/login?next=/en/account"


def test_the_old_session_is_worthless_after_sign_in(app: FastAPI, site: TestClient) -> None:
    site.get("/en/login")
    planted = site.cookies["smartcity_session"]  # e.g. fixed by an attacker before sign-in
    assert login(site).status_code == 303
    attacker = TestClient(app)
    attacker.cookies.set("smartcity_session", planted)
    r = attacker.get("/en/account", follow_redirects=False)
    assert r.status_code == 303  # not signed in


def test_wrong_password_and_throttling(site: TestClient) -> None:
    r = login(site, password="wrong password 1")
    assert r.status_code == 400 and "The username or the password is not right." in r.text
    assert 'value="mod"' in r.text  # the username is kept, never the password
    assert "wrong password" not in r.text
    for n in range(4):
        login(site, password=f"wrong password {n + 2}")
    r = login(site)  # even the right password is refused while throttled
    assert r.status_code == 429
    found = re.search(r"Please try again in (\d+) minutes", r.text)
    assert found and 1 <= int(found.group(1)) <= 15
    r = login(site, prefix="sc")
    assert r.status_code == 429 and "分钟后再试" in r.text


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/api/v1/x", "/en/\\evil", "relative"]
)
def test_next_stays_on_the_site(site: TestClient, target: str) -> None:
    r = login(site, next_url=target)
    assert r.status_code == 303 and r.headers["location"] == "/en/account"


class Later:
    """The session store's clock, moved forward by the test."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def later(app: FastAPI) -> Later:
    clock = Later()
    app.state.site_sessions.clock = clock
    return clock


def test_idle_session_ends(site: TestClient, later: Later) -> None:
    assert login(site).status_code == 303
    assert site.get("/en/account").status_code == 200
    later.offset = SessionSettings().idle + 5
    r = site.get("/en/account", follow_redirects=True)
    assert "You were signed out after a period without activity." in r.text
    assert "Signed in as" not in r.text


def signed_in(client: TestClient) -> bool:
    r = client.get("/en/account", follow_redirects=False)
    assert r.status_code in (200, 303)
    return r.status_code == 200


def copy_of(app: FastAPI, client: TestClient) -> TestClient:
    """Another browser holding a copy of ``client``'s session cookie (stolen or kept)."""
    other = TestClient(app)
    other.cookies.set("smartcity_session", client.cookies["smartcity_session"])
    return other


def test_signing_out_ends_every_copy_of_the_session(app: FastAPI, site: TestClient) -> None:
    assert login(site).status_code == 303
    copy = copy_of(app, site)
    assert signed_in(copy)  # the same session, as long as it lasts
    account = site.get("/en/account").text
    r = site.post("/en/logout", data={"csrf": csrf(account)}, follow_redirects=False)
    assert r.status_code == 303
    # The cookie copied before signing out signs nobody in any more.
    assert not signed_in(copy)
    assert not signed_in(site)


def test_password_change_and_deactivation_end_every_session(
    app: FastAPI, site: TestClient, db: Database
) -> None:
    users = UserService(db)
    user = users.get_by_username("mod")
    assert user is not None
    assert login(site).status_code == 303
    laptop = TestClient(app)
    assert login(laptop).status_code == 303  # a second session of the same account
    copy = copy_of(app, site)
    users.set_password(user.id, "a brand new passphrase")
    assert not signed_in(site) and not signed_in(laptop) and not signed_in(copy)
    assert app.state.site_sessions.count(user.id) == 0
    # The new password signs in; deactivation ends that session too.
    assert login(site, password="a brand new passphrase").status_code == 303
    assert signed_in(site)
    users.deactivate(user.id)
    assert not signed_in(site)
    assert app.state.site_sessions.count(user.id) == 0


def test_session_lifetime_and_idle_time_are_settings(db: Database) -> None:
    UserService(db).create("mod", PASSWORD, "moderator")
    settings = Settings(
        database_url=db.url,
        auth_required=False,
        feedback=FeedbackSettings(secret="test-secret-" + "y" * 20),
        sessions=SessionSettings(lifetime=300, idle=120),
    )
    app = create_app(settings)
    clock = Later()
    app.state.site_sessions.clock = clock
    with TestClient(app) as client:
        assert login(client).status_code == 303
        for step in (100, 200):  # active every 100 s: within the idle time
            clock.offset = step
            assert signed_in(client)
        clock.offset = 301  # past the lifetime, however active
        assert not signed_in(client)
        assert login(client).status_code == 303
        clock.offset = 301 + 121  # idle too long
        assert not signed_in(client)


def test_session_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCITY_SESSION_LIFETIME", "7200")
    monkeypatch.setenv("SMARTCITY_SESSION_IDLE", "900")
    assert SessionSettings.from_env() == SessionSettings(lifetime=7200, idle=900)
    monkeypatch.setenv("SMARTCITY_SESSION_IDLE", "5")
    with pytest.raises(ValueError, match="at least 60"):
        SessionSettings.from_env()


def test_reading_a_session_writes_at_most_once_a_minute(
    app: FastAPI, site: TestClient, later: Later, db: Database
) -> None:
    assert login(site).status_code == 303

    def seen() -> int:
        with db.read() as conn:
            return int(conn.execute(select(portal_tables.sessions.c.seen_at)).scalar_one())

    first = seen()
    later.offset = 30
    assert signed_in(site) and seen() == first
    later.offset = 61
    assert signed_in(site) and seen() > first


def test_cookies_are_secure_over_https(app: FastAPI, db: Database) -> None:
    loader.load(db, load_blueprint())
    with TestClient(app, base_url="https://testserver") as client:
        r = login(client)
        assert r.status_code == 303
        assert "secure" in session_cookie(r).lower()
        token = csrf(client.get("/en/measures/mobility-12").text)
        r = client.post(
            "/en/measures/mobility-12",
            follow_redirects=False,
            data={"csrf": token, "form": "comment", "text": "Over https", "stance": "neutral"},
        )
        voter = next(c for c in r.headers.get_list("set-cookie") if "smartcity_voter=" in c)
        assert "secure" in voter.lower()


def test_the_api_gets_no_session_cookie(site: TestClient) -> None:
    r = site.get("/api/v1/measures")
    assert "smartcity_session" not in r.headers.get("set-cookie", "")
    assert "smartcity_session" in site.get("/en/login").headers.get("set-cookie", "")


def test_pages_of_a_session_are_never_stored_by_shared_caches(site: TestClient) -> None:
    client = site
    first = client.get("/en/measures/mobility-12")
    assert first.status_code == 200
    assert "smartcity_session" in first.headers.get("set-cookie", "")
    assert first.headers["cache-control"] == "private"
    again = client.get("/en/areas/mobility")  # the session cookie is sent back now
    assert again.headers["cache-control"] == "private"
    assert "cache-control" not in client.get("/api/v1/measures").headers  # the API: untouched
