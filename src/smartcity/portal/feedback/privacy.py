"""Export or delete one's comments by e-mail address, proven by a link sent to that address.

``request_privacy_action`` stores a request under the SHA-256 of a random single-use token and
puts the e-mail with the link into ``mail_outbox`` (the operator's relay sends it; the portal
sends no mail itself). The answer is the same whether or not the address has comments, so
nobody learns who commented; mail is queued only when it has some, so the form cannot be used
to send mail to strangers. ``confirm_privacy_action`` spends the token and does the work.

The link points at the site's confirmation page, which must ask for a button press (POST)
before calling ``confirm_privacy_action``: mail scanners open links by themselves.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import delete, insert, select, update

from smartcity.hub.timeutil import iso_from_us
from smartcity.portal.feedback import repository as repo
from smartcity.portal.feedback.errors import FeedbackNotFound, InvalidFeedback, NotAllowed
from smartcity.portal.feedback.model import DELETED, LANGUAGES
from smartcity.portal.feedback.notice import SITE_PREFIX, privacy_mail
from smartcity.portal.feedback.ratelimit import Limit, enforce
from smartcity.portal.feedback.sanitize import normalise_email
from smartcity.portal.feedback.tables import comments, mail_outbox, privacy_requests, reports

if TYPE_CHECKING:
    from smartcity.portal.feedback.service import FeedbackService

ACTIONS = ("export", "delete")
P = privacy_requests.c
M = mail_outbox.c


class TokenGone(NotAllowed):
    status = 410
    title = "Gone"


@dataclass(frozen=True)
class Mail:
    id: int
    to: str
    subject: str
    body: str
    created_at: int


@dataclass(frozen=True)
class PrivacyOutcome:
    action: str
    # export: the person's comments, every stored field (their own e-mail included).
    comments: list[dict[str, Any]] = field(default_factory=list)
    deleted: int = 0

    def to_json(self) -> dict[str, Any]:
        if self.action == "export":
            return {"action": "export", "comments": self.comments}
        return {"action": "delete", "deleted": self.deleted}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _export_row(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "target": f"{row.target_kind}:{row.target_id}",
        "parentId": row.parent_id,
        "name": row.name,
        "email": row.email,
        "text": row.text,
        "stance": row.stance,
        "language": row.language,
        "status": row.status,
        "votes": row.vote_count,
        "createdAt": iso_from_us(row.created_at),
    }


class PrivacyService:
    def __init__(self, feedback: FeedbackService) -> None:
        self.feedback = feedback
        self.db = feedback.db

    def request_privacy_action(
        self, email: str, action: str, *, language: str = "en", ip: str | None = None
    ) -> None:
        address = normalise_email(email)
        if address is None:
            raise InvalidFeedback("invalid_email", "email is required")
        if action not in ACTIONS:
            raise InvalidFeedback("invalid_action", "action must be export or delete")
        if language not in LANGUAGES:
            raise InvalidFeedback("invalid_language", f"language must be one of {LANGUAGES}")
        s = self.feedback.settings
        now = self.feedback.clock()
        limits = [
            Limit("privacy", "ip", ip, s.privacy_rate_ip),
            Limit("privacy", "email", address, s.privacy_rate_email),
        ]
        token = secrets.token_urlsafe(32)
        with self.db.write() as conn:
            enforce(conn, self.feedback.keyed, limits, now, postgres=self.db.is_postgres)
            conn.execute(delete(privacy_requests).where(P.expires_at < now))
            if not repo.comments_by_email(conn, address):
                return
            conn.execute(
                insert(privacy_requests).values(
                    token_digest=_digest(token),
                    email=address,
                    action=action,
                    language=language,
                    created_at=now,
                    expires_at=now + s.privacy_token_ttl * 1_000_000,
                    used_at=None,
                )
            )
            base = s.public_url.rstrip("/")
            link = f"{base}/{SITE_PREFIX[language]}/privacy/confirm?token={quote(token)}"
            subject, body = privacy_mail(
                language, action, link, max(1, s.privacy_token_ttl // 3600)
            )
            repo.queue_mail(conn, address, subject, body, now)

    def confirm_privacy_action(self, token: str) -> PrivacyOutcome:
        if not isinstance(token, str) or not 10 <= len(token) <= 200:
            raise FeedbackNotFound("privacy_token_unknown", "this link is not valid")
        now = self.feedback.clock()
        with self.db.write() as conn:
            row = conn.execute(
                select(privacy_requests).where(P.token_digest == _digest(token)).with_for_update()
            ).first()
            if row is None:
                raise FeedbackNotFound("privacy_token_unknown", "this link is not valid")
            if row.used_at is not None:
                raise TokenGone("privacy_token_used", "this link has been used already")
            if row.expires_at <= now:
                raise TokenGone("privacy_token_expired", "this link has expired: ask again")
            # Spent, and the address forgotten, before the work is done (same transaction).
            conn.execute(
                update(privacy_requests)
                .where(P.token_digest == row.token_digest)
                .values(used_at=now, email=None)
            )
            rows = repo.comments_by_email(conn, row.email)
            if row.action == "export":
                return PrivacyOutcome("export", comments=[_export_row(r) for r in rows])
            ids = [r.id for r in rows]
            if ids:
                # Keep the rows (replies by others hang below them), scrub what was personal.
                conn.execute(
                    update(comments)
                    .where(comments.c.id.in_(ids))
                    .values(status=DELETED, name=None, email=None, text="", modified_at=now)
                )
                conn.execute(
                    update(reports)
                    .where(reports.c.comment_id.in_(ids), reports.c.resolved_at.is_(None))
                    .values(resolved_at=now, resolution="withdrawn")
                )
                for comment_id in ids:
                    repo.log_action(
                        conn, comment_id, "privacy-request", "deleted_by_author_request", None, now
                    )
            return PrivacyOutcome("delete", deleted=len(ids))

    # -- the operator's mail relay ------------------------------------------------------------

    def pending_mail(self, limit: int = 100) -> list[Mail]:
        stmt = select(mail_outbox).where(M.sent_at.is_(None)).order_by(M.id).limit(limit)
        with self.db.read() as conn:
            return [
                Mail(r.id, r.to_addr, r.subject, r.body, r.created_at) for r in conn.execute(stmt)
            ]

    def mark_sent(self, mail_id: int) -> None:
        """The relay calls this once a message is handed over; the row (an address and a live
        link) is deleted rather than kept."""
        with self.db.write() as conn:
            conn.execute(delete(mail_outbox).where(M.id == mail_id))
