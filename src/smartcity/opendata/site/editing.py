"""What the editor pages share: who may use them (checked on every GET and POST, not only
by hiding links), reading their forms, and rendering their pages and refusals.

Every page declares its guard once, as a typed dependency: ``editor: PublisherDep`` (signed
in, and editor or admin in an organisation, or a sysadmin) or, for a dataset,
``target: EditableDep`` (its organisation's editor or admin). A guard that refuses answers with
the sign-in redirect or a 403 page (``PageAnswer``) before the handler runs, so before a form
or an upload is read. The catalogue service checks the same roles again when it writes, so a
page that forgot would still be refused there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from smartcity.hub.text import NUL
from smartcity.opendata.errors import NotFound
from smartcity.opendata.site.dataset_forms import Form
from smartcity.opendata.site.editors import Editor, signed_in
from smartcity.opendata.site.routes import OpenDataDep, base_url, crumbs, data_lang, pages, tr
from smartcity.web.accounts import site_accounts
from smartcity.web.i18n import Lang
from smartcity.web.pages import Crumb
from smartcity.web.routing import LangDep, PageAnswer

SLOT = "publish"  # the slot of these pages' one-time messages
MAX_FIELDS = 200


def publish_crumbs(lang: Lang, *more: Crumb) -> list[Crumb]:
    return crumbs(
        lang, Crumb(tr(lang, "Publish data"), f"/{lang.prefix}/publish" if more else None), *more
    )


def see_other(url: str) -> RedirectResponse:
    """Post/Redirect/Get: 303 makes the browser fetch the next page with GET."""
    return RedirectResponse(url, status_code=303)


def render(
    request: Request,
    lang: Lang,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> Response:
    accounts = site_accounts(request)
    full = {
        "nav_key": "data",
        "csrf": accounts.csrf_token(request),
        "messages": accounts.take_flash(request, SLOT),
        "errors": {},
        **context,
    }
    # A page of someone's own session: never kept by a cache, shared or not.
    headers = {"Cache-Control": "no-store"}
    return pages.render(request, template, full, lang=lang, status_code=status, headers=headers)


def refused(request: Request, lang: Lang, reason: str) -> Response:
    """The 403 page, saying why and what role would do."""
    title = tr(lang, "You cannot use this page")
    context = {"title": title, "reason": reason, "breadcrumbs": publish_crumbs(lang, Crumb(title))}
    return render(request, lang, "publish_refused.html", context, status=403)


def publisher(request: Request, lang: LangDep, od: OpenDataDep) -> Editor:
    """Page dependency: the signed-in editor. Anyone else gets the sign-in redirect, or a 403
    page naming the role the account lacks."""
    editor = signed_in(request, od)
    if editor is None:
        raise PageAnswer(see_other(site_accounts(request).login_url(lang, request.url.path)))
    if editor.may_publish:
        return editor
    if editor.principal.roles:  # a member somewhere: may read private datasets, not edit
        reason = tr(
            lang,
            "Your account %(name)s is a member of its organisations, which lets it see their "
            "private datasets but not publish. Publishing needs the editor or admin role in "
            "an organisation.",
        )
    else:
        reason = tr(
            lang,
            "Your account %(name)s has no role in any organisation of the open data portal. "
            "Publishing needs the editor or admin role in an organisation.",
        )
    reason += " " + tr(lang, "An admin of your organisation can grant it.")
    raise PageAnswer(refused(request, lang, reason % {"name": editor.username}))


# An editor page's parameter: ``editor: PublisherDep``.
PublisherDep = Annotated[Editor, Depends(publisher)]


@dataclass(frozen=True)
class Editable:
    """A dataset the signed-in editor may change, as its editors see it (private and draft
    states included)."""

    editor: Editor
    package: dict[str, Any]


def editable(
    request: Request, name: str, lang: LangDep, od: OpenDataDep, editor: PublisherDep
) -> Editable:
    """Page dependency for ``/publish/{name}/...``: the dataset ``name``; a 404 when there is
    none the editor may see, or a 403 page when it is another organisation's."""
    try:
        package = od.catalogue.package_show(
            editor.principal, data_lang(lang), base_url(request), name
        )
    except NotFound:
        raise HTTPException(404) from None
    if not editor.may_edit(package["owner_org"]):
        org = package.get("organization") or {}
        reason = tr(
            lang,
            "“%(dataset)s” is published by %(organisation)s, where your account %(name)s is "
            "not an editor or admin, so you cannot change it.",
        ) % {
            "dataset": package.get("title") or package["name"],
            "organisation": org.get("title") or org.get("name") or "",
            "name": editor.username,
        }
        raise PageAnswer(refused(request, lang, reason))
    return Editable(editor, package)


# A dataset editor page's parameter: ``target: EditableDep``.
EditableDep = Annotated[Editable, Depends(editable)]


async def read_form(request: Request) -> dict[str, list[str]]:
    """An urlencoded form as {name: [values]} (the app's edge has capped its size)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if ctype != "application/x-www-form-urlencoded" and (body or ctype):
        raise HTTPException(415)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(400) from exc
    form: dict[str, list[str]] = {}
    for key, value in pairs:
        if NUL in key or NUL in value:  # PostgreSQL cannot store it (hub/text.py)
            raise HTTPException(400)
        form.setdefault(key, []).append(value)
    return form


def csrf_ok(request: Request, form: Form) -> bool:
    token = (form.get("csrf") or [""])[0]
    return site_accounts(request).csrf_ok(request, {"csrf": token})


def expired(lang: Lang) -> dict[str, str]:
    """The form-level error of a form whose CSRF token is missing or expired."""
    return {
        "_form": tr(
            lang,
            "This form had expired, so nothing was saved. What you entered is kept below: "
            "please send it again.",
        )
    }
