"""Who is editing: the site's signed-in staff member as a catalogue principal.

A portal account and an API key's user are the same person when they have the same name: a
department's keys are created with its staff member's username (``smartcity keys create
NAME``), and roles are granted to that name (``organization_member_create``). So the editor
pages act as ``principal_for(username)``, with the roles the Action API gives that user's keys;
the audit trail names them "NAME (site)" where a key's writes say "NAME (key ID)". A portal
role (editor, admin) grants nothing in the catalogue by itself: catalogue roles are granted
per organisation, and sysadmins with ``smartcity opendata sysadmin add``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from smartcity.opendata.catalogue.access import Principal, principal_for
from smartcity.opendata.catalogue.organisations import ORGANIZATION
from smartcity.opendata.runtime import OpenData
from smartcity.web.accounts import site_accounts

SITE_ACTOR = "{name} (site)"  # how the audit trail names a write from these pages


@dataclass(frozen=True)
class Editor:
    """A signed-in staff member, as the catalogue sees them."""

    username: str
    display_name: str
    principal: Principal

    def may_edit(self, owner_org: str) -> bool:
        return self.principal.has_role(owner_org, "editor")

    @property
    def may_publish(self) -> bool:
        """Editor or admin somewhere (or a sysadmin): the publish pages are for them."""
        p = self.principal
        return p.sysadmin or any(p.has_role(org, "editor") for org in p.roles)


def signed_in(request: Request, od: OpenData) -> Editor | None:
    """The signed-in staff member with their catalogue roles (read once per request)."""
    if hasattr(request.state, "od_editor"):
        cached: Editor | None = request.state.od_editor
        return cached
    editor = None
    accounts = site_accounts(request)
    # The session exists only behind the site's session layer (the app serves these pages
    # there); anywhere else nobody is signed in.
    name = accounts.username(request) if "session" in request.scope else None
    if name is not None:
        with od.catalogue.db.read() as conn:
            principal = principal_for(
                conn, name, can_write=True, actor=SITE_ACTOR.format(name=name)
            )
        editor = Editor(name, accounts.display_name(request) or name, principal)
    request.state.od_editor = editor
    return editor


def publishable(od: OpenData, editor: Editor, lang: Any, base_url: str) -> list[dict[str, Any]]:
    """The organisations ``editor`` may publish in (all active ones for a sysadmin), by title."""
    listed = od.organisations.listing(
        ORGANIZATION,
        editor.principal,
        lang,
        base_url,
        all_fields=True,
        sort="title asc",
        limit=None,
        offset=0,
        names=None,
    )
    return [org for org in listed if editor.may_edit(org["id"])]


def account_bar(request: Request) -> dict[str, Any]:
    """What the open data pages' account bar shows (template ``account_bar.html``)."""
    od: OpenData = request.app.state.opendata
    editor = signed_in(request, od)
    if editor is None:
        return {"name": None}
    return {
        "name": editor.display_name,
        "may_publish": editor.may_publish,
        "csrf": site_accounts(request).csrf_token(request),
    }
