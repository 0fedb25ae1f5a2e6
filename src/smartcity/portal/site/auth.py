"""Sign-in for staff, and what every form of the site shares: sessions, CSRF, flash messages,
form parsing and the voter cookie.

The session cookie is Starlette's signed cookie, installed for the site's paths only (the APIs
never see it). It holds a random ``sid`` (CSRF tokens are bound to it), flash messages shown
once after a redirect, a voter's proven identity (``voter``, see ``voter_person``) and, once
signed in, the ``key`` of a server-side session (``portal/users/sessions.py``): whether the
key still signs someone in is decided by the database on every request, so signing out, a
password change or a deactivation ends every copy of the cookie. Signing in starts a new
session (new ``sid`` and ``key``), so a session planted before sign-in is worth nothing after.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from smartcity import __version__
from smartcity.hub.api.deps import hub
from smartcity.hub.text import NUL
from smartcity.portal.feedback.secret import Keyed
from smartcity.portal.feedback.service import FeedbackService
from smartcity.portal.site import MAX_FORM_BYTES
from smartcity.portal.site.routes import pages, tr
from smartcity.portal.users.model import User
from smartcity.portal.users.service import LoginThrottled, UserService
from smartcity.portal.users.sessions import SessionStore
from smartcity.web.i18n import Lang
from smartcity.web.pages import Crumb, lang_of_path
from smartcity.web.routing import LangDep, PageAnswer, current_lang, page, post_page

router = APIRouter()

VOTER_COOKIE = "smartcity_voter"  # the same cookie the feedback API reads
VOTER_PERSON = "voter"  # session key: the person a vote link proved (FeedbackService.email_person)
VOTER_MAX_AGE = 2 * 365 * 24 * 3600
ASSETS = Path(__file__).parent / "assets"
ASSET_FILES = {"interactive.css": "text/css", "interactive.js": "text/javascript"}


def feedback_service(request: Request) -> FeedbackService:
    service: FeedbackService = request.app.state.feedback
    return service


def session_id(request: Request) -> str:
    """The session's id, created on first use (a form needs it for its CSRF token)."""
    sid = request.session.get("sid")
    if not isinstance(sid, str) or len(sid) < 16:
        sid = secrets.token_urlsafe(18)
        request.session["sid"] = sid
    return sid


def csrf_token(request: Request) -> str:
    return feedback_service(request).mint_csrf(session_id(request))


def csrf_ok(request: Request, form: Mapping[str, str]) -> bool:
    sid = request.session.get("sid")
    return isinstance(sid, str) and feedback_service(request).verify_csrf(sid, form.get("csrf"))


def flash(request: Request, slot: str, text: str, kind: str = "success", **extra: Any) -> None:
    """A message for the next page that shows ``slot`` (feedback, editor, auth, moderation)."""
    messages = list(request.session.get("flash", []))[-5:]
    messages.append({"slot": slot, "kind": kind, "text": text, **extra})
    request.session["flash"] = messages


def take_flash(request: Request, slot: str) -> list[dict[str, Any]]:
    messages = list(request.session.get("flash", []))
    mine = [m for m in messages if m.get("slot") == slot]
    if mine:
        rest = [m for m in messages if m.get("slot") != slot]
        if rest:
            request.session["flash"] = rest
        else:
            request.session.pop("flash", None)
    return mine


# -- forms -------------------------------------------------------------------------------------


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body as {name: first value}; 413/415/400 as HTML error pages."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413)
    if ctype != "application/x-www-form-urlencoded" and (body or ctype):
        raise HTTPException(415)  # an empty form may come without a content type
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(400) from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        if NUL in key or NUL in value:  # PostgreSQL cannot store it (hub/text.py)
            raise HTTPException(400)
        form.setdefault(key, value)
    return form


def see_other(url: str) -> RedirectResponse:
    """POST → redirect → GET: 303 makes the browser fetch the next page with GET."""
    return RedirectResponse(url, status_code=303)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


# -- the voter cookie (a browser's first filter) and the voter's person ------------------------


def _voter_keyed(request: Request) -> Keyed:
    return feedback_service(request).keyed


def voter_token(request: Request) -> str | None:
    """The browser's voter token if its cookie carries our signature, else None."""
    raw = request.cookies.get(VOTER_COOKIE) or ""
    token, _, mac = raw.rpartition(".")
    if not token or len(raw) > 200:
        return None
    return raw if secrets.compare_digest(_voter_mac(request, token), mac) else None


def _voter_mac(request: Request, token: str) -> str:
    return _voter_keyed(request).sign("voter\x00" + token)[:32]


