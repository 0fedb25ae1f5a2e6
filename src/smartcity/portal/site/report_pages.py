"""“Report a problem with this data”: the open data site's dataset pages link here.

``/{lang}/report/dataset/{name}`` is a small form (no JavaScript) that posts to itself. A report
is a feedback comment on the target ``dataset:<name>``: the same checks, CSRF, rate limits and
sanitising as comments on measures, and always held for a moderator (``HELD_KINDS``), whose
queue says which dataset it is about. Which datasets exist is the app's business (it wires the
open data catalogue into the feedback service's target check); a private, draft, deleted or
unknown dataset gets a 404 page that says so.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.portal.feedback.errors import FeedbackError, InvalidFeedback
from smartcity.portal.feedback.model import Client, CommentDraft, Target
from smartcity.portal.site.auth import (
    account_context,
    client_ip,
    csrf_ok,
    csrf_token,
    feedback_service,
    flash,
    new_voter_token,
    read_form,
    see_other,
    set_voter_cookie,
    take_flash,
    voter_person,
    voter_token,
)
from smartcity.portal.site.feedback_pages import NAME_CHARS, field_errors, service_error
from smartcity.portal.site.routes import home_crumb, pages, tr
from smartcity.web.i18n import Lang
from smartcity.web.pages import Crumb
from smartcity.web.routing import LangDep, page, post_page

router = APIRouter()


def _target(request: Request, name: str) -> Target | None:
    """The dataset's feedback target, or None when there is no public dataset of that name."""
    try:
        target = Target.of("dataset", name)
    except InvalidFeedback:
        return None
    return target if feedback_service(request).target_exists(target.kind, target.id) else None


def _render(
    request: Request,
    lang: Lang,
    name: str,
    *,
    found: bool,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    fb = feedback_service(request)
    title = tr(lang, "Report a problem with this data")
    context: dict[str, Any] = {
        "title": title,
        "nav_key": "data",
        "breadcrumbs": [
            home_crumb(lang),
            Crumb(tr(lang, "Open data"), f"/{lang.prefix}/dataset"),
            Crumb(name, f"/{lang.prefix}/dataset/{name}" if found else None),
            Crumb(title),
        ],
        "account": account_context(request),
        "found": found,
        "name": name,
        "dataset_url": f"/{lang.prefix}/dataset/{name}",
        "action": f"/{lang.prefix}/report/dataset/{name}",
        "csrf": csrf_token(request),
        "values": values or {},
        "errors": errors or {},
        "messages": take_flash(request, "report"),
        "max_chars": fb.settings.max_text_chars,
        "name_chars": NAME_CHARS,
    }
    return pages.render(
        request,
        "report_dataset.html",
        context,
        lang=lang,
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


@page(router, "/report/dataset/{name}")
def report_dataset(request: Request, name: str, lang: LangDep) -> Response:
    found = _target(request, name) is not None
    return _render(request, lang, name, found=found, status=200 if found else 404)


def _submit(request: Request, lang: Lang, name: str, form: dict[str, str]) -> Response:
    target = _target(request, name)
    if target is None:
        return _render(request, lang, name, found=False, status=404)
    fb = feedback_service(request)
    values = {k: form.get(k, "") for k in ("name", "email", "text")}
    if not csrf_ok(request, form):
        error = tr(
            lang,
            "This form had expired, so nothing was sent. Your text "
            "is kept below: please send it again.",
        )
        return _render(request, lang, name, found=True, values=values, errors={"_form": error},
                       status=400)  # fmt: skip
    checked = {**values, "stance": "neutral"}
    errors = field_errors(lang, checked, fb.settings.max_text_chars, fb.settings.max_links)
    if errors:
        return _render(request, lang, name, found=True, values=values, errors=errors, status=400)
    voter = voter_token(request)
    created = None if voter else new_voter_token(request)
    client = Client(ip=client_ip(request), session=voter or created, person=voter_person(request))
    draft = CommentDraft(
        target=target,
        text=values["text"],
        stance="neutral",
        language=lang.text,
        name=values["name"] or None,
        email=values["email"] or None,
        honeypot=form.get("website") or None,
    )
    try:
        fb.post_comment(draft, client)
    except FeedbackError as exc:
        if exc.code == "unknown_target":
            return _render(request, lang, name, found=False, status=404)
        field, message, status = service_error(lang, exc)
        response = _render(request, lang, name, found=True, values=values,
                           errors={field: message}, status=status)  # fmt: skip
    else:
        flash(
            request,
            "report",
            tr(lang, "Thank you. A moderator will read your report and pass it on."),
        )
        response = see_other(f"/{lang.prefix}/report/dataset/{name}#report-message")
    if created:
        set_voter_cookie(response, request, created)
    return response


@post_page(router, "/report/dataset/{name}")
async def report_dataset_submit(request: Request, name: str, lang: LangDep) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_submit, request, lang, name, form)
