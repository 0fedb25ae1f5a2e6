"""Feedback errors: the hub's ProblemDetails types plus a machine-readable ``code``.

They subclass the hub's errors so the app renders them as ProblemDetails like every other API
error; the site catches them (``FeedbackError``) and shows a translated message chosen by
``code`` instead of ``detail``, which is English.
"""

from __future__ import annotations

from typing import Any

from smartcity.hub.errors import (
    BadRequestData,
    Forbidden,
    InvalidRequest,
    NgsiError,
    ResourceNotFound,
    Unauthorized,
)


class FeedbackError(NgsiError):
    """Base of every error the feedback service raises on purpose."""

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail, code=code, **extra)
        self.code = code


class InvalidFeedback(FeedbackError, BadRequestData):
    """The input breaks a rule (length, links, characters, depth ...)."""


class FeedbackNotFound(FeedbackError, ResourceNotFound):
    """No such comment, target or request — or it is not visible to the public."""


class NotAllowed(FeedbackError, InvalidRequest):
    """The action does not fit the comment's state (e.g. restoring a deleted comment)."""

    status = 409


class VoteRefused(FeedbackError, Forbidden):
    """A vote the rules do not allow: nobody proven to vote as (``vote_needs_person``: sign in
    or confirm an e-mail address), or one's own comment (``own_comment``)."""


class RateLimited(FeedbackError, InvalidRequest):
    """Too many actions in the window; ``retry_after`` says in how many seconds to retry."""

    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__("rate_limited", detail, retry_after=retry_after)
        self.retry_after = retry_after


class PayloadTooLarge(FeedbackError, InvalidRequest):
    status = 413
    title = "Payload too large"


class UnsupportedMediaType(FeedbackError, InvalidRequest):
    status = 415
    title = "Unsupported media type"


class ModeratorRequired(FeedbackError, Unauthorized):
    """No moderator credentials."""


class ModeratorForbidden(FeedbackError, Forbidden):
    """Credentials that may not moderate."""
