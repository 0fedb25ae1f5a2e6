"""Issue #11, the portal's sessions and client addresses, against real ``smartcity serve``
processes on each backend:

* a session cookie copied before signing out no longer opens a page, nor changes a measure's
  progress in the signed-out editor's name (the finding: 0 → 77 %);
* ``X-Forwarded-For`` is believed only from configured proxies: rotated from 127.0.0.1 it no
  longer defeats a per-IP limit by default, and it is honoured once 127.0.0.1 is a proxy.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator

import httpx
import pytest
from tests.hostile.harness import CLI, Server, cli, serve
from typer.testing import CliRunner

from smartcity.cli.main import app as smartcity_cli

PASSWORD = "hostile-sessions-password"
MEASURE = "mobility-01"  # owned by the Transport Department (TD)
# A small per-IP limit on privacy requests: the cheapest public write that counts addresses.
PRIVACY_IP_LIMIT = 3
LIMITED = {"SMARTCITY_FEEDBACK_RATE_PRIVACY_IP": f"{PRIVACY_IP_LIMIT}/3600"}


@pytest.fixture(scope="module")
def editor(database_url: str) -> str:
    """An editor of TD on a database with the blueprint loaded; returns the username."""
    cli("blueprint", "load", "--database", database_url)
    username = f"td-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [*CLI, "users", "create", username, "--role", "editor", "--department", "TD",
         "--password-stdin", "--database", database_url],
        input=PASSWORD, capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return username


@pytest.fixture(scope="module")
def server(database_url: str, editor: str) -> Iterator[Server]:
    """The default configuration (no trusted proxy), with a small per-IP limit."""
    with serve(database_url, env=LIMITED) as running:
        yield running


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:300]
    return found.group(1)


def progress_of(http: httpx.Client) -> float:
    r = http.get(f"/api/v1/measures/{MEASURE}")
    assert r.status_code == 200, r.text
    return float(r.json()["progress"])


def set_progress(http: httpx.Client, token: str, value: int) -> httpx.Response:
    form = {"csrf": token, "form": "progress", "status": "in_progress", "progress": str(value)}
    return http.post(f"/en/measures/{MEASURE}/edit", data=form)


def test_a_cookie_copied_before_signing_out_is_refused(server: Server, editor: str) -> None:
    with server.client() as browser:
        login = csrf(browser.get("/en/login").text)
        r = browser.post(
            "/en/login",
            data={"csrf": login, "username": editor, "password": PASSWORD, "next": "/en/account"},
        )
        assert (r.status_code, r.headers.get("location")) == (303, "/en/account")
        copied = browser.cookies["smartcity_session"]
        token = csrf(browser.get(f"/en/measures/{MEASURE}/edit").text)
        # While signed in, the session (and this very form) changes the progress.
        r = set_progress(browser, token, 10)
        assert r.status_code == 303 and r.headers["location"].endswith("#status-message")
        assert progress_of(browser) == 10
        account = browser.get("/en/account").text
        r = browser.post("/en/logout", data={"csrf": csrf(account)})
        assert (r.status_code, r.headers["location"]) == (303, "/en/login")

    with server.client(cookies={"smartcity_session": copied}) as thief:
        r = thief.get("/en/account")
        assert r.status_code == 303 and r.headers["location"].startswith("/en/login")
        # The form token minted for the copied session is still well-formed; the session
        # behind it is gone, so nothing changes and nobody is credited.
        r = set_progress(thief, token, 77)
        assert r.status_code == 303 and r.headers["location"].startswith("/en/login")
        assert progress_of(thief) == 10
        timeline = thief.get(f"/api/v1/measures/{MEASURE}/timeline").json()
        assert not [e for e in timeline if e["field"] == "progress" and e["new"] == 77]


def privacy_requests(server: Server, count: int) -> list[int]:
    """``count`` privacy requests from 127.0.0.1, each claiming another address."""
    statuses = []
    with server.client() as http:
        for n in range(count):
            mark = uuid.uuid4().hex[:8]
            headers = {"X-Forwarded-For": f"198.18.{n}.{int(mark[:2], 16)}"}
            r = http.post(
                "/api/v1/privacy/requests",
                json={"email": f"p{mark}@example.org", "action": "export"},
                headers=headers,
            )
            assert r.status_code in (202, 429), r.text
            statuses.append(r.status_code)
    return statuses


def test_a_rotated_x_forwarded_for_does_not_defeat_the_per_ip_limit(server: Server) -> None:
    statuses = privacy_requests(server, PRIVACY_IP_LIMIT + 3)
    # Whatever X-Forwarded-For says, the requests come from 127.0.0.1: one address, one limit.
    assert statuses.count(202) <= PRIVACY_IP_LIMIT
    assert statuses[-3:] == [429, 429, 429]


def test_x_forwarded_for_is_honoured_from_a_configured_proxy(database_url: str) -> None:
    env = {**LIMITED, "SMARTCITY_TRUSTED_PROXIES": "127.0.0.1"}
    with serve(database_url, env=env) as proxied:
        statuses = privacy_requests(proxied, PRIVACY_IP_LIMIT + 3)
        # Each request carries another client's address from a trusted proxy: each is its
        # own client, none reaches the limit.
        assert statuses == [202] * (PRIVACY_IP_LIMIT + 3)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SMARTCITY_TRUSTED_PROXIES": "proxy.lan"}, "'proxy.lan' is not an IP address"),
        ({"SMARTCITY_SESSION_IDLE": "half an hour"}, "SMARTCITY_SESSION_IDLE are whole seconds"),
        ({"SMARTCITY_SESSION_LIFETIME": "30"}, "at least 60"),
    ],
)
def test_unusable_settings_stop_serve_with_a_message(env: dict[str, str], message: str) -> None:
    result = CliRunner().invoke(smartcity_cli, ["serve", "--port", "1"], env=env)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
