"""The public feedback API under /api/v1 (thin: parse, call the service, render).

Public responses are built only from ``PublicComment.to_json()`` and small result objects, none
of which carries an e-mail address. Writes need a voter token (header ``X-Voter-Token`` or
cookie ``smartcity_voter``): the key of the per-session rate limits and the first filter of
votes. The token is the client's choice, so it never makes a vote: a vote is counted per
person, and over this API a person is an e-mail address proven by the link sent to it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from smartcity.portal.feedback.model import LANGUAGES, Client, CommentDraft, Target
from smartcity.portal.feedback.notice import PRIVACY_NOTICE
from smartcity.portal.feedback.schemas import (
    CommentIn,
    PrivacyConfirmIn,
    PrivacyRequestIn,
    ReportIn,
    VoteConfirmIn,
    VoteIn,
    openapi_body,
    parse_body,
    read_json,
)
from smartcity.portal.feedback.service import FeedbackService

router = APIRouter(prefix="/api/v1", tags=["Feedback"])
VOTER_HEADER = "x-voter-token"
VOTER_COOKIE = "smartcity_voter"
CommentId = Annotated[int, Path(ge=1, le=2**53)]


def feedback(request: Request) -> FeedbackService:
    service: FeedbackService = request.app.state.feedback
    return service


def client_of(request: Request) -> Client:
    token = request.headers.get(VOTER_HEADER) or request.cookies.get(VOTER_COOKIE)
    return Client(ip=request.client.host if request.client else None, session=token)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


@router.get("/comments", summary="Comments on a measure or an area, threaded and paged")
def list_comments(
    request: Request,
    target: Annotated[str, Query(max_length=100, examples=["measure:mobility-01"])],
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    sort: Literal["newest", "oldest", "votes"] = "newest",
) -> Response:
    page = feedback(request).comments(Target.parse(target), offset=offset, limit=limit, sort=sort)
    return json_response(page.to_json())


@router.get("/comments/{comment_id}", summary="One comment with its replies")
def get_comment(request: Request, comment_id: CommentId) -> Response:
    return json_response(feedback(request).comment(comment_id).to_json())


@router.post(
    "/comments",
    summary="Post a comment or a reply (201 published, 202 held for moderation)",
    status_code=201,
    openapi_extra=openapi_body(CommentIn),
)
async def post_comment(request: Request) -> Response:
    body = parse_body(CommentIn, await read_json(request))
    draft = CommentDraft(
        target=Target.parse(body.target),
        text=body.text,
        stance=body.stance,
        language=body.language,
        name=body.name,
        email=body.email,
        parent_id=body.parentId,
        honeypot=body.website,
    )
    result = await run_in_threadpool(feedback(request).post_comment, draft, client_of(request))
    if result.comment is None:
        detail = "thank you: your comment will appear once a moderator has approved it"
        return json_response({"status": "pending", "detail": detail}, 202)
    location = f"/api/v1/comments/{result.comment.id}"
    return json_response(result.comment.to_json(), 201, {"Location": location})


@router.post(
    "/comments/{comment_id}/votes",
    summary="Up-vote: once per person, proven by a link sent to an e-mail address (202)",
    status_code=202,
    openapi_extra=openapi_body(VoteIn, required=False),
)
async def vote(request: Request, comment_id: CommentId) -> Response:
    body = parse_body(VoteIn, await read_json(request, optional=True))
    votes = feedback(request).votes
    client = client_of(request)
    if body.email is None:  # refused (vote_needs_person) unless a person is proven
        result = await run_in_threadpool(votes.vote, comment_id, client)
        return json_response(result.to_json(), 201 if result.recorded else 200)
    already = await run_in_threadpool(
        votes.request_by_email, comment_id, body.email, client, language=body.language
    )
    if already is not None:
        return json_response(already.to_json(), 200)
    detail = "a link was sent to the address: the vote counts once the link is confirmed"
    return json_response({"status": "pending", "detail": detail}, 202)


@router.post(
    "/votes/confirm",
    summary="Count a vote with the token from the e-mail",
    status_code=201,
    openapi_extra=openapi_body(VoteConfirmIn),
)
async def confirm_vote(request: Request) -> Response:
    body = parse_body(VoteConfirmIn, await read_json(request))
    confirmed = await run_in_threadpool(feedback(request).votes.confirm, body.token)
    vote = confirmed.vote
    return json_response(
        vote.to_json(), 201 if vote.recorded else 200, headers={"Cache-Control": "no-store"}
    )


@router.post(
    "/comments/{comment_id}/reports",
    summary="Report a comment to the moderators",
    status_code=201,
    openapi_extra=openapi_body(ReportIn),
)
async def report(request: Request, comment_id: CommentId) -> Response:
    body = parse_body(ReportIn, await read_json(request))
    service = feedback(request)
    result = await run_in_threadpool(
        service.report, comment_id, body.reason, body.detail, client_of(request)
    )
    return json_response(result.to_json(), 201 if result.recorded else 200)


@router.get("/privacy/notice", summary="What the portal stores about commenters, and why")
def privacy_notice(lang: Literal["en", "zh-Hant", "zh-Hans"] | None = None) -> Response:
    if lang is not None:
        return json_response({"language": lang, "text": PRIVACY_NOTICE[lang]})
    return json_response({lang_: PRIVACY_NOTICE[lang_] for lang_ in LANGUAGES})


@router.post(
    "/privacy/requests",
    summary="Ask for an e-mailed link to export or delete one's comments",
    status_code=202,
    openapi_extra=openapi_body(PrivacyRequestIn),
)
async def privacy_request(request: Request) -> Response:
    body = parse_body(PrivacyRequestIn, await read_json(request))
    ip = request.client.host if request.client else None
    await run_in_threadpool(
        feedback(request).privacy.request_privacy_action,
        body.email,
        body.action,
        language=body.language,
        ip=ip,
    )
    detail = "if comments were left with this address, a link has been sent to it"
    return json_response({"status": "accepted", "detail": detail}, 202)


@router.post(
    "/privacy/confirm",
    summary="Carry out a privacy request with the token from the e-mail",
    openapi_extra=openapi_body(PrivacyConfirmIn),
)
async def privacy_confirm(request: Request) -> Response:
    body = parse_body(PrivacyConfirmIn, await read_json(request))
    outcome = await run_in_threadpool(feedback(request).privacy.confirm_privacy_action, body.token)
    return json_response(outcome.to_json(), headers={"Cache-Control": "no-store"})


# -- open data: every published comment, without personal data ---------------------------------
EXPORT_PAGE = 1000
EXPORT_MAX = 1_000_000
EXPORT_COLUMNS = (
    "id",
    "target",
    "parent_id",
    "language",
    "stance",
    "text",
    "votes",
    "official",
    "department_en",
    "department_zh-Hant",
    "department_zh-Hans",
    "created_at",
)


def _published(service: FeedbackService) -> Iterator[dict[str, Any]]:
    after, sent = 0, 0
    while sent < EXPORT_MAX:
        page = service.published(after_id=after, limit=EXPORT_PAGE)
        yield from page
        sent += len(page)
        if len(page) < EXPORT_PAGE:
            return
        after = page[-1]["id"]


def _csv_cell(value: Any) -> Any:
    # Spreadsheets run cells starting with these as formulas; a comment is anyone's text.
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return "" if value is None else value


def _comments_csv(service: FeedbackService) -> Iterator[bytes]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    yield "\ufeff".encode() + out.getvalue().encode()
    for c in _published(service):
        out.seek(0)
        out.truncate()
        department = c["department"] or {}
        row = [
            c["id"], c["target"], c["parent_id"], c["language"], c["stance"], c["text"],
            c["votes"], c["official"], department.get("en"), department.get("zh-Hant"),
            department.get("zh-Hans"), c["created_at"],
        ]  # fmt: skip
        writer.writerow([_csv_cell(v) for v in row])
        yield out.getvalue().encode()


def _comments_json(service: FeedbackService) -> Iterator[bytes]:
    yield b"["
    for n, c in enumerate(_published(service)):
        yield (b"," if n else b"") + orjson.dumps(c)
    yield b"]"


@router.get("/comments.csv", summary="Every published comment as CSV (open data)")
def comments_csv(request: Request) -> StreamingResponse:
    """Published (moderated) comments and official replies, oldest first, without personal
    data: no names, e-mail addresses or author digests. UTF-8 with a byte order mark."""
    return StreamingResponse(
        _comments_csv(feedback(request)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="comments.csv"'},
    )


@router.get("/comments.json", summary="Every published comment as JSON (open data)")
def comments_json(request: Request) -> StreamingResponse:
    """The same as comments.csv, as a JSON array."""
    return StreamingResponse(_comments_json(feedback(request)), media_type="application/json")
