"""Updating a measure's progress from the site: the editor panel on the measure page, the
editing page its forms post to, and the account page listing what the user may edit.

Editors may edit the measures their department owns; admins every measure (the measure
service decides: ``can_edit``). Changes go through ``MeasureService``, so each is written to the
measure's audit trail and shows in its timeline and in the roll-ups.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from smartcity.hub.api.deps import hub
from smartcity.portal.blueprint.model import Text
from smartcity.portal.measures.errors import Forbidden, NotFound, PortalError
from smartcity.portal.measures.schemas import MeasureView
from smartcity.portal.measures.service import MAX_NOTE, MeasureService
from smartcity.portal.site import sections
from smartcity.portal.site.auth import (
    EditorDep,
    SignedInDep,
    access_denied,
    account_context,
    assets_tags,
    csrf_ok,
    csrf_token,
    current_user,
    flash,
    form_expired,
    read_form,
    see_other,
    take_flash,
)
from smartcity.portal.site.routes import pages, tr
from smartcity.portal.users.model import User
from smartcity.web.i18n import Lang
from smartcity.web.pages import Crumb
from smartcity.web.routing import LangDep, PageAnswer, page, post_page

router = APIRouter()
TEXT_LANGS = (("en", "English"), ("zh-Hant", "繁體中文"), ("zh-Hans", "简体中文"))
MAX_TITLE = 300


def measures_service(request: Request) -> MeasureService:
    return MeasureService(hub(request).db)


def _editable(request: Request, user: User | None, measure_id: str) -> MeasureView | None:
    """The measure if ``user`` may edit it (and it is in the database), else None."""
    if user is None or user.role not in ("editor", "admin"):
        return None
    service = measures_service(request)
    try:
        if not service.can_edit(user, measure_id):
            return None
        return service.get_measure(measure_id)
    except NotFound:
        return None  # a fresh database: the site shows the shipped files, nothing to edit


def _form_context(
    request: Request, lang: Lang, m: MeasureView, forms: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    statuses = measures_service(request).statuses()
    progress = forms.get("progress") or {
        "values": {
            "status": m.status,
            "progress": f"{m.own_progress:g}",
            "start": m.start.isoformat() if m.start else "",
            "end": m.end.isoformat() if m.end else "",
        },
        "errors": {},
    }
    milestone = forms.get("milestone") or {"values": {}, "errors": {}}
    return {
        "m": m,
        "status_options": [(s.code, s.label.get(lang.text)) for s in statuses],
        "progress_state": progress,
        "milestone_state": milestone,
        "text_langs": TEXT_LANGS,
        "csrf": csrf_token(request),
        "max_note": MAX_NOTE,
    }


def section(request: Request, measure_id: str, lang: Lang) -> Markup | None:
    """The editor panel on the measure page, for those who may edit the measure."""
    m = _editable(request, current_user(request), measure_id)
    if m is None:
        return None
    context = _form_context(request, lang, m, {})
    context["messages"] = take_flash(request, "editor")
    context["assets"] = assets_tags(request)
    html = pages.render(request, "editor_section.html", context, lang=lang).body
    return Markup(bytes(html).decode("utf-8"))


def _edit_page(
    request: Request, lang: Lang, m: MeasureView, forms: dict[str, dict[str, Any]], status: int
) -> Response:
    crumbs = [
        Crumb(tr(lang, "Home"), f"/{lang.prefix}/"),
        Crumb(m.title.get(lang.text), f"/{lang.prefix}/measures/{m.id}"),
        Crumb(tr(lang, "Update this measure")),
    ]
    context = _form_context(request, lang, m, forms)
    context.update(
        title=tr(lang, "Update this measure"),
        breadcrumbs=crumbs,
        account=account_context(request),
        messages=take_flash(request, "editor"),
    )
    return pages.render(
        request,
        "editor_page.html",
        context,
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


@dataclass(frozen=True)
class Editing:
    """An editor and the measure of the page, which the editor's department owns."""

    user: User
    measure: MeasureView


