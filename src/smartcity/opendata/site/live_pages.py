"""``/{en,tc,sc}/publish/live``: publish a hub entity type as a live city dataset in one
click, what ``smartcity opendata publish-type`` and the ``live_dataset_publish`` action do
(``CityDatasets.publish_type``, the same service function, with the signed-in editor as the
principal: the editor role in the organisation is needed, and publishing again refreshes the
dataset in place)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.opendata.errors import NotAuthorized, OpenDataError, ValidationFailed
from smartcity.opendata.runtime import OpenData
from smartcity.opendata.site import dataset_forms as forms
from smartcity.opendata.site.editing import (
    SLOT,
    PublisherDep,
    csrf_ok,
    expired,
    publish_crumbs,
    read_form,
    render,
    see_other,
)
from smartcity.opendata.site.editors import Editor, publishable
from smartcity.opendata.site.routes import OpenDataDep, base_url, data_lang, tr
from smartcity.web.accounts import site_accounts
from smartcity.web.i18n import Lang
from smartcity.web.pages import Crumb
from smartcity.web.routing import LangDep, page, post_page

router = APIRouter()
FORM_FIELDS = {"type", "owner_org", "visibility"}


def _page(
    request: Request,
    lang: Lang,
    od: OpenData,
    editor: Editor,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    title = tr(lang, "Publish live city data")
    organisations = publishable(od, editor, data_lang(lang), base_url(request))
    types = od.city.entity_types() if od.city_datasets is not None else []
    context = {
        "title": title,
        "values": values,
        "errors": errors or {},
        "type_options": [(name, f"{name} ({count})") for name, count in types],
        "organisation_options": [("", tr(lang, "The department of the feed that fills it"))]
        + [(o["name"], o["title"] or o["name"]) for o in organisations],
        "breadcrumbs": publish_crumbs(lang, Crumb(title)),
    }
    return render(request, lang, "live_form.html", context, status=status)


def _show(request: Request, lang: Lang, od: OpenData, editor: Editor) -> Response:
    return _page(request, lang, od, editor, {"visibility": "public"})


@page(router, "/publish/live")
async def live_page(
    request: Request, lang: LangDep, od: OpenDataDep, editor: PublisherDep
) -> Response:
    return await run_in_threadpool(_show, request, lang, od, editor)


def _publish(
    request: Request, lang: Lang, od: OpenData, editor: Editor, form: forms.Form
) -> Response:
    values = forms.posted_values(form)
    if not csrf_ok(request, form):
        return _page(request, lang, od, editor, values, expired(lang), 400)
    try:
        dataset = od.city.publish_type(
            editor.principal,
            base_url(request),
            forms.first(form, "type"),
            org=forms.first(form, "owner_org") or None,
            private=forms.first(form, "visibility") == "private",
        )
    except NotAuthorized:
        error = tr(lang, "You may not publish in that organisation.")
        return _page(request, lang, od, editor, values, {"owner_org": error}, 403)
    except ValidationFailed as exc:
        errors = forms.field_errors(exc, lambda msgid: tr(lang, msgid), FORM_FIELDS)
        return _page(request, lang, od, editor, values, errors, 400)
    except OpenDataError as exc:  # no hub in this process
        return _page(request, lang, od, editor, values, {"_form": exc.message}, 400)
    site_accounts(request).flash(
        request,
        SLOT,
        tr(lang, "Published as a live dataset: its files are made from the hub when asked for."),
    )
    return see_other(f"/{lang.prefix}/publish/dataset/{dataset['name']}#publish-message")


@post_page(router, "/publish/live")
async def publish_live(
    request: Request, lang: LangDep, od: OpenDataDep, editor: PublisherDep
) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_publish, request, lang, od, editor, form)
