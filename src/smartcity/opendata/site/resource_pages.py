"""The editor pages for a dataset's resources: ``/publish/dataset/{name}/resource/new`` adds
a link or uploads a file, ``.../resource/{id}`` edits one (a new file replaces the old),
``.../resource/{id}/delete`` removes one after asking.

The forms are multipart and are read by the Action API's own reader (``ckan/requests.py``:
the upload size counted as it streams in) and written by ``resource_create`` /
``resource_update`` / ``resource_delete``: the same size limit, file type checks and staging
(a refused file leaves nothing behind) as an upload through the API.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.opendata.catalogue.service import Upload
from smartcity.opendata.ckan.requests import body_params
from smartcity.opendata.errors import BadRequest, ValidationFailed
from smartcity.opendata.runtime import OpenData
from smartcity.opendata.site import dataset_forms as forms
from smartcity.opendata.site.editing import (
    SLOT,
    Editable,
    EditableDep,
    expired,
    publish_crumbs,
    read_form,
    render,
    see_other,
)
from smartcity.opendata.site.routes import OpenDataDep, base_url, data_lang, tr
from smartcity.web.accounts import site_accounts
from smartcity.web.i18n import Lang
from smartcity.web.pages import Crumb
from smartcity.web.routing import LangDep, page, post_page

router = APIRouter()
FORM_FIELDS = {
    "url",
    "upload",
    "format",
    *(f"{field}_{lang}" for field in ("name", "description") for lang, _ in forms.TEXT_LANGS),
}
# The paths whose bodies carry a file: the app's edge lets them be as large as an upload.
UPLOAD_PATHS = r"/(en|tc|sc)/publish/dataset/[^/]+/resource/[^/]+$"

Posted = tuple[dict[str, Any], Upload | None]


async def read_upload_form(request: Request, od: OpenData) -> Posted | dict[str, str]:
    """The form's fields and its file (None when no file was chosen), or the form-level
    error of a body that could not be read (too large, or not a form)."""
    limits = request.app.state.hub.settings.limits
    try:
        data, upload = await body_params(request, limits, od.settings.max_upload_bytes)
    except ValidationFailed as exc:  # the body was larger than the largest upload
        return {"upload": " ".join(m for ms in exc.errors.values() for m in ms)}
    except BadRequest as exc:
        return {"_form": exc.message}
    if upload is not None and not _chosen(upload):
        upload = None  # a browser sends an empty file part when no file was chosen
    return data, upload


def _chosen(upload: Upload) -> bool:
    head = upload.file.read(1)
    upload.file.seek(0)
    return bool(head)


def _size(size: int) -> str:
    """A file size as people read it: 100 MB, 512 KB."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.3g} MB"
    return f"{size / 1024:.3g} KB"


def _resource(package: dict[str, Any], resource_id: str) -> dict[str, Any]:
    found = next((r for r in package["resources"] if r["id"] == resource_id), None)
    if found is None:
        raise HTTPException(404)
    return found


