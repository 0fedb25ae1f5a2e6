"""Moderation: the queue, hide / restore / approve, official answers, and the log of it all.

Every action is one transaction that changes the comment, settles its open reports and writes a
``feedback_moderation_log`` row (who, when, what, why). The moderator's identity is whatever the
caller authenticated (an API key's name, a site user's login); this module trusts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, case, exists, func, select

from smartcity.hub.timeutil import iso_from_us
from smartcity.portal.feedback import repository as repo
from smartcity.portal.feedback.errors import FeedbackNotFound, InvalidFeedback, NotAllowed
from smartcity.portal.feedback.model import (
    HIDDEN_BY_MODERATOR,
    HIDDEN_BY_REPORTS,
    LANGUAGES,
    PENDING,
    PUBLISHED,
    PublicComment,
)
from smartcity.portal.feedback.sanitize import clean_optional, clean_text
from smartcity.portal.feedback.tables import comments, moderation_log, reports

if TYPE_CHECKING:
    from smartcity.portal.feedback.service import FeedbackService

C = comments.c
R = reports.c
L = moderation_log.c


@dataclass(frozen=True)
class ReportView:
    reason: str
    detail: str | None
    created_at: int
    by_person: bool = False  # an account or a proven address: it counts towards hiding

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "detail": self.detail,
            "createdAt": iso_from_us(self.created_at),
            "byPerson": self.by_person,
        }


@dataclass(frozen=True)
class LogEntry:
    comment_id: int
    actor: str
    action: str
    reason: str | None
    created_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "commentId": self.comment_id,
            "actor": self.actor,
            "action": self.action,
            "reason": self.reason,
            "at": iso_from_us(self.created_at),
        }


@dataclass(frozen=True)
class ModerationItem:
    """A comment as moderators see it: full text and status, open reports; still no e-mail
    (moderators do not need it to moderate)."""

    id: int
    target: str
    parent_id: int | None
    depth: int
    status: str
    name: str | None
    text: str
    stance: str
    language: str
    official: bool
    votes: int
    created_at: int
    open_reports: list[ReportView]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": self.target,
            "parentId": self.parent_id,
            "depth": self.depth,
            "status": self.status,
            "name": self.name,
            "text": self.text,
            "stance": self.stance,
            "language": self.language,
            "official": self.official,
            "votes": self.votes,
            "createdAt": iso_from_us(self.created_at),
            "openReports": [r.to_json() for r in self.open_reports],
        }


def _item(row: Any, open_reports: list[ReportView]) -> ModerationItem:
    return ModerationItem(
        id=row.id,
        target=f"{row.target_kind}:{row.target_id}",
        parent_id=row.parent_id,
        depth=row.depth,
        status=row.status,
        name=row.name,
        text=row.text,
        stance=row.stance,
        language=row.language,
        official=bool(row.official),
        votes=row.vote_count,
        created_at=row.created_at,
        open_reports=open_reports,
    )


def check_actor(actor: str) -> str:
    if not isinstance(actor, str) or not actor.strip() or len(actor) > 255:
        raise InvalidFeedback("invalid_actor", "a moderator action needs who did it (1-255 chars)")
    return actor.strip()


def check_department(raw: object) -> dict[str, str]:
    if not isinstance(raw, dict) or set(raw) != set(LANGUAGES):
        raise InvalidFeedback(
            "invalid_department",
            "department must name the department in en, zh-Hant and zh-Hans",
        )
    return {
        lang: clean_text(raw[lang], f"department.{lang}", max_chars=200, multiline=False)
        for lang in LANGUAGES
    }


class ModerationService:
    def __init__(self, feedback: FeedbackService) -> None:
        self.feedback = feedback
        self.db = feedback.db

    def _open_reports(self, conn: Connection, ids: list[int]) -> dict[int, list[ReportView]]:
        found: dict[int, list[ReportView]] = {i: [] for i in ids}
        if ids:
            stmt = (
                select(R.comment_id, R.reason, R.detail, R.created_at, R.reporter_person)
                .where(R.comment_id.in_(ids), R.resolved_at.is_(None))
                .order_by(R.created_at, R.id)
            )
            for r in conn.execute(stmt):
                found[r.comment_id].append(
                    ReportView(r.reason, r.detail, r.created_at, r.reporter_person is not None)
                )
        return found

    def queue(self, *, offset: int = 0, limit: int = 50) -> tuple[int, list[ModerationItem]]:
        """What needs a moderator: hidden by reports first, then pending, then comments with
        open reports below the threshold; oldest first within each group."""
        has_open = exists().where(R.comment_id == C.id, R.resolved_at.is_(None))
        where = (C.status.in_([PENDING, HIDDEN_BY_REPORTS])) | ((C.status == PUBLISHED) & has_open)
        priority = case((C.status == HIDDEN_BY_REPORTS, 0), (C.status == PENDING, 1), else_=2)
        with self.db.snapshot() as conn:
            total = int(
                conn.execute(select(func.count()).select_from(comments).where(where)).scalar_one()
            )
            rows = list(
                conn.execute(
                    select(comments)
                    .where(where)
                    .order_by(priority, C.created_at, C.id)
                    .offset(max(0, offset))
                    .limit(max(1, min(limit, 200)))
                )
            )
            open_reports = self._open_reports(conn, [r.id for r in rows])
        return total, [_item(r, open_reports[r.id]) for r in rows]

    def item(self, comment_id: int) -> ModerationItem:
        with self.db.snapshot() as conn:
            row = repo.get_comment(conn, comment_id)
            if row is None:
                raise FeedbackNotFound("unknown_comment", f"there is no comment {comment_id}")
            return _item(row, self._open_reports(conn, [comment_id])[comment_id])

    def _transition(
        self,
        comment_id: int,
        actor: str,
        reason: str | None,
        *,
        action: str,
        allowed_from: tuple[str, ...],
        to: str,
        resolution: str,
    ) -> ModerationItem:
        actor = check_actor(actor)
        why = clean_optional(reason, "reason", max_chars=1000)
        now = self.feedback.clock()
        with self.db.write() as conn:
            row = repo.get_comment(conn, comment_id, lock=True)
            if row is None:
                raise FeedbackNotFound("unknown_comment", f"there is no comment {comment_id}")
            if row.status not in allowed_from:
                raise NotAllowed(
                    "invalid_transition", f"cannot {action} a comment that is {row.status}"
                )
            conn.execute(
                comments.update().where(C.id == comment_id).values(status=to, modified_at=now)
            )
            repo.resolve_reports(conn, comment_id, resolution, now)
            repo.log_action(conn, comment_id, actor, action, why, now)
        return self.item(comment_id)

    def hide(self, comment_id: int, actor: str, reason: str | None = None) -> ModerationItem:
        return self._transition(
            comment_id,
            actor,
            reason,
            action="hide",
            to=HIDDEN_BY_MODERATOR,
            resolution="upheld",
            allowed_from=(PUBLISHED, PENDING, HIDDEN_BY_REPORTS, HIDDEN_BY_MODERATOR),
        )

    def restore(self, comment_id: int, actor: str, reason: str | None = None) -> ModerationItem:
        """Publish again (or keep published) and dismiss every open report."""
        return self._transition(
            comment_id,
            actor,
            reason,
            action="restore",
            to=PUBLISHED,
            resolution="dismissed",
            allowed_from=(PUBLISHED, HIDDEN_BY_REPORTS, HIDDEN_BY_MODERATOR),
        )

    def approve(self, comment_id: int, actor: str, reason: str | None = None) -> ModerationItem:
        """Publish a comment held by pre-moderation."""
        return self._transition(
            comment_id,
            actor,
            reason,
            action="approve",
            to=PUBLISHED,
            resolution="dismissed",
            allowed_from=(PENDING,),
        )

    def answer(
        self,
        comment_id: int,
        actor: str,
        text: str,
        department: dict[str, str],
        *,
        language: str = "en",
    ) -> PublicComment:
        """An official answer: a published reply shown with the department's name. It may sit
        one level below the deepest reply, and nobody can reply under it there."""
        actor = check_actor(actor)
        body = clean_text(text, "text", max_chars=self.feedback.settings.max_text_chars)
        dept = check_department(department)
        if language not in LANGUAGES:
            raise InvalidFeedback("invalid_language", f"language must be one of {LANGUAGES}")
        now = self.feedback.clock()
        with self.db.write() as conn:
            parent = repo.get_comment(conn, comment_id, lock=True)
            if parent is None:
                raise FeedbackNotFound("unknown_comment", f"there is no comment {comment_id}")
            if parent.status != PUBLISHED:
                raise NotAllowed(
                    "invalid_transition", f"approve or restore comment {comment_id} first"
                )
            answer_id = repo.insert_comment(
                conn,
                {
                    "target_kind": parent.target_kind,
                    "target_id": parent.target_id,
                    "parent_id": parent.id,
                    "root_id": parent.root_id or parent.id,
                    "depth": parent.depth + 1,
                    "name": None,
                    "email": None,
                    "text": body,
                    "stance": "neutral",
                    "language": language,
                    "status": PUBLISHED,
                    "official": True,
                    "department": dept,
                    "author_digest": None,
                    "vote_count": 0,
                    "created_at": now,
                    "modified_at": now,
                },
            )
            repo.log_action(
                conn, answer_id, actor, "answer", f"official answer to {parent.id}", now
            )
        return self.feedback.comment(answer_id)

    def log(
        self, comment_id: int | None = None, *, offset: int = 0, limit: int = 100
    ) -> list[LogEntry]:
        """The moderation log, newest first; of one comment, or of all."""
        stmt = select(moderation_log).order_by(L.created_at.desc(), L.id.desc())
        if comment_id is not None:
            stmt = stmt.where(L.comment_id == comment_id)
        stmt = stmt.offset(max(0, offset)).limit(max(1, min(limit, 500)))
        with self.db.read() as conn:
            return [
                LogEntry(r.comment_id, r.actor, r.action, r.reason, r.created_at)
                for r in conn.execute(stmt)
            ]
