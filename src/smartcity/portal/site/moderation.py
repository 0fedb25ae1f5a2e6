"""The moderators' pages: the queue (hidden by reports and pending first), the actions on a
comment (hide, restore, approve, official answer) and the moderation log.

Only moderators and admins: others get a 403 page, and anonymous visitors are sent to sign in
(and back here afterwards). The moderator's username is what the log records.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.portal.feedback.errors import FeedbackError
from smartcity.portal.feedback.model import LANGUAGES
from smartcity.portal.feedback.moderation import ModerationItem
from smartcity.portal.feedback.sanitize import render_comment_html
from smartcity.portal.site import routes
from smartcity.portal.site.auth import (
    ModeratorDep,
    account_context,
    csrf_ok,
    csrf_token,
    feedback_service,
    flash,
    form_expired,
    read_form,
    see_other,
    take_flash,
)
from smartcity.portal.site.feedback_pages import REASON_LABELS, STANCE_LABELS
from smartcity.portal.site.routes import pages, tr
from smartcity.portal.users.model import User
from smartcity.web.i18n import Lang
from smartcity.web.nav import N_
from smartcity.web.pages import Crumb
from smartcity.web.paging import Pager, page_number
from smartcity.web.routing import LangDep, page, post_page

router = APIRouter()
PER_PAGE = 25
STATUS_LABELS = {
    "published": N_("Published"),
    "pending": N_("Waiting for approval"),
    "hidden_by_reports": N_("Hidden after reports"),
    "hidden_by_moderator": N_("Hidden by a moderator"),
    "deleted_by_author_request": N_("Deleted at the author's request"),
}
ACTION_LABELS = {
    "hide": N_("Hidden"),
    "restore": N_("Restored"),
    "approve": N_("Approved"),
    "answer": N_("Official answer"),
    "hidden_by_reports": N_("Hidden after reports"),
    "queued": N_("Held for approval"),
    "deleted_by_author_request": N_("Deleted at the author's request"),
}
LANGUAGE_NAMES = {"en": "English", "zh-Hant": "繁體中文", "zh-Hans": "简体中文"}


def _when(us: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC)


def _target_url(lang: Lang, target: str, comment_id: int) -> str:
    kind, _, ident = target.partition(":")
    if kind == "dataset":  # the open data site's page (a report of a problem with the data)
        return f"/{lang.prefix}/dataset/{ident}"
    return f"/{lang.prefix}/{kind}s/{ident}#comment-{comment_id}"


def _department(request: Request, user: User) -> dict[str, str]:
    """The moderator's department in three languages, to prefill official answers."""
    if not user.department:
        return {}
    orgs = {o.code: o.name for o in routes.site_data(request).blueprint.organisations}
    name = orgs.get(user.department)
    return {k: name.get(k) for k in LANGUAGES} if name else {}


