"""Browser fixtures: a real server process on a temporary SQLite database with the blueprint
loaded, and Debian's Chromium driven by Playwright (no browser download: executable_path).

Reuse in any browser test: ``server`` (base URL), ``browser``, ``page`` (a fresh page in a
fresh context, English locale, 1280x900) and ``offline_page`` (the same, refusing and
recording every request to another host: ``page.outside``). Tests skip, saying why, when
/usr/bin/chromium or the playwright package is missing; CI installs both.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from tests.listening import listening_socket, port_of

CHROMIUM = os.environ.get("SMARTCITY_CHROMIUM", "/usr/bin/chromium")

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium "
        "fonts-noto-cjk; scripts/services does) to run the browser tests",
        allow_module_level=True,
    )
playwright_api = pytest.importorskip("playwright.sync_api")


def _smartcity(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smartcity", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# Staff accounts the server starts with (portal flows: editing, moderation); one password.
STAFF_PASSWORD = "browser-tests-password"
STAFF = {
    "moderator": ("mod", "--role", "moderator", "--display-name", "Mo Moderator"),
    "editor": ("td-editor", "--role", "editor", "--department", "TD", "--display-name", "Tam"),
}
# Two reports hide a comment on the test server, so two browser contexts can hide one.
REPORTS_TO_HIDE = 2


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """``smartcity serve --no-auth`` on a free port, database migrated and blueprint loaded."""
    # Its own temp folder: pytest's basetemp may be pruned by a concurrent pytest session.
    home = Path(tempfile.mkdtemp(prefix="smartcity-browser-"))
    url = f"sqlite:///{home / 'smartcity.db'}"
    env = {
        **os.environ,
        "SMARTCITY_HOME": str(home),
        "SMARTCITY_DATABASE_URL": url,
        "SMARTCITY_FEEDBACK_REPORTS_TO_HIDE": str(REPORTS_TO_HIDE),
    }
    upgrade = _smartcity("db", "upgrade", env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    loaded = _smartcity("blueprint", "load", env=env)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    for account in STAFF.values():
        made = _smartcity(
            "users", "create", *account, "--password-stdin", env=env, stdin=STAFF_PASSWORD
        )
        assert made.returncode == 0, made.stdout + made.stderr
    try:
        with serve(env, home) as base:
            yield base
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def serve(env: dict[str, str], home: Path) -> Iterator[str]:
    """``smartcity serve --no-auth`` with ``env`` on a free loopback port, its log in
    ``home/server.log``; yields its base URL once /healthz answers."""
    sock = listening_socket()
    port = port_of(sock)
    log = (home / "server.log").open("w")
    with sock:  # the child has its own copy of the listening socket
        proc = subprocess.Popen(
            [sys.executable, "-m", "smartcity", "serve", "--no-auth",
             "--fd", str(sock.fileno()), "--log-level", "warning"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(sock.fileno(),),
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {(home / 'server.log').read_text()}")
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def smartcity_server() -> Callable[[dict[str, str], Path], contextlib.AbstractContextManager[str]]:
    """``serve`` for tests that need a server with their own environment (e.g. MQTT)."""
    return serve


@pytest.fixture(scope="session")
def smartcity_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``_smartcity``: run a CLI command with an environment."""
    return _smartcity


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as pw:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def offline_page(browser: Any) -> Any:
    """A page whose requests to any host but the test server are refused and recorded."""
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    outside: list[str] = []

    def only_local(route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost") or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.outside = outside
    yield page
    context.close()