def editing(request: Request, measure_id: str, lang: LangDep, user: EditorDep) -> Editing:
    """Page dependency of a measure's staff forms: an editor of the measure's department (or
    an administrator). Another department's editor gets the 403 page saying whose measure it
    is, before the form is read; a measure not in the database is a 404."""
    service = measures_service(request)
    try:
        m = service.get_measure(measure_id)
    except NotFound as exc:
        raise HTTPException(404) from exc
    if not service.can_edit(user, measure_id):
        raise PageAnswer(access_denied(request, lang, department_refusal(lang, user, m)))
    return Editing(user, m)


EditingDep = Annotated[Editing, Depends(editing)]


def department_refusal(lang: Lang, user: User, m: MeasureView) -> str:
    """Why an editor may not update a measure: the department, not the role."""
    owners = ", ".join(m.owners) or tr(lang, "no department")
    if user.department:
        return tr(
            lang,
            "Measure %(id)s is the responsibility of %(owners)s. Editors of %(department)s "
            "can update only their own department's measures.",
        ) % {"id": m.id, "owners": owners, "department": user.department}
    return tr(
        lang,
        "Measure %(id)s is the responsibility of %(owners)s, and your editor account has no "
        "department.",
    ) % {"id": m.id, "owners": owners}


@page(router, "/measures/{measure_id}/edit")
def edit_page(request: Request, lang: LangDep, target: EditingDep) -> Response:
    return _edit_page(request, lang, target.measure, {}, 200)


def _date(raw: str, lang: Lang) -> tuple[dt.date | None, str | None]:
    if not raw.strip():
        return None, None
    try:
        return dt.date.fromisoformat(raw.strip()), None
    except ValueError:
        return None, tr(lang, "Enter a date as year-month-day, for example 2026-03-31.")


def _progress(
    request: Request, lang: Lang, user: User, m: MeasureView, form: dict[str, str]
) -> dict[str, Any]:
    note_names = [f"note_{k}" for k, _ in TEXT_LANGS]
    values = {k: form.get(k, "") for k in ("status", "progress", "start", "end", *note_names)}
    if form.get("note") and not any(values[n] for n in note_names):
        values[f"note_{lang.text}"] = form["note"]  # one note, in the page's language
    errors: dict[str, str] = {}
    codes = {s.code for s in measures_service(request).statuses()}
    if values["status"] not in codes:
        errors["status"] = tr(lang, "Choose a status.")
    progress: float | None = None
    raw = values["progress"].strip().rstrip("%").strip()
    if raw:
        try:
            progress = float(raw)
            if not 0 <= progress <= 100:
                raise ValueError
        except ValueError:
            errors["progress"] = tr(lang, "Enter the progress as a number from 0 to 100.")
    start, start_error = _date(values["start"], lang)
    end, end_error = _date(values["end"], lang)
    if start_error:
        errors["start"] = start_error
    if end_error:
        errors["end"] = end_error
    first, last = start or m.start, end or m.end
    if not errors and first and last and last < first:
        errors["end"] = tr(lang, "The end date cannot be before the start date.")
    for name in note_names:
        if len(values[name].strip()) > MAX_NOTE:
            errors[name] = tr(lang, "The note is too long: at most %(max)s characters.") % {
                "max": MAX_NOTE
            }
    if errors:
        return {"values": values, "errors": errors}
    # A new status with the progress left as it was takes the status's usual progress.
    if values["status"] != m.status and progress == m.own_progress:
        progress = None
    measures_service(request).update_progress(
        m.id,
        user=user,
        status=values["status"],
        progress=progress,
        start=start,
        end=end,
        # In the languages written; pages in another language show the default language's
        # (English) note, marked as such (timeline.py).
        notes={k: values[f"note_{k}"] for k, _ in TEXT_LANGS if values[f"note_{k}"].strip()},
    )
    flash(request, "status", tr(lang, "The progress of this measure is updated."))
    return {}


