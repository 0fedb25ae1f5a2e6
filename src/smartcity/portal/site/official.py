"""Editors answering comments officially, on their department's measure pages.

An official answer is the moderators' kind (feedback/moderation.py ``answer``): a published
reply shown with the department's name, first under the comment. Editors may give one on a
measure they may update (``MeasureService.can_edit``), in their department's name; an admin
without a department answers in the name of the measure's first responsible department.
Refusals say why (another department's measure, a comment on another page).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.portal.feedback.errors import FeedbackError
from smartcity.portal.feedback.model import LANGUAGES
from smartcity.portal.measures.errors import NotFound
from smartcity.portal.site import routes
from smartcity.portal.site.auth import (
    access_denied,
    csrf_ok,
    current_user,
    feedback_service,
    flash,
    form_expired,
    read_form,
    see_other,
)
from smartcity.portal.site.editor import Editing, EditingDep, measures_service
from smartcity.portal.site.routes import tr
from smartcity.portal.users.model import User
from smartcity.web.i18n import Lang
from smartcity.web.routing import LangDep, post_page

router = APIRouter()
MAX_ANSWER = 4000


def answer_url(request: Request, lang: Lang, kind: str, subject_id: str) -> str | None:
    """Where the comment section's "Answer officially" forms post, for those who may."""
    user = current_user(request)
    if kind != "measure" or user is None or user.role not in ("editor", "admin"):
        return None
    try:
        if not measures_service(request).can_edit(user, subject_id):
            return None
    except NotFound:
        return None  # a fresh database: nothing to answer for
    return f"/{lang.prefix}/measures/{subject_id}/answer"


def _department(request: Request, user: User, owners: list[str]) -> dict[str, str]:
    code = user.department or (owners[0] if owners else None)
    orgs = {o.code: o.name for o in routes.site_data(request).blueprint.organisations}
    name = orgs.get(code) if code else None
    if name is None:
        return dict.fromkeys(LANGUAGES, code or "")
    return {k: name.get(k) for k in LANGUAGES}


def _submit(request: Request, lang: Lang, target: Editing, form: dict[str, str]) -> Response:
    user, m = target.user, target.measure
    measure_id = m.id
    if not csrf_ok(request, form):
        return form_expired(request, lang)
    raw = form.get("comment", "")
    if not raw.isdigit() or len(raw) > 15:
        raise HTTPException(400)
    comment_id = int(raw)
    fb = feedback_service(request)
    back = f"/{lang.prefix}/measures/{measure_id}"
    try:
        comment = fb.comment(comment_id)
    except FeedbackError as exc:
        raise HTTPException(404) from exc
    if (comment.target.kind, comment.target.id) != ("measure", measure_id):
        return access_denied(
            request, lang, tr(lang, "This comment is not about measure %(id)s.") % {"id": m.id}
        )
    text = form.get("text", "").strip()
    language = form.get("language", lang.text)
    problem = None
    if not text:
        problem = tr(lang, "Enter the answer.")
    elif len(text) > MAX_ANSWER:
        problem = tr(lang, "The answer is too long: at most %(max)s characters.") % {
            "max": MAX_ANSWER
        }
    elif language not in LANGUAGES:
        problem = tr(lang, "Choose the language of the answer.")
    if problem is None:
        try:
            answer = fb.moderation.answer(
                comment_id,
                user.username,
                text,
                _department(request, user, m.owners),
                language=language,
            )
        except FeedbackError:
            problem = tr(lang, "This comment cannot be answered now (it may be hidden).")
        else:
            flash(
                request,
                "feedback",
                tr(lang, "Your official answer is published."),
                comment=answer.id,
            )
            return see_other(f"{back}#comment-{answer.id}")
    flash(request, "feedback", problem, "error", comment=comment_id)
    return see_other(f"{back}#comment-{comment_id}")


@post_page(router, "/measures/{measure_id}/answer")
async def answer_submit(request: Request, lang: LangDep, target: EditingDep) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_submit, request, lang, target, form)
