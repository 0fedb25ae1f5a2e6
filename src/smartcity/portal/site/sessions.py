"""The site's sessions: Starlette's signed cookie around the portal's own routes. Whether it
signs someone in is decided by a server-side record (``portal/users/sessions.py``, see
``auth.current_user``); the cookie itself carries only the record's key, a CSRF id, one-time
messages and a proven voter.

Only the portal's pages and forms (/en, /tc, /sc) carry a session, so the session layer wraps
the portal's router (``SiteBranch``, one route of the app) instead of sitting in front of the
whole app as a middleware: the hub's API, device ingestion and the dashboard never pass
through it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartcity.web.pages import lang_of_path

SESSION_COOKIE = "smartcity_session"
SESSION_MAX_AGE = 7 * 24 * 3600  # since the cookie last changed; a sign-in ends sooner


def session_secret(scope: Scope) -> str:
    """The signing key, derived from the server secret of the app serving the request."""
    key: str = scope["app"].state.feedback.keyed.digest("site-session", "v1")
    return key


class SiteSessions:
    """Starlette's SessionMiddleware on the site's paths (/en, /tc, /sc) only, with the
    ``Secure`` flag when the request came over https (behind a proxy: uvicorn's proxy headers).
    The signing key is derived from the server secret on first use."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._plain: SessionMiddleware | None = None
        self._secure: SessionMiddleware | None = None

    def _middleware(self, scope: Scope, https: bool) -> SessionMiddleware:
        if self._plain is None or self._secure is None:
            store = getattr(scope["app"].state, "site_sessions", None)
            lifetime = store.settings.lifetime if store is not None else 0
            options: dict[str, Any] = {
                "secret_key": session_secret(scope),
                "session_cookie": SESSION_COOKIE,
                # The cookie never ends a sign-in before the server does.
                "max_age": max(SESSION_MAX_AGE, lifetime),
                "same_site": "lax",
            }
            self._plain = SessionMiddleware(self.app, https_only=False, **options)
            self._secure = SessionMiddleware(self.app, https_only=True, **options)
        return self._secure if https else self._plain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or lang_of_path(scope.get("path", "")) is None:
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        has_session = any(
            name == b"cookie" and SESSION_COOKIE.encode() in value
            for name, value in scope.get("headers", [])
        )
        session = self._middleware(scope, https)
        await session(scope, receive, _private_when_personal(send, has_session))


class SiteBranch(BaseRoute):
    """The portal's router as one route of the app, behind the session layer.

    It matches a request when one of the router's routes does (the portal's pages under /en,
    /tc and /sc, and its assets); the router then dispatches it as usual, inside
    ``SiteSessions``. It is the app's last route, so only requests no other route took get
    here.
    Why not a route class whose handler is wrapped: FastAPI builds the handlers of included
    routers itself (``get_route_handler``), below the ASGI level where sessions live."""

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self.app = SiteSessions(router)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # Any route of the portal's router, not only the language paths: its assets
        # (/site-assets/...) are served here too, without a session (SiteSessions skips them).
        if scope["type"] != "http":
            return Match.NONE, {}
        found = Match.NONE
        for route in self.router.routes:
            match, _child = route.matches(scope)
            if match == Match.FULL:
                return Match.FULL, {}
            if match == Match.PARTIAL:  # the path, not the method: the router answers 405
                found = Match.PARTIAL
        return found, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def include_site(app: FastAPI, router: APIRouter) -> None:
    """Add the portal's site (``router``) to ``app``, with its sessions."""
    app.router.routes.append(SiteBranch(router))


def _private_when_personal(send: Send, has_session: bool) -> Send:
    """A page that belongs to a session (it carries a CSRF token or a flash message, or sets
    the session cookie) must never be stored by a shared cache: mark it ``private``."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {name.lower() for name, _ in headers}
            if b"cache-control" not in names and (has_session or b"set-cookie" in names):
                headers.append((b"cache-control", b"private"))
                message = {**message, "headers": headers}
        await send(message)

    return wrapped
