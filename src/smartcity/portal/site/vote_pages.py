"""The page an e-mailed vote link opens: a button that counts the vote (never on GET: mail
scanners open links), then back to the comment with the vote counted.

Confirming also remembers the proven person in this browser's session (``remember_voter``),
so the person's next votes from here need no mail.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.portal.feedback.errors import FeedbackError
from smartcity.portal.site.auth import (
    account_context,
    csrf_ok,
    csrf_token,
    current_user,
    feedback_service,
    read_form,
    remember_voter,
    see_other,
)
from smartcity.portal.site.feedback_pages import SERVICE_ERRORS, flash_vote
from smartcity.portal.site.routes import pages, tr
from smartcity.web.i18n import Lang
from smartcity.web.nav import N_
from smartcity.web.pages import Crumb
from smartcity.web.routing import LangDep, page, post_page

router = APIRouter()

LINK_ERRORS = {
    "vote_token_unknown": N_(
        "This link is not valid. Please check that you copied all of it, or vote again to get "
        "a new one."
    ),
    "vote_token_used": N_("This link has been used already."),
    "vote_token_expired": N_("This link has expired. Please vote again to get a new one."),
}


def _confirm_page(
    request: Request, lang: Lang, token: str, error: str | None = None, status: int = 200
) -> Response:
    return pages.render(
        request,
        "vote_confirm.html",
        {
            "title": tr(lang, "Confirm your vote"),
            "token": token,
            "error": error,
            "csrf": csrf_token(request),
            "account": account_context(request),
            "breadcrumbs": [
                Crumb(tr(lang, "Home"), f"/{lang.prefix}/"),
                Crumb(tr(lang, "Confirm your vote")),
            ],
        },
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


@page(router, "/votes/confirm")
def vote_confirm(request: Request, lang: LangDep) -> Response:
    token = request.query_params.get("token", "")[:200]
    if not token:
        return _confirm_page(request, lang, "", tr(lang, LINK_ERRORS["vote_token_unknown"]), 400)
    return _confirm_page(request, lang, token)


def _confirm(request: Request, lang: Lang, form: dict[str, str]) -> Response:
    token = form.get("token", "")[:200]
    if not csrf_ok(request, form):
        error = tr(
            lang, "This form had expired, so nothing was done. Please press the button again."
        )
        return _confirm_page(request, lang, token, error, 400)
    try:
        confirmed = feedback_service(request).votes.confirm(token)
    except FeedbackError as exc:
        msgid = LINK_ERRORS.get(exc.code) or SERVICE_ERRORS.get(exc.code, ("", ""))[1]
        message = tr(lang, msgid or LINK_ERRORS["vote_token_unknown"])
        return _confirm_page(request, lang, "", message, exc.status)
    if current_user(request) is None:
        remember_voter(request, confirmed.person)
    flash_vote(request, lang, confirmed.vote)
    target = confirmed.target
    return see_other(
        f"/{lang.prefix}/{target.kind}s/{target.id}#comment-{confirmed.vote.comment_id}"
    )


@post_page(router, "/votes/confirm")
async def vote_confirm_submit(request: Request, lang: LangDep) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_confirm, request, lang, form)
