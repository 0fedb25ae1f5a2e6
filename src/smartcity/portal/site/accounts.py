"""The portal's staff sign-in as other features see it (``smartcity.web.accounts``): the app
puts ``PortalAccounts()`` on ``app.state.site_accounts``, so the open data portal's editor
pages know who is signed in, and share the site's CSRF tokens and messages, without importing
the portal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request

from smartcity.portal.site import auth
from smartcity.web.i18n import Lang


class PortalAccounts:
    def username(self, request: Request) -> str | None:
        user = auth.current_user(request)
        return user.username if user is not None else None

    def display_name(self, request: Request) -> str | None:
        user = auth.current_user(request)
        return user.name if user is not None else None

    def csrf_token(self, request: Request) -> str:
        return auth.csrf_token(request)

    def csrf_ok(self, request: Request, form: Mapping[str, Any]) -> bool:
        token = form.get("csrf")
        return isinstance(token, str) and auth.csrf_ok(request, {"csrf": token})

    def flash(self, request: Request, slot: str, text: str) -> None:
        auth.flash(request, slot, text)

    def take_flash(self, request: Request, slot: str) -> list[dict[str, Any]]:
        return auth.take_flash(request, slot)

    def login_url(self, lang: Lang, next_url: str) -> str:
        return auth.login_url(lang, next_url)
