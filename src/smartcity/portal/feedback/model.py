"""What the feedback service takes and returns: catalogues and plain dataclasses.

``PublicComment.to_json()`` is the only shape the public ever sees: it has no e-mail field, and
hidden or deleted comments appear only as text-less placeholders that keep a thread readable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from smartcity.hub.timeutil import iso_from_us
from smartcity.portal.blueprint.model import AREAS, LANGS
from smartcity.portal.feedback.errors import InvalidFeedback

TARGET_KINDS = ("measure", "area", "dataset")
# Kinds whose comments always wait for a moderator: reports of a problem with an open dataset
# (the dataset page shows no comments; the app says which datasets exist).
HELD_KINDS = ("dataset",)
LANGUAGES = LANGS
STANCES = ("support", "neutral", "oppose")
REPORT_REASONS = ("spam", "offensive", "off-topic", "personal-data", "other")
SORTS = ("newest", "oldest", "votes")
# Thread depth: a first comment is depth 0; people can reply down to depth 3.
MAX_DEPTH = 3

PUBLISHED = "published"
PENDING = "pending"
HIDDEN_BY_REPORTS = "hidden_by_reports"
HIDDEN_BY_MODERATOR = "hidden_by_moderator"
DELETED = "deleted_by_author_request"
STATUSES = (PUBLISHED, PENDING, HIDDEN_BY_REPORTS, HIDDEN_BY_MODERATOR, DELETED)

_TARGET_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Target:
    kind: str
    id: str

    @classmethod
    def parse(cls, raw: object) -> Target:
        """``measure:mobility-01`` or ``area:mobility``."""
        if not isinstance(raw, str) or ":" not in raw:
            raise InvalidFeedback(
                "invalid_target", "target must be 'measure:<id>', 'area:<id>' or 'dataset:<name>'"
            )
        kind, _, ident = raw.partition(":")
        return cls.of(kind, ident)

    @classmethod
    def of(cls, kind: str, ident: str) -> Target:
        if kind not in TARGET_KINDS:
            raise InvalidFeedback(
                "invalid_target", f"target kind must be one of {', '.join(TARGET_KINDS)}"
            )
        if not _TARGET_ID.match(ident):
            raise InvalidFeedback(
                "invalid_target",
                "target id must be 1-64 characters: lower-case letters, digits, '.', '_', '-'",
            )
        return cls(kind, ident)

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id}


def syntactic_target_check(kind: str, ident: str) -> bool:
    """The default when no catalogue is wired in: any well-formed measure id, the eight areas."""
    return kind == "measure" or ident in AREAS


@dataclass(frozen=True)
class Client:
    """Who is acting: the caller's IP address (rate limits), the opaque voter token of the
    browser (the site's signed cookie or the API's ``X-Voter-Token``: rate limits and the
    first filter of votes; never stored raw) and, when proven, the person
    (``FeedbackService.account_person`` / ``email_person``: a signed-in account or an e-mail
    address confirmed by a link), whom votes are counted by."""

    ip: str | None
    session: str | None
    person: str | None = None


@dataclass
class CommentDraft:
    target: Target
    text: str
    stance: str = "neutral"
    language: str = "en"
    name: str | None = None
    email: str | None = None
    parent_id: int | None = None
    # The form's hidden trap field: people leave it empty, bots fill it in.
    honeypot: str | None = None


@dataclass(frozen=True)
class PublicComment:
    id: int
    target: Target
    parent_id: int | None
    depth: int
    state: Literal["published", "hidden", "deleted"]
    name: str | None
    text: str | None
    html: str | None
    stance: str | None
    language: str
    created_at: int
    votes: int
    official: bool
    department: dict[str, str] | None
    can_reply: bool
    replies: list[PublicComment] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": self.target.to_json(),
            "parentId": self.parent_id,
            "depth": self.depth,
            "state": self.state,
            "name": self.name,
            "text": self.text,
            "html": self.html,
            "stance": self.stance,
            "language": self.language,
            "createdAt": iso_from_us(self.created_at),
            "votes": self.votes,
            "official": self.official,
            "department": self.department,
            "canReply": self.can_reply,
            "replies": [r.to_json() for r in self.replies],
        }


@dataclass(frozen=True)
class CommentPage:
    target: Target
    total: int  # threads (first comments) visible on this target
    offset: int
    limit: int
    sort: str
    threads: list[PublicComment]

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target.to_json(),
            "total": self.total,
            "offset": self.offset,
            "limit": self.limit,
            "sort": self.sort,
            "comments": [c.to_json() for c in self.threads],
        }


@dataclass(frozen=True)
class PostResult:
    """``published`` with the comment, or ``pending`` (pre-moderation, or quietly discarded
    by the honeypot: the two look the same from outside on purpose)."""

    status: Literal["published", "pending"]
    comment: PublicComment | None


@dataclass(frozen=True)
class VoteResult:
    comment_id: int
    recorded: bool  # False: this person or this browser had already voted (nothing changed)
    votes: int

    def to_json(self) -> dict[str, Any]:
        result = "recorded" if self.recorded else "already_voted"
        return {"commentId": self.comment_id, "result": result, "votes": self.votes}


@dataclass(frozen=True)
class ReportResult:
    comment_id: int
    recorded: bool  # False: this browser or person had already reported the comment
    # True: by a person, so it counts towards hiding the comment; False: from a browser alone,
    # it waits for a moderator (or was not recorded).
    counted: bool = False

    def to_json(self) -> dict[str, Any]:
        result = "recorded" if self.recorded else "already_reported"
        return {"commentId": self.comment_id, "result": result, "countsToHide": self.counted}


@dataclass(frozen=True)
class VoteConfirmed:
    """A vote whose e-mail link was opened: the vote, the comment's page (``target``) and the
    person proven (the site remembers it, so the next vote from that browser needs no mail)."""

    vote: VoteResult
    target: Target
    person: str