def new_voter_token(request: Request) -> str:
    token = secrets.token_urlsafe(24)
    return f"{token}.{_voter_mac(request, token)}"


def set_voter_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        VOTER_COOKIE,
        value,
        max_age=VOTER_MAX_AGE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def voter_person(request: Request) -> str | None:
    """Whom a vote from this browser counts for: the signed-in account, else the person an
    e-mail link proved in this session (``remember_voter``), else nobody yet."""
    user = current_user(request)
    if user is not None:
        return feedback_service(request).account_person(user.id)
    person = request.session.get(VOTER_PERSON)
    return person if isinstance(person, str) and len(person) == 64 else None


def remember_voter(request: Request, person: str) -> None:
    """After an e-mail link proved the voter: their next votes from here need no mail. Kept in
    the signed session cookie (a keyed hash, not the address)."""
    request.session[VOTER_PERSON] = person


# -- users -------------------------------------------------------------------------------------


def users(request: Request) -> UserService:
    service: UserService | None = getattr(request.app.state, "site_users", None)
    if service is None:
        service = UserService(hub(request).db)
        request.app.state.site_users = service
    return service


def site_sessions(request: Request) -> SessionStore:
    """The server-side sessions (the app builds them with its settings)."""
    store: SessionStore | None = getattr(request.app.state, "site_sessions", None)
    if store is None:
        store = SessionStore(hub(request).db)
        request.app.state.site_sessions = store
    return store


def current_user(request: Request) -> User | None:
    """The user the session's key signs in now (checked in the database on every request:
    an ended, revoked, timed-out or deactivated session signs nobody in)."""
    if hasattr(request.state, "user"):
        cached: User | None = request.state.user
        return cached
    user: User | None = None
    key = request.session.get("key")
    if key is not None:
        found = site_sessions(request).lookup(key)
        user = found.user
        if user is None:
            _fresh_session(request)
            if found.ended == "expired":
                flash(
                    request,
                    "auth",
                    tr(
                        current_lang(request),
                        "You were signed out after a period without activity. "
                        "Please sign in again.",
                    ),
                    "info",
                )
    request.state.user = user
    return user


def start_session(request: Request, user: User) -> None:
    """Sign in: a fresh session (new id and key) so nothing from before carries over."""
    keep = [m for m in request.session.get("flash", []) if m.get("slot") != "auth"]
    store = site_sessions(request)
    store.end(request.session.get("key"))
    key = store.start(user.id)
    request.session.clear()
    request.session.update({"sid": secrets.token_urlsafe(18), "key": key})
    if keep:
        request.session["flash"] = keep
    request.state.user = user


def end_session(request: Request) -> None:
    """Sign out: the server forgets the session, so copies of the cookie sign nobody in."""
    site_sessions(request).end(request.session.get("key"))
    _fresh_session(request)


def _fresh_session(request: Request) -> None:
    request.session.clear()
    request.session["sid"] = secrets.token_urlsafe(18)
    request.state.user = None


def login_url(lang: Lang, next_url: str) -> str:
    return f"/{lang.prefix}/login?next={quote(next_url, safe='/')}"


def _signed_in_with(roles: tuple[str, ...] | None) -> Callable[..., User]:
    """A page dependency: the signed-in user with one of ``roles`` (any role when None).
    Anyone else is answered (``PageAnswer``) with the sign-in redirect, or the 403 page naming
    the role, before the handler runs: so before a form is read, whatever its type or size."""

    def guard(request: Request, lang: LangDep) -> User:
        user = current_user(request)
        if user is None:
            raise PageAnswer(see_other(login_url(lang, request.url.path)))
        if roles is not None and user.role not in roles:
            raise PageAnswer(access_denied(request, lang, role_refusal(lang, user, roles)))
        return user

    return guard


# A staff page's parameter, declared once per handler: ``user: EditorDep``.
SignedInDep = Annotated[User, Depends(_signed_in_with(None))]
EditorDep = Annotated[User, Depends(_signed_in_with(("editor", "admin")))]
ModeratorDep = Annotated[User, Depends(_signed_in_with(("moderator", "admin")))]


ROLE_NAMES = {"admin": "administrators", "editor": "editors", "moderator": "moderators"}


def role_refusal(lang: Lang, user: User, roles: tuple[str, ...]) -> str:
    """Why a role may not use a page: "This page is for editors and administrators; your
    account is a moderator account." """
    if set(roles) == {"editor", "admin"}:
        needed = tr(lang, "This page is for editors and administrators.")
    elif set(roles) == {"moderator", "admin"}:
        needed = tr(lang, "This page is for moderators and administrators.")
    else:
        needed = tr(lang, "This page is for administrators.")
    mine = {
        "admin": tr(lang, "Your account is an administrator account."),
        "editor": tr(lang, "Your account is an editor account."),
        "moderator": tr(lang, "Your account is a moderator account."),
    }.get(user.role, "")
    return f"{needed} {mine}".strip()