def _milestone(
    request: Request, lang: Lang, user: User, m: MeasureView, form: dict[str, str]
) -> dict[str, Any]:
    names = ["date"] + [f"title_{k}" for k, _ in TEXT_LANGS] + [f"desc_{k}" for k, _ in TEXT_LANGS]
    values = {k: form.get(k, "").strip() for k in names}
    values["done"] = "1" if form.get("done") else ""
    errors: dict[str, str] = {}
    day, day_error = _date(values["date"], lang)
    if day is None:
        errors["date"] = day_error or tr(lang, "Enter the milestone's date.")
    for key, _name in TEXT_LANGS:
        typed = values[f"title_{key}"]
        if not typed:
            errors[f"title_{key}"] = tr(lang, "Enter the title in each of the three languages.")
        elif len(typed) > MAX_TITLE:
            errors[f"title_{key}"] = tr(lang, "At most %(max)s characters.") % {"max": MAX_TITLE}
    descriptions = [values[f"desc_{k}"] for k, _ in TEXT_LANGS]
    if any(descriptions) and not all(descriptions):
        for key, _name in TEXT_LANGS:
            if not values[f"desc_{key}"]:
                errors[f"desc_{key}"] = tr(
                    lang, "Give the description in all three languages, or in none."
                )
    if errors or day is None:
        return {"values": values, "errors": errors}
    title = Text.model_validate({k: values[f"title_{k}"] for k, _ in TEXT_LANGS})
    description = (
        Text.model_validate({k: values[f"desc_{k}"] for k, _ in TEXT_LANGS})
        if all(descriptions)
        else None
    )
    measures_service(request).add_milestone(
        m.id, user=user, date=day, title=title, description=description, done=bool(values["done"])
    )
    flash(request, "milestones", tr(lang, "The milestone is added."))
    return {}


def _milestone_done(
    request: Request, lang: Lang, user: User, m: MeasureView, form: dict[str, str]
) -> dict[str, Any]:
    raw = form.get("milestone", "")
    if not raw.isdigit() or int(raw) not in {ms.id for ms in m.milestones}:
        raise HTTPException(400)
    done = form.get("done") == "1"
    measures_service(request).set_milestone_done(int(raw), user=user, done=done)
    if done:
        flash(request, "milestones", tr(lang, "The milestone is marked as reached."))
    else:
        flash(request, "milestones", tr(lang, "The milestone is marked as not reached."))
    return {}


HANDLERS = {"progress": _progress, "milestone": _milestone, "milestone_done": _milestone_done}


def _submit(request: Request, lang: Lang, target: Editing, form: dict[str, str]) -> Response:
    user, m = target.user, target.measure
    if not csrf_ok(request, form):
        return form_expired(request, lang)
    kind = form.get("form", "")
    handler = HANDLERS.get(kind)
    if handler is None:
        raise HTTPException(400)
    try:
        failed = handler(request, lang, user, m, form)
    except Forbidden:
        return access_denied(request, lang, department_refusal(lang, user, m))
    except PortalError as exc:  # a rule the checks above did not foresee: say it plainly
        failed = {"values": dict(form), "errors": {"_form": exc.detail}}
    if failed:
        return _edit_page(request, lang, m, {kind: failed}, 400)
    # The confirmation shows next to what changed: the status block, or the milestones.
    anchor = "status-message" if kind == "progress" else "milestones-message"
    return see_other(f"/{lang.prefix}/measures/{m.id}#{anchor}")


@post_page(router, "/measures/{measure_id}/edit")
async def edit_submit(request: Request, lang: LangDep, target: EditingDep) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_submit, request, lang, target, form)


# -- the account page ----------------------------------------------------------------------------


@page(router, "/account")
def account(request: Request, lang: LangDep, user: SignedInDep) -> Response:
    editable: list[MeasureView] = []
    if user.role in ("editor", "admin"):
        service = measures_service(request)
        editable = [
            m
            for m in service.list_measures()
            if user.role == "admin" or (user.department and user.department in m.owners)
        ]
    statuses = {s.code: s.label.get(lang.text) for s in measures_service(request).statuses()}
    return pages.render(
        request,
        "account.html",
        {
            "title": tr(lang, "Your account"),
            "user": user,
            "editable": editable,
            "status_labels": statuses,
            "account": account_context(request),
            "messages": take_flash(request, "auth"),
            "breadcrumbs": [
                Crumb(tr(lang, "Home"), f"/{lang.prefix}/"),
                Crumb(tr(lang, "Your account")),
            ],
        },
        headers={"Cache-Control": "no-store"},
    )


sections.register("measure", section)