def _queue_page(
    request: Request,
    lang: Lang,
    user: User,
    answer: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    fb = feedback_service(request)
    number = page_number(request.query_params.get("page"))
    total, items = fb.moderation.queue(offset=(number - 1) * PER_PAGE, limit=PER_PAGE)
    lookup: ModerationItem | None = None
    raw = request.query_params.get("comment", "")
    if answer and not raw:  # an answer sent back with mistakes: show its comment
        raw = str(answer["comment_id"])
    lookup_error = None
    if raw:
        try:
            lookup = fb.moderation.item(int(raw)) if raw.isdigit() and len(raw) < 16 else None
        except FeedbackError:
            lookup = None
        if lookup is None:
            lookup_error = tr(lang, "There is no comment with this number.")
    department = _department(request, user)
    return pages.render(
        request,
        "moderation.html",
        {
            "title": tr(lang, "Moderation"),
            "total": total,
            "items": items,
            "lookup": lookup,
            "lookup_raw": raw,
            "lookup_error": lookup_error,
            "log": fb.moderation.log(limit=50),
            "pager": Pager(
                page=number, per_page=PER_PAGE, total=total, base=f"/{lang.prefix}/moderation"
            ),
            "answer": answer or {},
            "department": department,
            "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
            "status_labels": {k: tr(lang, v) for k, v in STATUS_LABELS.items()},
            "action_labels": {k: tr(lang, v) for k, v in ACTION_LABELS.items()},
            "reason_labels": {k: tr(lang, v) for k, v in REASON_LABELS.items()},
            "stance_labels": {k: tr(lang, v) for k, v in STANCE_LABELS.items()},
            "comment_html": render_comment_html,
            "target_url": lambda target, cid: _target_url(lang, target, cid),
            "when": _when,
            "csrf": csrf_token(request),
            "messages": take_flash(request, "moderation"),
            "account": account_context(request),
            "breadcrumbs": [
                Crumb(tr(lang, "Home"), f"/{lang.prefix}/"),
                Crumb(tr(lang, "Moderation")),
            ],
            "page_lang": lang.text,
        },
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


@page(router, "/moderation")
def queue(request: Request, lang: LangDep, user: ModeratorDep) -> Response:
    return _queue_page(request, lang, user)


def _answer(
    request: Request, lang: Lang, user: User, comment_id: int, form: dict[str, str]
) -> Response | None:
    """Post an official answer; the queue again with errors when something is missing."""
    values = {
        k: form.get(k, "").strip()
        for k in ("text", "language", "dept_en", "dept_zh-Hant", "dept_zh-Hans")
    }
    errors: dict[str, str] = {}
    if not values["text"]:
        errors["text"] = tr(lang, "Enter the answer.")
    for code in LANGUAGES:
        if not values[f"dept_{code}"]:
            errors[f"dept_{code}"] = tr(lang, "Enter the department's name in each language.")
    if values["language"] not in LANGUAGES:
        errors["language"] = tr(lang, "Choose the language of the answer.")
    if not errors:
        department = {code: values[f"dept_{code}"] for code in LANGUAGES}
        try:
            answer = feedback_service(request).moderation.answer(
                comment_id,
                user.username,
                values["text"],
                department,
                language=values["language"],
            )
        except FeedbackError as exc:
            errors["_form"] = _refusal(lang, exc)
        else:
            flash(request, "moderation", tr(lang, "The official answer is published."))
            return see_other(
                _target_url(lang, answer.target.kind + ":" + answer.target.id, answer.id)
            )
    state = {"comment_id": comment_id, "values": values, "errors": errors}
    return _queue_page(request, lang, user, state, 400)


def _refusal(lang: Lang, exc: FeedbackError) -> str:
    if exc.code == "invalid_transition":
        return tr(lang, "This action does not fit the comment's current state.")
    if exc.code == "unknown_comment":
        return tr(lang, "There is no comment with this number.")
    return tr(lang, "This could not be saved. Please check what you entered.")


def _act(
    request: Request, lang: Lang, user: User, comment_id: int, form: dict[str, str]
) -> Response:
    if not csrf_ok(request, form):
        return form_expired(request, lang)
    action = form.get("action", "")
    if action == "answer":
        response = _answer(request, lang, user, comment_id, form)
        assert response is not None
        return response
    moderation = feedback_service(request).moderation
    methods = {
        "hide": moderation.hide,
        "restore": moderation.restore,
        "approve": moderation.approve,
    }
    if action not in methods:
        raise HTTPException(400)
    reason = form.get("reason", "").strip()[:1000] or None
    try:
        methods[action](comment_id, user.username, reason)
    except FeedbackError as exc:
        flash(request, "moderation", _refusal(lang, exc), "error")
    else:
        done = {
            "hide": tr(lang, "Comment %(id)s is hidden."),
            "restore": tr(lang, "Comment %(id)s is published again."),
            "approve": tr(lang, "Comment %(id)s is approved and published."),
        }[action]
        flash(request, "moderation", done % {"id": comment_id})
    return see_other(f"/{lang.prefix}/moderation#moderation-message")


@post_page(router, "/moderation/{comment_id}")
async def act(request: Request, comment_id: str, lang: LangDep, user: ModeratorDep) -> Response:
    if not comment_id.isdigit() or len(comment_id) > 15:
        raise HTTPException(404)
    form = await read_form(request)
    return await run_in_threadpool(_act, request, lang, user, int(comment_id), form)
