"""Moderation API under /api/v1/moderation, for moderators' tools and scripts.

Authentication: an API key (``smartcity keys create NAME --scope write``) allowed to write the
default tenant, as ``Authorization: Bearer <key>``; the log records the key's id and name. The
site's moderator pages use their own sessions and call ``FeedbackService.moderation`` directly.
Under ``serve --no-auth`` these endpoints are open too, like every write.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smartcity.portal.feedback.endpoints import CommentId, feedback, json_response
from smartcity.portal.feedback.errors import ModeratorForbidden, ModeratorRequired
from smartcity.portal.feedback.moderation import ModerationItem
from smartcity.portal.feedback.schemas import (
    AnswerIn,
    ModerationIn,
    openapi_body,
    parse_body,
    read_json,
)

router = APIRouter(prefix="/api/v1/moderation", tags=["Feedback moderation"])


def moderator(request: Request) -> str:
    """The acting moderator's name for the log, or an error."""
    hub = request.app.state.hub
    header = request.headers.get("authorization", "")
    if not header:
        if not hub.settings.auth_required:
            return "anonymous (--no-auth)"
        raise ModeratorRequired(
            "moderator_required", "moderation needs a write API key: 'Authorization: Bearer <key>'"
        )
    kind, _, token = header.partition(" ")
    key = hub.keys.verify(token.strip()) if kind.lower() == "bearer" and token.strip() else None
    if key is None:
        raise ModeratorRequired("moderator_required", "the API key is missing, unknown or revoked")
    if not key.allows("", "write"):
        raise ModeratorForbidden(
            "moderator_forbidden", f"the API key '{key.name}' may not moderate (needs write)"
        )
    return f"key {key.key_id} ({key.name})"


Moderator = Annotated[str, Depends(moderator)]


@router.get("/queue", summary="Comments waiting for a moderator, most urgent first")
def queue(
    request: Request,
    _actor: Moderator,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    total, items = feedback(request).moderation.queue(offset=offset, limit=limit)
    return json_response(
        {"total": total, "offset": offset, "limit": limit, "items": [i.to_json() for i in items]}
    )


@router.get("/comments/{comment_id}", summary="A comment as moderators see it, with its log")
def moderation_item(request: Request, _actor: Moderator, comment_id: CommentId) -> Response:
    service = feedback(request).moderation
    body = service.item(comment_id).to_json()
    body["log"] = [e.to_json() for e in service.log(comment_id)]
    return json_response(body)


@router.get("/log", summary="Every moderation action, newest first")
def moderation_log(
    request: Request,
    _actor: Moderator,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    entries = feedback(request).moderation.log(offset=offset, limit=limit)
    return json_response(
        {"offset": offset, "limit": limit, "entries": [e.to_json() for e in entries]}
    )


async def _act(request: Request, actor: str, comment_id: int, action: str) -> Response:
    body = parse_body(ModerationIn, await read_json(request, optional=True))
    service = feedback(request).moderation
    method = {"hide": service.hide, "restore": service.restore, "approve": service.approve}[action]
    item: ModerationItem = await run_in_threadpool(method, comment_id, actor, body.reason)
    return json_response(item.to_json())


_OPTIONAL_REASON = openapi_body(ModerationIn, required=False)


@router.post("/comments/{comment_id}/hide", summary="Hide", openapi_extra=_OPTIONAL_REASON)
async def hide(request: Request, actor: Moderator, comment_id: CommentId) -> Response:
    return await _act(request, actor, comment_id, "hide")


@router.post(
    "/comments/{comment_id}/restore",
    summary="Publish again and dismiss open reports",
    openapi_extra=_OPTIONAL_REASON,
)
async def restore(request: Request, actor: Moderator, comment_id: CommentId) -> Response:
    return await _act(request, actor, comment_id, "restore")


@router.post(
    "/comments/{comment_id}/approve",
    summary="Publish a pre-moderated comment",
    openapi_extra=_OPTIONAL_REASON,
)
async def approve(request: Request, actor: Moderator, comment_id: CommentId) -> Response:
    return await _act(request, actor, comment_id, "approve")


@router.post(
    "/comments/{comment_id}/answer",
    summary="Answer officially, in a department's name",
    status_code=201,
    openapi_extra=openapi_body(AnswerIn),
)
async def answer(request: Request, actor: Moderator, comment_id: CommentId) -> Response:
    body = parse_body(AnswerIn, await read_json(request))
    service = feedback(request).moderation
    comment = await run_in_threadpool(
        lambda: service.answer(
            comment_id, actor, body.text, body.department, language=body.language
        )
    )
    return json_response(comment.to_json(), 201, {"Location": f"/api/v1/comments/{comment.id}"})