def access_denied(request: Request, lang: Lang, reason: str | None = None) -> Response:
    """The 403 page, saying the real ``reason`` (the wrong role, another department's
    measure ...) when the caller knows it."""
    return pages.render(
        request,
        "access_denied.html",
        {
            "title": tr(lang, "You cannot use this page"),
            "reason": reason,
            "account": account_context(request),
            "breadcrumbs": [],
        },
        status_code=403,
    )


def form_expired(request: Request, lang: Lang) -> Response:
    """A form whose CSRF token is missing, expired or from another session: nothing done."""
    return pages.render(
        request,
        "form_expired.html",
        {"title": tr(lang, "The form had expired"), "account": account_context(request)},
        status_code=400,
    )


def safe_next(raw: str | None, lang: Lang) -> str:
    """Only a path on this site's pages: never another host (open redirect)."""
    default = f"/{lang.prefix}/account"
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return default
    if lang_of_path(raw) is None or any(ord(c) < 32 for c in raw):
        return default
    return raw


def account_context(request: Request) -> dict[str, Any]:
    """What the account bar shows: the user (or None) and a CSRF token for signing out."""
    user = current_user(request)
    return {"user": user, "csrf": csrf_token(request) if user else ""}


def assets_tags(request: Request) -> Markup:
    """The site's form styles and script, once per page (sections add them inside <body>)."""
    if getattr(request.state, "assets_included", False):
        return Markup("")
    request.state.assets_included = True
    return Markup(
        f'<link rel="stylesheet" href="/site-assets/interactive.css?v={__version__}">'
        f'<script src="/site-assets/interactive.js?v={__version__}" defer></script>'
    )


@router.get("/site-assets/{name}", include_in_schema=False)
def asset(name: str) -> Response:
    if name not in ASSET_FILES:
        raise HTTPException(404)
    return FileResponse(
        ASSETS / name,
        media_type=ASSET_FILES[name],
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


# -- pages -------------------------------------------------------------------------------------


def render_login(
    request: Request,
    lang: Lang,
    next_url: str,
    *,
    username: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return pages.render(
        request,
        "login.html",
        {
            "title": tr(lang, "Sign in"),
            "next": next_url,
            "username": username,
            "error": error,
            "csrf": csrf_token(request),
            "messages": take_flash(request, "auth"),
            "account": account_context(request),
            "breadcrumbs": [
                Crumb(tr(lang, "Home"), f"/{lang.prefix}/"),
                Crumb(tr(lang, "Sign in")),
            ],
        },
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


@page(router, "/login")
def login_page(request: Request, lang: LangDep) -> Response:
    next_url = safe_next(request.query_params.get("next"), lang)
    if current_user(request) is not None and "next" in request.query_params:
        return see_other(next_url)
    return render_login(request, lang, next_url)


def _login(request: Request, lang: Lang, form: dict[str, str]) -> Response:
    next_url = safe_next(form.get("next"), lang)
    username = form.get("username", "").strip()[:255]
    password = form.get("password", "")
    if not csrf_ok(request, form):
        error = tr(lang, "The form had expired. Please sign in again.")
        return render_login(
            request, lang, next_url, username=username, error=error, status_code=400
        )
    if not username or not password:
        error = tr(lang, "Enter your username and your password.")
        return render_login(
            request, lang, next_url, username=username, error=error, status_code=400
        )
    try:
        user = users(request).authenticate(username, password)
    except LoginThrottled as exc:
        minutes = max(1, -(-exc.retry_after // 60))
        error = tr(
            lang,
            "Too many failed sign-in attempts for this username. Please try again "
            "in %(minutes)s minutes.",
        ) % {"minutes": minutes}
        return render_login(
            request, lang, next_url, username=username, error=error, status_code=429
        )
    if user is None:
        error = tr(lang, "The username or the password is not right.")
        return render_login(
            request, lang, next_url, username=username, error=error, status_code=400
        )
    start_session(request, user)
    return see_other(next_url)


@post_page(router, "/login")
async def login_submit(request: Request, lang: LangDep) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_login, request, lang, form)


@post_page(router, "/logout")
async def logout_submit(request: Request, lang: LangDep) -> Response:
    form = await read_form(request)
    if not csrf_ok(request, form):
        return form_expired(request, lang)
    end_session(request)
    flash(request, "auth", tr(lang, "You have signed out."), "success")
    return see_other(f"/{lang.prefix}/login")