def _form_page(
    request: Request,
    lang: Lang,
    od: OpenData,
    package: dict[str, Any],
    resource: dict[str, Any] | None,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    name = package["name"]
    if resource is None:
        title = tr(lang, "Add a resource")
        action = f"/{lang.prefix}/publish/dataset/{name}/resource/new"
    else:
        title = tr(lang, "Edit the resource")
        action = f"/{lang.prefix}/publish/dataset/{name}/resource/{resource['id']}"
    context = {
        "title": title,
        "package": package,
        "resource": resource,
        "action": action,
        "values": values,
        "errors": errors or {},
        "text_langs": forms.TEXT_LANGS,
        "max_upload": _size(od.settings.max_upload_bytes),
        "breadcrumbs": publish_crumbs(
            lang,
            Crumb(package["title"] or name, f"/{lang.prefix}/publish/dataset/{name}"),
            Crumb(title),
        ),
    }
    return render(request, lang, "resource_form.html", context, status=status)


def _show(
    request: Request, lang: Lang, od: OpenData, target: Editable, rid: str | None
) -> Response:
    package = target.package
    resource = _resource(package, rid) if rid else None
    values = forms.resource_values(resource) if resource else {}
    return _form_page(request, lang, od, package, resource, values)


def _save(
    request: Request,
    lang: Lang,
    od: OpenData,
    target: Editable,
    rid: str | None,
    posted: Posted | dict[str, str],
) -> Response:
    editor, package = target.editor, target.package
    resource = _resource(package, rid) if rid else None
    if isinstance(posted, dict):  # unreadable: say why, keep nothing
        return _form_page(request, lang, od, package, resource, {}, posted, status=400)
    data, upload = posted
    values = {k: v for k, v in data.items() if k != "csrf" and isinstance(v, str)}
    if not site_accounts(request).csrf_ok(request, data):
        return _form_page(request, lang, od, package, resource, values, expired(lang), 400)
    fields = forms.resource_data(data)
    if resource is None and upload is None and "url" not in fields:
        error = tr(lang, "Give a link to the data, or choose a file to upload.")
        return _form_page(request, lang, od, package, resource, values, {"url": error}, 400)
    try:
        if resource is None:
            od.catalogue.resource_create(
                editor.principal,
                data_lang(lang),
                base_url(request),
                {**fields, "package_id": package["id"]},
                upload,
            )
            message = tr(lang, "The resource was added.")
        else:
            od.catalogue.resource_update(
                editor.principal,
                data_lang(lang),
                base_url(request),
                {**fields, "id": resource["id"]},
                upload,
            )
            message = tr(lang, "The resource was saved.")
    except ValidationFailed as exc:
        errors = forms.field_errors(exc, lambda msgid: tr(lang, msgid), FORM_FIELDS)
        return _form_page(request, lang, od, package, resource, values, errors, 400)
    site_accounts(request).flash(request, SLOT, message)
    return see_other(f"/{lang.prefix}/publish/dataset/{package['name']}#publish-message")


@page(router, "/publish/dataset/{name}/resource/new")
async def new_resource(
    request: Request, lang: LangDep, od: OpenDataDep, target: EditableDep
) -> Response:
    return await run_in_threadpool(_show, request, lang, od, target, None)


@post_page(router, "/publish/dataset/{name}/resource/new")
async def create_resource(
    request: Request, lang: LangDep, od: OpenDataDep, target: EditableDep
) -> Response:
    posted = await read_upload_form(request, od)
    return await run_in_threadpool(_save, request, lang, od, target, None, posted)


@page(router, "/publish/dataset/{name}/resource/{resource_id}")
async def edit_resource(
    request: Request, resource_id: str, lang: LangDep, od: OpenDataDep, target: EditableDep
) -> Response:
    return await run_in_threadpool(_show, request, lang, od, target, resource_id)


@post_page(router, "/publish/dataset/{name}/resource/{resource_id}")
async def update_resource(
    request: Request, resource_id: str, lang: LangDep, od: OpenDataDep, target: EditableDep
) -> Response:
    posted = await read_upload_form(request, od)
    return await run_in_threadpool(_save, request, lang, od, target, resource_id, posted)


def _delete(
    request: Request, lang: Lang, od: OpenData, target: Editable, rid: str, form: Any
) -> Response:
    editor, package = target.editor, target.package
    name = package["name"]
    resource = _resource(package, rid)
    label = resource["name"] or resource["id"]
    errors: dict[str, str] = {}
    if form is not None:
        if site_accounts(request).csrf_ok(request, form):
            od.catalogue.resource_delete(editor.principal, resource["id"])
            site_accounts(request).flash(
                request, SLOT, tr(lang, "“%(resource)s” was deleted.") % {"resource": label}
            )
            return see_other(f"/{lang.prefix}/publish/dataset/{name}#publish-message")
        errors = expired(lang)
    base = f"/{lang.prefix}/publish/dataset/{name}"
    title = tr(lang, "Delete the resource")
    context = {
        "title": title,
        "question": tr(lang, "Delete the resource “%(resource)s”?") % {"resource": label},
        "explanation": tr(
            lang, "Its link or its file is removed from the dataset at once, for good."
        ),
        "action": f"{base}/resource/{rid}/delete",
        "back": base,
        "button": tr(lang, "Delete the resource"),
        "errors": errors,
        "breadcrumbs": publish_crumbs(lang, Crumb(package["title"] or name, base), Crumb(title)),
    }
    return render(request, lang, "confirm_delete.html", context, status=400 if errors else 200)


@page(router, "/publish/dataset/{name}/resource/{resource_id}/delete")
async def delete_resource_page(
    request: Request, resource_id: str, lang: LangDep, od: OpenDataDep, target: EditableDep
) -> Response:
    return await run_in_threadpool(_delete, request, lang, od, target, resource_id, None)


@post_page(router, "/publish/dataset/{name}/resource/{resource_id}/delete")
async def delete_resource(
    request: Request, resource_id: str, lang: LangDep, od: OpenDataDep, target: EditableDep
) -> Response:
    form = {k: v[0] for k, v in (await read_form(request)).items()}
    return await run_in_threadpool(_delete, request, lang, od, target, resource_id, form)
