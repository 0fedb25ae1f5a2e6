"""Request bodies of the feedback API: shapes and types only (the service checks content).

Strict (no coercion of 1 to "1") and closed (unknown members are errors, so a typo in a field
name is reported instead of silently ignored). Flat, so the OpenAPI document needs no $refs.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request

from smartcity.hub.text import NUL_HINT, may_hold_nul, nul_location
from smartcity.portal.feedback.errors import (
    InvalidFeedback,
    PayloadTooLarge,
    UnsupportedMediaType,
)

MAX_BODY_BYTES = 64 * 1024
# Generous caps on raw sizes; the service applies the real limits after trimming.
_TEXT = 20_000
_SHORT = 1_000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CommentIn(_Body):
    target: str = Field(max_length=100, examples=["measure:mobility-01"])
    text: str = Field(max_length=_TEXT)
    stance: Literal["support", "neutral", "oppose"] = "neutral"
    language: Literal["en", "zh-Hant", "zh-Hans"] = "en"
    name: str | None = Field(default=None, max_length=_SHORT)
    email: str | None = Field(default=None, max_length=_SHORT)
    parentId: int | None = Field(default=None, ge=1, le=2**53)
    # Honeypot: forms hide it from people; anything in it marks a bot.
    website: str | None = Field(default=None, max_length=_SHORT)


class ReportIn(_Body):
    reason: Literal["spam", "offensive", "off-topic", "personal-data", "other"]
    detail: str | None = Field(default=None, max_length=_SHORT * 4)


class VoteIn(_Body):
    # Without it a vote needs a signed-in person, which the API never has: the address gets a
    # link, and the vote counts when the link is confirmed.
    email: str | None = Field(default=None, max_length=_SHORT)
    language: Literal["en", "zh-Hant", "zh-Hans"] = "en"


class VoteConfirmIn(_Body):
    token: str = Field(max_length=_SHORT)


class PrivacyRequestIn(_Body):
    email: str = Field(max_length=_SHORT)
    action: Literal["export", "delete"]
    language: Literal["en", "zh-Hant", "zh-Hans"] = "en"


class PrivacyConfirmIn(_Body):
    token: str = Field(max_length=_SHORT)


class ModerationIn(_Body):
    reason: str | None = Field(default=None, max_length=_SHORT * 4)


class AnswerIn(_Body):
    text: str = Field(max_length=_TEXT)
    department: dict[str, str] = Field(
        examples=[{"en": "Transport Department", "zh-Hant": "運輸署", "zh-Hans": "运输署"}]
    )
    language: Literal["en", "zh-Hant", "zh-Hans"] = "en"


def openapi_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {
        "requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}
    }


async def read_json(request: Request, *, optional: bool = False) -> Any:
    """The body as JSON: application/json in UTF-8, at most MAX_BODY_BYTES."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge("body_too_large", f"the body may hold at most {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(
                "body_too_large", f"the body may hold at most {MAX_BODY_BYTES} bytes"
            )
    if not body:
        if optional:
            return {}
        raise InvalidFeedback("empty_body", "the request needs a JSON object as its body")
    media, _, params = request.headers.get("content-type", "").partition(";")
    if media.strip().lower() != "application/json":
        raise UnsupportedMediaType("unsupported_media_type", "send the body as application/json")
    charset = params.strip().lower().removeprefix("charset=").strip('"')
    if params.strip() and charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType("unsupported_media_type", "the body must be UTF-8")
    try:
        data = orjson.loads(bytes(body))
    except orjson.JSONDecodeError as exc:
        raise InvalidFeedback("invalid_json", f"the body is not valid UTF-8 JSON: {exc}") from None
    found = nul_location(data) if may_hold_nul(body) else None
    if found is not None:  # PostgreSQL cannot store it (hub/text.py)
        raise InvalidFeedback("invalid_text", f"{found} holds {NUL_HINT}")
    return data


M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise InvalidFeedback("invalid_body", "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise InvalidFeedback("invalid_body", "; ".join(parts)) from None
