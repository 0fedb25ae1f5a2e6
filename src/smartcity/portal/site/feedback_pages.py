"""Public feedback on measure and area pages: the comment section, its forms, and the privacy
pages (export or delete one's comments by e-mail).

Forms post to the page's own URL (``POST /en/measures/{id}``) with a ``form`` field saying
which form it is. Success: redirect (303) back to the page with a flash message. A mistake:
the page is rendered again, the user's text kept, with an error summary linking to the fields.
Comment text reaches HTML only as ``PublicComment.html`` (``render_comment_html``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from smartcity.portal.feedback.errors import FeedbackError, InvalidFeedback, RateLimited
from smartcity.portal.feedback.model import (
    MAX_DEPTH,
    REPORT_REASONS,
    SORTS,
    STANCES,
    Client,
    CommentDraft,
    PublicComment,
    Target,
    VoteResult,
)
from smartcity.portal.feedback.notice import PRIVACY_NOTICE
from smartcity.portal.feedback.sanitize import (
    clean_optional,
    clean_text,
    count_links,
    normalise_email,
)
from smartcity.portal.site import routes, sections
from smartcity.portal.site.auth import (
    account_context,
    assets_tags,
    client_ip,
    csrf_ok,
    csrf_token,
    current_user,
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
from smartcity.portal.site.routes import pages, tr
from smartcity.web.i18n import Lang
from smartcity.web.nav import N_
from smartcity.web.pages import Crumb
from smartcity.web.paging import Pager, page_number
from smartcity.web.routing import LangDep, page, post_page

router = APIRouter()
PER_PAGE = 20
NAME_CHARS = 100
DETAIL_CHARS = 1000
MODERATORS = ("moderator", "admin")

STANCE_LABELS = {"support": N_("Support"), "neutral": N_("Neutral"), "oppose": N_("Oppose")}
REASON_LABELS = {
    "spam": N_("Spam or advertising"),
    "offensive": N_("Offensive or abusive"),
    "off-topic": N_("Not about this measure or topic"),
    "personal-data": N_("Reveals someone's personal data"),
    "other": N_("Something else (say what below)"),
}
SORT_LABELS = {
    "newest": N_("Newest first"),
    "oldest": N_("Oldest first"),
    "votes": N_("Most votes"),
}
# What to tell people when the service refuses (field name, message), by FeedbackError.code.
SERVICE_ERRORS = {
    "reply_too_deep": (
        "_form",
        N_(
            "Replies go at most three levels deep: please reply to an "
            "earlier comment in this conversation."
        ),
    ),
    "unknown_parent": ("_form", N_("The comment you replied to is no longer shown.")),
    "parent_elsewhere": ("_form", N_("The comment you replied to is not on this page.")),
    "unknown_comment": ("_form", N_("This comment is no longer shown.")),
    "own_comment": ("_form", N_("You cannot vote for your own comment.")),
    "invalid_stance": ("stance", N_("Choose whether you support this, are neutral or oppose it.")),
    "invalid_reason": ("reason", N_("Choose why you are reporting this comment.")),
    "detail_required": ("detail", N_("Say what is wrong when you choose “Something else”.")),
    "invalid_email": (
        "email",
        N_("Enter an email address like name@example.com, or leave it empty."),
    ),
}


def said(lang: Lang, code: str) -> str:
    """The message for a refusal's code, in the page's language."""
    msgid = SERVICE_ERRORS[code][1] if code in SERVICE_ERRORS else TOKEN_ERRORS[code]
    return tr(lang, msgid)


@dataclass
class FormState:
    """A form sent back with mistakes: which one, what was typed, what is wrong."""

    form: str  # comment | vote | vote-email | report
    comment_id: int | None  # the comment replied to, voted on or reported
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _when(us: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC)


def _subject_path(kind: str, subject_id: str) -> str:
    return f"/{kind}s/{subject_id}"


# -- the section on measure and area pages ----------------------------------------------------


def _answer_url(request: Request, lang: Lang, kind: str, subject_id: str) -> str | None:
    from smartcity.portal.site.official import answer_url  # imported after this module

    return answer_url(request, lang, kind, subject_id)


def render_section(kind: str, request: Request, subject_id: str, lang: Lang) -> Markup:
    fb = feedback_service(request)
    target = Target.of(kind, subject_id)
    params = request.query_params
    sort = params.get("sort") or "newest"
    sort = sort if sort in SORTS else "newest"
    number = page_number(params.get("page"))
    comments = fb.comments(target, offset=(number - 1) * PER_PAGE, limit=PER_PAGE, sort=sort)
    path = f"/{lang.prefix}{_subject_path(kind, subject_id)}"
    pager = Pager(
        page=number,
        per_page=PER_PAGE,
        total=comments.total,
        base=path,
        params=(("sort", "" if sort == "newest" else sort),),
    )
    messages = take_flash(request, "feedback")
    state: FormState | None = getattr(request.state, "feedback_form", None)
    replying = state is not None and state.form == "comment" and state.comment_id is not None
    if state is not None and replying and state.comment_id not in _replyable(comments.threads):
        # The reply form is not on the page (too deep, hidden, another page of comments): the
        # main form shows the mistake and the text.
        state = FormState("comment", None, state.values, state.errors)
    context: dict[str, Any] = {
        "kind": kind,
        "action": path,
        "comments": comments,
        "pager": pager,
        "sort": sort,
        "sorts": [(code, tr(lang, SORT_LABELS[code])) for code in SORTS],
        "stances": [(code, tr(lang, STANCE_LABELS[code])) for code in STANCES],
        "reasons": [(code, tr(lang, REASON_LABELS[code])) for code in REPORT_REASONS],
        "stance_labels": {code: tr(lang, label) for code, label in STANCE_LABELS.items()},
        "state": state,
        "comment_state": state if state is not None and state.form == "comment" else None,
        "top_messages": [m for m in messages if not m.get("comment")],
        "comment_messages": {m["comment"]: m for m in messages if m.get("comment")},
        "csrf": csrf_token(request),
        "when": _when,
        "max_chars": fb.settings.max_text_chars,
        "max_links": fb.settings.max_links,
        "max_depth": MAX_DEPTH,
        "assets": assets_tags(request),
        "moderator": (user := current_user(request)) is not None and user.role in MODERATORS,
        "answer_url": _answer_url(request, lang, kind, subject_id),
        "page_lang": lang.text,
        "answer_languages": [("en", "English"), ("zh-Hant", "繁體中文"), ("zh-Hans", "简体中文")],
    }
    html = pages.render(request, "feedback_section.html", context, lang=lang).body
    return Markup(bytes(html).decode("utf-8"))


def _replyable(threads: list[PublicComment]) -> set[int]:
    found: set[int] = set()
    for c in threads:
        if c.can_reply:
            found.add(c.id)
        found |= _replyable(c.replies)
    return found


def measure_section(request: Request, measure_id: str, lang: Lang) -> Markup:
    return render_section("measure", request, measure_id, lang)


def area_section(request: Request, area_id: str, lang: Lang) -> Markup:
    return render_section("area", request, area_id, lang)


# -- posting ------------------------------------------------------------------------------------


def _rerender(
    request: Request, lang: Lang, kind: str, subject_id: str, state: FormState, status: int
) -> Response:
    """The page again, with the form as it was sent and what is wrong with it."""
    request.state.feedback_form = state
    data = routes.site_data(request)
    if kind == "measure":
        response = routes.measure(request, subject_id, lang, data)
    else:
        response = routes.area(request, subject_id, lang, data)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def field_errors(
    lang: Lang, values: dict[str, str], max_chars: int, max_links: int
) -> dict[str, str]:
    """Every mistake at once (the service stops at the first)."""
    errors: dict[str, str] = {}
    try:
        text = clean_text(values["text"], "text", max_chars=max_chars)
        if count_links(text) > max_links:
            errors["text"] = tr(
                lang, "Your comment has too many links: at most %(max)s are allowed."
            ) % {"max": max_links}
    except InvalidFeedback as exc:
        if exc.code == "too_short":
            errors["text"] = tr(lang, "Enter your comment.")
        elif exc.code == "too_long":
            errors["text"] = tr(lang, "Your comment is too long: at most %(max)s characters.") % {
                "max": max_chars
            }
        else:
            errors["text"] = tr(
                lang, "Your comment contains characters that cannot be shown. Please remove them."
            )
    try:
        clean_optional(values["name"], "name", max_chars=NAME_CHARS)
    except InvalidFeedback as exc:
        errors["name"] = (
            tr(lang, "The name is too long: at most %(max)s characters.") % {"max": NAME_CHARS}
            if exc.code == "too_long"
            else tr(lang, "The name contains characters that cannot be shown.")
        )
    try:
        normalise_email(values["email"])
    except InvalidFeedback:
        errors["email"] = said(lang, "invalid_email")
    if values["stance"] not in STANCES:
        errors["stance"] = said(lang, "invalid_stance")
    return errors


def service_error(lang: Lang, exc: FeedbackError) -> tuple[str, str, int]:
    """(field, message, status) for a refusal by the feedback service."""
    if isinstance(exc, RateLimited):
        minutes = max(1, -(-exc.retry_after // 60))
        message = tr(
            lang,
            "You have sent a lot in a short time. Please wait %(minutes)s minutes and try again.",
        ) % {"minutes": minutes}
        return "_form", message, 429
    name, msgid = SERVICE_ERRORS.get(
        exc.code, ("_form", N_("This could not be saved. Please check what you entered."))
    )
    return name, tr(lang, msgid), exc.status if 400 <= exc.status < 500 else 400


def _comment_id(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) < 16 else None


def _post_comment(
    request: Request, lang: Lang, target: Target, form: dict[str, str], client: Client
) -> Response:
    fb = feedback_service(request)
    parent_id = _comment_id(form.get("parent"))
    values = {k: form.get(k, "") for k in ("name", "email", "text", "stance")}
    state = FormState("comment", parent_id, values)
    if not csrf_ok(request, form):
        state.errors["_form"] = tr(
            lang,
            "This form had expired, so nothing was sent. Your text "
            "is kept below: please send it again.",
        )
        return _rerender(request, lang, target.kind, target.id, state, 400)
    state.errors = field_errors(lang, values, fb.settings.max_text_chars, fb.settings.max_links)
    if state.errors:
        return _rerender(request, lang, target.kind, target.id, state, 400)
    draft = CommentDraft(
        target=target,
        text=values["text"],
        stance=values["stance"],
        language=lang.text,
        name=values["name"] or None,
        email=values["email"] or None,
        parent_id=parent_id,
        honeypot=form.get("website") or None,
    )
    try:
        result = fb.post_comment(draft, client)
    except FeedbackError as exc:
        if exc.code == "unknown_target":
            raise HTTPException(404) from exc
        name, message, status = service_error(lang, exc)
        state.errors[name] = message
        return _rerender(request, lang, target.kind, target.id, state, status)
    path = f"/{lang.prefix}{_subject_path(target.kind, target.id)}"
    if result.status == "published" and result.comment is not None:
        flash(
            request,
            "feedback",
            tr(lang, "Thank you: your comment is published."),
            comment=result.comment.id,
        )
        return see_other(f"{path}#comment-{result.comment.id}")
    # Pre-moderation, or the honeypot was filled: the same polite answer for both.
    flash(
        request,
        "feedback",
        tr(lang, "Thank you. Your comment will be published once a moderator has read it."),
        "info",
    )
    return see_other(f"{path}#feedback-message")


def _vote(
    request: Request, lang: Lang, target: Target, form: dict[str, str], client: Client
) -> Response:
    """An up-vote: counted for the signed-in account or the person an e-mail link proved;
    anyone else is asked for an address (form ``vote-email``) and sent a link."""
    fb = feedback_service(request)
    action = form.get("form", "")
    comment_id = _comment_id(form.get("comment"))
    if comment_id is None:
        raise HTTPException(400)
    values = {"email": form.get("email", "").strip()}
    state = FormState(action, comment_id, values)
    path = f"/{lang.prefix}{_subject_path(target.kind, target.id)}"
    if not csrf_ok(request, form):
        state.errors["_form"] = tr(
            lang, "This form had expired, so nothing was sent. Please try again."
        )
        return _rerender(request, lang, target.kind, target.id, state, 400)
    try:
        if action == "vote" and client.person is None:
            # Nobody proven yet: the comment shows the e-mail form (nothing failed).
            state.form = "vote-email"
            return _rerender(request, lang, target.kind, target.id, state, 200)
        if action == "vote":
            vote: VoteResult | None = fb.votes.vote(comment_id, client)
        else:
            try:
                given = normalise_email(values["email"])
            except InvalidFeedback:
                given = None
            if given is None:
                state.errors["email"] = tr(lang, "Enter an email address like name@example.com.")
                return _rerender(request, lang, target.kind, target.id, state, 400)
            vote = fb.votes.request_by_email(
                comment_id, values["email"], client, language=lang.text
            )
    except FeedbackError as exc:
        name, message, status = service_error(lang, exc)
        state.errors[name if name == "email" else "_form"] = message
        return _rerender(request, lang, target.kind, target.id, state, status)
    if vote is None:
        text = tr(
            lang,
            "We have sent a link to %(email)s. Your vote counts once you open it and press "
            "its button.",
        ) % {"email": values["email"]}
        flash(request, "feedback", text, "info", comment=comment_id)
    else:
        flash_vote(request, lang, vote)
    return see_other(f"{path}#comment-{comment_id}")


def flash_vote(request: Request, lang: Lang, vote: VoteResult) -> None:
    text = (
        tr(lang, "Thank you: your vote is counted.")
        if vote.recorded
        else tr(lang, "You have already voted for this comment.")
    )
    kind = "success" if vote.recorded else "info"
    flash(request, "feedback", text, kind, comment=vote.comment_id)


def _report(
    request: Request, lang: Lang, target: Target, form: dict[str, str], client: Client
) -> Response:
    fb = feedback_service(request)
    comment_id = _comment_id(form.get("comment"))
    if comment_id is None:
        raise HTTPException(400)
    values = {"reason": form.get("reason", ""), "detail": form.get("detail", "")}
    state = FormState("report", comment_id, values)
    path = f"/{lang.prefix}{_subject_path(target.kind, target.id)}"
    if not csrf_ok(request, form):
        state.errors["_form"] = tr(
            lang, "This form had expired, so nothing was sent. Please try again."
        )
        return _rerender(request, lang, target.kind, target.id, state, 400)
    if values["reason"] not in REPORT_REASONS:
        state.errors["reason"] = said(lang, "invalid_reason")
    elif values["reason"] == "other" and not values["detail"].strip():
        state.errors["detail"] = said(lang, "detail_required")
    elif len(values["detail"].strip()) > DETAIL_CHARS:
        state.errors["detail"] = tr(lang, "At most %(max)s characters.") % {"max": DETAIL_CHARS}
    if state.errors:
        return _rerender(request, lang, target.kind, target.id, state, 400)
    try:
        report = fb.report(comment_id, values["reason"], values["detail"] or None, client)
    except FeedbackError as exc:
        name, message, status = service_error(lang, exc)
        if name not in ("_form", "reason", "detail"):
            name = "detail"  # e.g. a control character in the detail
        state.errors[name] = message
        return _rerender(request, lang, target.kind, target.id, state, status)
    text = (
        tr(lang, "Thank you for your report. A moderator will look at this comment.")
        if report.recorded
        else tr(lang, "You have already reported this comment.")
    )
    flash(request, "feedback", text, "success" if report.recorded else "info")
    return see_other(f"{path}#feedback-message")


def _handle(
    request: Request, lang: Lang, kind: str, subject_id: str, form: dict[str, str]
) -> Response:
    data = routes.site_data(request)
    found = data.measure(subject_id) if kind == "measure" else data.area(subject_id)
    if found is None:
        raise HTTPException(404)
    # The browser's signed voter cookie (rate limits, the first filter of votes), created on
    # the first post; votes count for the person (an account, or an address a link proved).
    voter = voter_token(request)
    created = None if voter else new_voter_token(request)
    client = Client(ip=client_ip(request), session=voter or created, person=voter_person(request))
    target = Target.of(kind, subject_id)
    action = form.get("form")
    if action == "comment":
        response = _post_comment(request, lang, target, form, client)
    elif action in ("vote", "vote-email"):
        response = _vote(request, lang, target, form, client)
    elif action == "report":
        response = _report(request, lang, target, form, client)
    else:
        raise HTTPException(400)
    if created:
        set_voter_cookie(response, request, created)
    return response


@post_page(router, "/measures/{measure_id}")
async def post_on_measure(request: Request, measure_id: str, lang: LangDep) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_handle, request, lang, "measure", measure_id, form)


@post_page(router, "/areas/{area_id}")
async def post_on_area(request: Request, area_id: str, lang: LangDep) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_handle, request, lang, "area", area_id, form)


# -- privacy: export or delete one's comments ---------------------------------------------------


def _privacy_page(
    request: Request, lang: Lang, template: str, context: dict[str, Any], status: int = 200
) -> Response:
    crumbs = [
        Crumb(tr(lang, "Home"), f"/{lang.prefix}/"),
        Crumb(tr(lang, "About and privacy"), f"/{lang.prefix}/about"),
        Crumb(tr(lang, "Your comments and your data")),
    ]
    return pages.render(
        request,
        template,
        {
            "title": tr(lang, "Your comments and your data"),
            "nav_key": "about",
            "breadcrumbs": crumbs,
            "account": account_context(request),
            "csrf": csrf_token(request),
            **context,
        },
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def _privacy_form(
    request: Request, lang: Lang, values: dict[str, str], errors: dict[str, str], status: int
) -> Response:
    notice = [p for p in PRIVACY_NOTICE[lang.text].split("\n\n") if p.strip()]
    return _privacy_page(
        request,
        lang,
        "privacy.html",
        {
            "notice": notice,
            "values": values,
            "errors": errors,
            "messages": take_flash(request, "privacy"),
            "actions": [
                ("export", tr(lang, "Send me a copy of my comments")),
                ("delete", tr(lang, "Delete my comments")),
            ],
        },
        status,
    )


@page(router, "/privacy")
def privacy(request: Request, lang: LangDep) -> Response:
    return _privacy_form(request, lang, {"action": "export"}, {}, 200)


def _privacy_request(request: Request, lang: Lang, form: dict[str, str]) -> Response:
    values = {"email": form.get("email", "").strip(), "action": form.get("action", "")}
    errors: dict[str, str] = {}
    if not csrf_ok(request, form):
        errors["_form"] = tr(lang, "This form had expired, so nothing was sent. Please try again.")
        return _privacy_form(request, lang, values, errors, 400)
    if values["action"] not in ("export", "delete"):
        errors["action"] = tr(lang, "Choose what you would like us to do.")
    try:
        if normalise_email(values["email"]) is None:
            errors["email"] = tr(lang, "Enter the email address you gave with your comments.")
    except InvalidFeedback:
        errors["email"] = tr(lang, "Enter an email address like name@example.com.")
    if errors:
        return _privacy_form(request, lang, values, errors, 400)
    try:
        feedback_service(request).privacy.request_privacy_action(
            values["email"], values["action"], language=lang.text, ip=client_ip(request)
        )
    except FeedbackError as exc:
        name, message, status = service_error(lang, exc)
        errors[name] = message
        return _privacy_form(request, lang, values, errors, status)
    flash(
        request,
        "privacy",
        tr(
            lang,
            "Thank you. If comments were left with this address, we "
            "have sent it a link. The link works once, within 24 "
            "hours.",
        ),
    )
    return see_other(f"/{lang.prefix}/privacy#privacy-message")


@post_page(router, "/privacy")
async def privacy_submit(request: Request, lang: LangDep) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_privacy_request, request, lang, form)


TOKEN_ERRORS = {
    "privacy_token_unknown": N_(
        "This link is not valid. Please check that you copied all of it, or ask for a new one."
    ),
    "privacy_token_used": N_("This link has been used already. Ask for a new one if you need to."),
    "privacy_token_expired": N_("This link has expired. Please ask for a new one."),
}


def _confirm_page(
    request: Request,
    lang: Lang,
    token: str,
    error: str | None = None,
    status: int = 200,
    deleted: int | None = None,
) -> Response:
    return _privacy_page(
        request,
        lang,
        "privacy_confirm.html",
        {"token": token, "error": error, "deleted": deleted},
        status,
    )


@page(router, "/privacy/confirm")
def privacy_confirm(request: Request, lang: LangDep) -> Response:
    # Never act here: mail scanners open links. The button below POSTs.
    token = request.query_params.get("token", "")[:200]
    if not token:
        return _confirm_page(request, lang, "", said(lang, "privacy_token_unknown"), 400)
    return _confirm_page(request, lang, token)


def _privacy_confirm(request: Request, lang: Lang, form: dict[str, str]) -> Response:
    token = form.get("token", "")[:200]
    if not csrf_ok(request, form):
        error = tr(
            lang, "This form had expired, so nothing was done. Please press the button again."
        )
        return _confirm_page(request, lang, token, error, 400)
    try:
        outcome = feedback_service(request).privacy.confirm_privacy_action(token)
    except FeedbackError as exc:
        message = TOKEN_ERRORS.get(exc.code, TOKEN_ERRORS["privacy_token_unknown"])
        return _confirm_page(request, lang, "", tr(lang, message), exc.status)
    if outcome.action == "export":
        body = orjson.dumps(outcome.to_json(), option=orjson.OPT_INDENT_2)
        return Response(
            body,
            media_type="application/json",
            headers={
                "Content-Disposition": 'attachment; filename="my-comments.json"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )
    return _confirm_page(request, lang, "", deleted=outcome.deleted)


@post_page(router, "/privacy/confirm")
async def privacy_confirm_submit(request: Request, lang: LangDep) -> Response:
    form = await read_form(request)
    return await run_in_threadpool(_privacy_confirm, request, lang, form)


sections.register("measure", measure_section)
sections.register("area", area_section)
