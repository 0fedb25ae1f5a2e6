"""The editor pages for datasets: ``/{en,tc,sc}/publish`` lists the organisations the
signed-in editor publishes for and their datasets (private and draft ones too);
``/publish/new`` creates a dataset, ``/publish/dataset/{name}`` edits one and lists its
resources, ``/publish/dataset/{name}/delete`` deletes it after asking.

Every write goes through the catalogue service's ``package_create``, ``package_patch`` and
``package_delete``, the Action API's own, with the editor as the principal: the same checks,
the same messages, the same audit trail. Forms work without JavaScript and follow
Post/Redirect/Get.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.opendata.catalogue.organisations import GROUP
from smartcity.opendata.catalogue.reference import FREQUENCIES
from smartcity.opendata.errors import NotAuthorized, ValidationFailed
from smartcity.opendata.runtime import OpenData
from smartcity.opendata.search.engine import SearchRequest
from smartcity.opendata.site import dataset_forms as forms
from smartcity.opendata.site.editing import (
    SLOT,
    Editable,
    EditableDep,
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
from smartcity.web.nav import N_
from smartcity.web.pages import Crumb
from smartcity.web.routing import LangDep, page, post_page

router = APIRouter()
MAX_LISTED = 500  # datasets listed per organisation on the publish page
FREQUENCY_LABELS = {
    "continuous": N_("Continuously (real time)"),
    "hourly": N_("Hourly"),
    "daily": N_("Daily"),
    "weekly": N_("Weekly"),
    "fortnightly": N_("Fortnightly"),
    "monthly": N_("Monthly"),
    "quarterly": N_("Quarterly"),
    "biannual": N_("Twice a year"),
    "annual": N_("Yearly"),
    "irregular": N_("Irregularly"),
    "as-needed": N_("When needed"),
    "never": N_("Never (no more updates)"),
    "unknown": N_("Not known"),
}
FORM_FIELDS = {
    *forms.PLAIN_FIELDS,
    *(f"{field}_{lang}" for field in ("title", "notes") for lang, _ in forms.TEXT_LANGS),
    "tag_string",
    "groups",
    "visibility",
    "publication",
}


# -- the publish page --------------------------------------------------------------------------


def _datasets_of(od: OpenData, editor: Editor, lang: Lang, base: str, org: str) -> dict[str, Any]:
    search = SearchRequest(
        fq=[f'organization:"{org}"'],
        sort="metadata_modified desc",
        rows=MAX_LISTED,
        include_private=True,
        include_drafts=True,
        lang=data_lang(lang),
    )
    return od.catalogue.package_search(editor.principal, base, search)


def _publish(request: Request, lang: Lang, od: OpenData, editor: Editor) -> Response:
    base = base_url(request)
    organisations = [
        {**org, "found": _datasets_of(od, editor, lang, base, org["name"])}
        for org in publishable(od, editor, data_lang(lang), base)
    ]
    title = tr(lang, "Publish data")
    context = {
        "title": title,
        "editor": editor,
        "organisations": organisations,
        "breadcrumbs": publish_crumbs(lang),
    }
    return render(request, lang, "publish.html", context)


@page(router, "/publish")
async def publish_page(
    request: Request, lang: LangDep, od: OpenDataDep, editor: PublisherDep
) -> Response:
    return await run_in_threadpool(_publish, request, lang, od, editor)


# -- the dataset form --------------------------------------------------------------------------


def _form_page(
    request: Request,
    lang: Lang,
    od: OpenData,
    editor: Editor,
    *,
    values: dict[str, Any],
    package: dict[str, Any] | None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    base = base_url(request)
    organisations = publishable(od, editor, data_lang(lang), base)
    groups = od.organisations.listing(
        GROUP, editor.principal, data_lang(lang), base,
        all_fields=True, sort="title asc", limit=None, offset=0, names=None,
    )  # fmt: skip
    licences = od.catalogue.license_list(data_lang(lang))
    if package is None:
        title = tr(lang, "Add a dataset")
        action = f"/{lang.prefix}/publish/new"
        trail = publish_crumbs(lang, Crumb(title))
    else:
        title = tr(lang, "Edit the dataset")
        action = f"/{lang.prefix}/publish/dataset/{package['name']}"
        trail = publish_crumbs(lang, Crumb(package["title"] or package["name"]))
    context = {
        "title": title,
        "package": package,
        "action": action,
        "values": values,
        "errors": errors or {},
        "text_langs": forms.TEXT_LANGS,
        "organisation_options": [(o["name"], o["title"] or o["name"]) for o in organisations],
        "group_options": [(g["name"], g["title"] or g["name"]) for g in groups],
        "licence_options": [("", tr(lang, "Not stated"))]
        + [(lic["id"], lic["title"]) for lic in licences],
        "frequency_options": [("", tr(lang, "Not stated"))]
        + [(f, tr(lang, FREQUENCY_LABELS[f])) for f in FREQUENCIES],
        "breadcrumbs": trail,
    }
    return render(request, lang, "dataset_form.html", context, status=status)


def _new(request: Request, lang: Lang, od: OpenData, editor: Editor) -> Response:
    chosen = request.query_params.get("organization") or ""
    values = {"owner_org": chosen, "visibility": "public", "publication": "active", "groups": []}
    return _form_page(request, lang, od, editor, values=values, package=None)


@page(router, "/publish/new")
async def new_dataset(
    request: Request, lang: LangDep, od: OpenDataDep, editor: PublisherDep
) -> Response:
    return await run_in_threadpool(_new, request, lang, od, editor)


def _errors(lang: Lang, exc: ValidationFailed | NotAuthorized) -> dict[str, str]:
    if isinstance(exc, NotAuthorized):  # an organisation the editor may not publish in
        return {"owner_org": tr(lang, "You may not publish in that organisation.")}
    return forms.field_errors(exc, lambda msgid: tr(lang, msgid), FORM_FIELDS)


def _status(exc: ValidationFailed | NotAuthorized) -> int:
    return 403 if isinstance(exc, NotAuthorized) else 400


def _create(
    request: Request, lang: Lang, od: OpenData, editor: Editor, form: forms.Form
) -> Response:
    values = forms.posted_values(form)
    if not csrf_ok(request, form):
        return _form_page(request, lang, od, editor, values=values, package=None,
                          errors=expired(lang), status=400)  # fmt: skip
    try:
        created = od.catalogue.package_create(
            editor.principal, data_lang(lang), base_url(request), forms.dataset_data(form)
        )
    except (ValidationFailed, NotAuthorized) as exc:
        return _form_page(request, lang, od, editor, values=values, package=None,
                          errors=_errors(lang, exc), status=_status(exc))  # fmt: skip
    site_accounts(request).flash(
        request,
        SLOT,
        tr(lang, "The dataset was created. Now add its data: a link or a file."),
    )
    return see_other(f"/{lang.prefix}/publish/dataset/{created['name']}#publish-message")


@post_page(router, "/publish/new")
async def create_dataset(
    request: Request, lang: LangDep, od: OpenDataDep, editor: PublisherDep
) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_create, request, lang, od, editor, form)


def _edit(request: Request, lang: Lang, od: OpenData, target: Editable) -> Response:
    values = forms.dataset_values(target.package)
    return _form_page(request, lang, od, target.editor, values=values, package=target.package)


@page(router, "/publish/dataset/{name}")
async def edit_dataset(
    request: Request, lang: LangDep, od: OpenDataDep, target: EditableDep
) -> Response:
    return await run_in_threadpool(_edit, request, lang, od, target)


def _update(
    request: Request, lang: Lang, od: OpenData, target: Editable, form: forms.Form
) -> Response:
    editor, package = target.editor, target.package
    values = forms.posted_values(form)
    if not csrf_ok(request, form):
        return _form_page(request, lang, od, editor, values=values, package=package,
                          errors=expired(lang), status=400)  # fmt: skip
    # package_patch: the fields the form does not show (spatial coverage, the data
    # dictionary, extras, resources) stay as they are.
    data = {**forms.dataset_data(form), "id": package["id"]}
    try:
        saved = od.catalogue.package_patch(
            editor.principal, data_lang(lang), base_url(request), data
        )
    except (ValidationFailed, NotAuthorized) as exc:
        return _form_page(request, lang, od, editor, values=values, package=package,
                          errors=_errors(lang, exc), status=_status(exc))  # fmt: skip
    site_accounts(request).flash(request, SLOT, tr(lang, "Your changes were saved."))
    return see_other(f"/{lang.prefix}/publish/dataset/{saved['name']}#publish-message")


@post_page(router, "/publish/dataset/{name}")
async def update_dataset(
    request: Request, lang: LangDep, od: OpenDataDep, target: EditableDep
) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_update, request, lang, od, target, form)


# -- deleting ----------------------------------------------------------------------------------


def _delete_page(
    request: Request, lang: Lang, od: OpenData, target: Editable, form: forms.Form | None
) -> Response:
    editor, package = target.editor, target.package
    label = package["title"] or package["name"]
    errors: dict[str, str] = {}
    if form is not None:
        if csrf_ok(request, form):
            od.catalogue.package_delete(editor.principal, package["id"])
            site_accounts(request).flash(
                request, SLOT, tr(lang, "“%(dataset)s” was deleted.") % {"dataset": label}
            )
            return see_other(f"/{lang.prefix}/publish#publish-message")
        errors = expired(lang)
    title = tr(lang, "Delete the dataset")
    context = {
        "title": title,
        "question": tr(lang, "Delete the dataset “%(dataset)s”?") % {"dataset": label},
        "explanation": tr(
            lang,
            "It disappears from the portal, its search and its API at once, with its "
            "resources. Its URL name stays taken; a site administrator can restore it.",
        ),
        "action": f"/{lang.prefix}/publish/dataset/{package['name']}/delete",
        "back": f"/{lang.prefix}/publish/dataset/{package['name']}",
        "button": tr(lang, "Delete the dataset"),
        "errors": errors,
        "breadcrumbs": publish_crumbs(
            lang,
            Crumb(label, f"/{lang.prefix}/publish/dataset/{package['name']}"),
            Crumb(title),
        ),
    }
    return render(request, lang, "confirm_delete.html", context, status=400 if errors else 200)


@page(router, "/publish/dataset/{name}/delete")
async def delete_dataset_page(
    request: Request, lang: LangDep, od: OpenDataDep, target: EditableDep
) -> Response:
    return await run_in_threadpool(_delete_page, request, lang, od, target, None)


@post_page(router, "/publish/dataset/{name}/delete")
async def delete_dataset(
    request: Request, lang: LangDep, od: OpenDataDep, target: EditableDep
) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_delete_page, request, lang, od, target, form)
