"""Who is signed in on the site, for features that do not own sign-in.

The portal owns staff accounts, sessions and CSRF (``portal/site/auth.py``); other features
(the open data portal's editor pages) need to know who is signed in without importing the
portal. The app puts an object with this interface on ``app.state.site_accounts``; a feature
reads it with ``site_accounts(request)``. Its methods need the site's session, so the pages
that use them are served behind the portal's session layer (``portal/site/sessions.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from fastapi import Request

from smartcity.web.i18n import Lang


class SiteAccounts(Protocol):
    def username(self, request: Request) -> str | None:
        """The signed-in staff member's username, or None."""

    def display_name(self, request: Request) -> str | None:
        """What to call the signed-in staff member (display name, else username)."""

    def csrf_token(self, request: Request) -> str:
        """A CSRF token for a form of this session."""

    def csrf_ok(self, request: Request, form: Mapping[str, Any]) -> bool:
        """Whether the form's ``csrf`` field belongs to this session and has not expired."""

    def flash(self, request: Request, slot: str, text: str) -> None:
        """A success message for the next page that shows ``slot``."""

    def take_flash(self, request: Request, slot: str) -> list[dict[str, Any]]:
        """The messages waiting for ``slot`` (each once)."""

    def login_url(self, lang: Lang, next_url: str) -> str:
        """The sign-in page, coming back to ``next_url``."""


class NoAccounts:
    """No sign-in (an app without the portal): nobody is ever signed in."""

    def username(self, request: Request) -> str | None:
        return None

    def display_name(self, request: Request) -> str | None:
        return None

    def csrf_token(self, request: Request) -> str:
        return ""

    def csrf_ok(self, request: Request, form: Mapping[str, Any]) -> bool:
        return False

    def flash(self, request: Request, slot: str, text: str) -> None:
        return None

    def take_flash(self, request: Request, slot: str) -> list[dict[str, Any]]:
        return []

    def login_url(self, lang: Lang, next_url: str) -> str:
        return f"/{lang.prefix}/"


# A feature's link in the portal's account bar for the signed-in user, or None (e.g. the open
# data portal's "Publish data" for its editors): (label in ``lang``, path). The app lists them
# on ``app.state.account_links``; the portal's account bar shows them.
AccountLink = Callable[[Request, Lang], "tuple[str, str] | None"]


def account_links(request: Request, lang: Lang) -> list[tuple[str, str]]:
    providers: list[AccountLink] = getattr(request.app.state, "account_links", [])
    return [link for provider in providers if (link := provider(request, lang)) is not None]


def site_accounts(request: Request) -> SiteAccounts:
    found: SiteAccounts = getattr(request.app.state, "site_accounts", None) or NoAccounts()
    return found
