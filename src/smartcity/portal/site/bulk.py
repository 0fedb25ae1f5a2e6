"""Updating many measures at once from the site (``/account/progress``): one table of every
measure the user may edit, each row with its status and progress, saved with one button.

The web counterpart of ``blueprint import`` for the everyday case (a department's quarterly
update) without a CSV file or a shell. Only rows whose status or progress changed are written,
each through ``MeasureService.update_progress`` so it is authorised, audited and shown on the
measure's timeline like a change made on the measure's own page. Nothing is written when any
row is wrong: the page comes back with every problem listed and the values as typed.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.portal.measures.errors import Forbidden, PortalError
from smartcity.portal.measures.schemas import MeasureView
from smartcity.portal.measures.service import MAX_NOTE
from smartcity.portal.site.auth import (
    EditorDep,
    access_denied,
    account_context,
    csrf_ok,
    csrf_token,
    flash,
    form_expired,
    read_form,
    see_other,
    take_flash,
)
from smartcity.portal.site.editor import measures_service
from smartcity.portal.site.routes import pages, tr
from smartcity.portal.users.model import User
from smartcity.web.i18n import Lang
from smartcity.web.pages import Crumb
from smartcity.web.routing import LangDep, page, post_page

router = APIRouter()


def _editable(request: Request, user: User) -> list[MeasureView]:
    return [
        m
        for m in measures_service(request).list_measures()
        if user.role == "admin" or (user.department is not None and user.department in m.owners)
    ]


def _render(
    request: Request,
    lang: Lang,
    user: User,
    values: dict[str, str] | None,
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    measures = _editable(request, user)
    statuses = measures_service(request).statuses()
    if values is None:
        values = {}
        for m in measures:
            values[f"status-{m.id}"] = m.status
            values[f"progress-{m.id}"] = f"{m.own_progress:g}"
    return pages.render(
        request,
        "bulk_edit.html",
        {
            "title": tr(lang, "Update several measures"),
            "measures": measures,
            "status_options": [(s.code, s.label.get(lang.text)) for s in statuses],
            "values": values,
            "errors": errors,
            "csrf": csrf_token(request),
            "max_note": MAX_NOTE,
            "account": account_context(request),
            "messages": take_flash(request, "bulk"),
            "breadcrumbs": [
                Crumb(tr(lang, "Home"), f"/{lang.prefix}/"),
                Crumb(tr(lang, "Your account"), f"/{lang.prefix}/account"),
                Crumb(tr(lang, "Update several measures")),
            ],
        },
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


@page(router, "/account/progress")
def bulk_page(request: Request, lang: LangDep, user: EditorDep) -> Response:
    return _render(request, lang, user, None, {})


def _changes(
    lang: Lang, measures: list[MeasureView], codes: set[str], form: dict[str, str]
) -> tuple[list[tuple[MeasureView, str, float | None]], dict[str, str]]:
    """The rows whose status or progress differ from the database, and the problems."""
    changes: list[tuple[MeasureView, str, float | None]] = []
    errors: dict[str, str] = {}
    for m in measures:
        status = form.get(f"status-{m.id}", m.status)
        raw = form.get(f"progress-{m.id}", "").strip().rstrip("%").strip()
        if status not in codes:
            errors[f"status-{m.id}"] = tr(lang, "%(id)s: choose a status.") % {"id": m.id}
            continue
        progress: float | None = None
        if raw:
            try:
                progress = float(raw)
                if not 0 <= progress <= 100:
                    raise ValueError
            except ValueError:
                errors[f"progress-{m.id}"] = tr(
                    lang, "%(id)s: enter the progress as a number from 0 to 100."
                ) % {"id": m.id}
                continue
        if progress == m.own_progress:
            progress = None  # unchanged; a new status then brings its usual progress
        if status != m.status or progress is not None:
            changes.append((m, status, progress))
    return changes, errors


def _submit(request: Request, lang: Lang, user: User, form: dict[str, str]) -> Response:
    if not csrf_ok(request, form):
        return form_expired(request, lang)
    service = measures_service(request)
    measures = _editable(request, user)
    codes = {s.code for s in service.statuses()}
    changes, errors = _changes(lang, measures, codes, form)
    note = form.get("note", "").strip()
    if len(note) > MAX_NOTE:
        errors["note"] = tr(lang, "The note is too long: at most %(max)s characters.") % {
            "max": MAX_NOTE
        }
    if errors:
        return _render(request, lang, user, dict(form), errors, 400)
    try:
        for m, status, progress in changes:
            service.update_progress(
                m.id, user=user, status=status, progress=progress, note=note or None
            )
    except Forbidden:
        return access_denied(request, lang)
    except PortalError as exc:
        return _render(request, lang, user, dict(form), {"_form": exc.detail}, 400)
    if changes:
        text = tr(lang, "Saved: %(ids)s.") % {"ids": ", ".join(m.id for m, _, _ in changes)}
    else:
        text = tr(lang, "Nothing was changed.")
    flash(request, "bulk", text)
    return see_other(f"/{lang.prefix}/account/progress#bulk-message")


@post_page(router, "/account/progress")
async def bulk_submit(request: Request, lang: LangDep, user: EditorDep) -> Response:
    form: dict[str, Any] = await read_form(request)
    return await run_in_threadpool(_submit, request, lang, user, form)
