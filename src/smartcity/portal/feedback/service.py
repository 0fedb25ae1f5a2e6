"""``FeedbackService``: comments and reports for the public (votes, moderation and privacy
hang off it as ``.votes``, ``.moderation`` and ``.privacy``). See the package docstring for
the API."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from smartcity.config import FeedbackSettings
from smartcity.hub.timeutil import iso_from_us, now_us
from smartcity.portal.feedback import repository as repo
from smartcity.portal.feedback.csrf import mint_csrf_token, verify_csrf_token
from smartcity.portal.feedback.errors import FeedbackNotFound, InvalidFeedback
from smartcity.portal.feedback.model import (
    HELD_KINDS,
    LANGUAGES,
    MAX_DEPTH,
    PENDING,
    PUBLISHED,
    REPORT_REASONS,
    SORTS,
    STANCES,
    Client,
    CommentDraft,
    CommentPage,
    PostResult,
    PublicComment,
    ReportResult,
    Target,
    syntactic_target_check,
)
from smartcity.portal.feedback.ratelimit import Limit, enforce
from smartcity.portal.feedback.sanitize import (
    clean_optional,
    clean_text,
    count_links,
    normalise_email,
)
from smartcity.portal.feedback.secret import Keyed, shared_secret
from smartcity.portal.feedback.tables import comments
from smartcity.portal.feedback.threads import build_threads, find_in
from smartcity.storage.engine import Database

log = logging.getLogger("smartcity.feedback")
TargetCheck = Callable[[str, str], bool]
_TOKEN = re.compile(r"^[A-Za-z0-9._~+/=-]{16,256}$")
MAX_PAGE = 100


def check_choice(value: object, field: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidFeedback(f"invalid_{field}", f"{field} must be one of {', '.join(allowed)}")
    return value


class FeedbackService:
    def __init__(
        self,
        db: Database,
        settings: FeedbackSettings | None = None,
        *,
        target_exists: TargetCheck | None = None,
        clock: Callable[[], int] = now_us,
    ) -> None:
        from smartcity.portal.feedback.moderation import ModerationService
        from smartcity.portal.feedback.privacy import PrivacyService
        from smartcity.portal.feedback.votes import VoteService

        self.db = db
        self.settings = settings or FeedbackSettings()
        # Replaceable after construction (the app wires in the measures catalogue).
        self.target_exists: TargetCheck = target_exists or syntactic_target_check
        self.clock = clock
        self._keyed: Keyed | None = None
        self.moderation = ModerationService(self)
        self.privacy = PrivacyService(self)
        self.votes = VoteService(self)

    @property
    def keyed(self) -> Keyed:
        # Resolved on first use, so an app that never takes feedback never creates the file.
        if self._keyed is None:
            self._keyed = Keyed(self.settings.secret or shared_secret(self.db))
        return self._keyed

    # -- tokens for the site ------------------------------------------------------------------

    def mint_csrf(self, session_id: str) -> str:
        return mint_csrf_token(self.keyed, session_id)

    def verify_csrf(self, session_id: str, token: str | None) -> bool:
        return verify_csrf_token(self.keyed, session_id, token)

    def voter_digest(self, token: str | None) -> str:
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise InvalidFeedback(
                "voter_token_required",
                "a voter token is required: 16-256 characters [A-Za-z0-9._~+/=-], sent as the "
                "X-Voter-Token header or the smartcity_voter cookie",
            )
        return self.keyed.digest("voter", token)

    # People, whom votes are counted by (keyed: the database never holds an account id or an
    # address beside a vote).
    def account_person(self, user_id: int) -> str:
        """A signed-in portal account."""
        return self.keyed.digest("person", f"account:{user_id}")

    def email_person(self, email: str) -> str:
        """An e-mail address (normalised: ``A@Example.org`` and ``a@example.org`` are one)."""
        return self.keyed.digest("person", f"email:{normalise_email(email) or ''}")

    def _limits(
        self, action: str, client: Client, session_rate: tuple[int, int], ip_rate: tuple[int, int]
    ) -> list[Limit]:
        return [
            Limit(action, "session", client.session, session_rate),
            Limit(action, "ip", client.ip, ip_rate),
        ]

    def check_target(self, target: Target) -> None:
        if not self.target_exists(target.kind, target.id):
            raise FeedbackNotFound("unknown_target", f"there is no {target.kind} {target.id!r}")

    # -- comments -----------------------------------------------------------------------------

    def validate(self, draft: CommentDraft) -> dict[str, Any]:
        """Check a draft without storing it; returns the normalised column values."""
        s = self.settings
        text = clean_text(draft.text, "text", max_chars=s.max_text_chars)
        links = count_links(text)
        if links > s.max_links:
            raise InvalidFeedback(
                "too_many_links", f"text has {links} links; at most {s.max_links} are allowed"
            )
        return {
            "target_kind": draft.target.kind,
            "target_id": draft.target.id,
            "text": text,
            "name": clean_optional(draft.name, "name", max_chars=100),
            "email": normalise_email(draft.email),
            "stance": check_choice(draft.stance, "stance", STANCES),
            "language": check_choice(draft.language, "language", LANGUAGES),
        }

    def post_comment(self, draft: CommentDraft, client: Client) -> PostResult:
        if draft.honeypot:
            # Quietly: the bot is told what a pre-moderated comment gets, and learns nothing.
            log.warning("feedback: honeypot filled on %s; comment discarded", draft.target)
            with self.db.write() as conn:
                repo.bump_counter(conn, "honeypot")
            return PostResult("pending", None)
        values = self.validate(draft)
        author = self.voter_digest(client.session)
        self.check_target(draft.target)
        s = self.settings
        now = self.clock()
        limits = self._limits("comment", client, s.comment_rate_session, s.comment_rate_ip)
        with self.db.write() as conn:
            enforce(conn, self.keyed, limits, now, postgres=self.db.is_postgres)
            depth, root = 0, None
            if draft.parent_id is not None:
                parent = repo.get_comment(conn, draft.parent_id)
                if parent is None or parent.status != PUBLISHED:
                    raise FeedbackNotFound(
                        "unknown_parent", f"there is no comment {draft.parent_id} to reply to"
                    )
                if (parent.target_kind, parent.target_id) != (draft.target.kind, draft.target.id):
                    raise InvalidFeedback(
                        "parent_elsewhere",
                        f"comment {parent.id} belongs to {parent.target_kind}:{parent.target_id}",
                    )
                if parent.depth >= MAX_DEPTH:
                    raise InvalidFeedback(
                        "reply_too_deep",
                        f"replies go at most {MAX_DEPTH} levels deep and comment {parent.id} is "
                        "already at the deepest level: reply to an earlier comment instead",
                    )
                depth, root = parent.depth + 1, parent.root_id or parent.id
            held = s.premoderation or draft.target.kind in HELD_KINDS
            status = PENDING if held else PUBLISHED
            comment_id = repo.insert_comment(
                conn,
                {
                    **values,
                    "parent_id": draft.parent_id,
                    "root_id": root,
                    "depth": depth,
                    "status": status,
                    "official": False,
                    "author_digest": author,
                    # Proven (an account) or merely given (an address): either way, not their voter.
                    "author_person": client.person
                    or (self.email_person(values["email"]) if values["email"] else None),
                    "vote_count": 0,
                    "created_at": now,
                    "modified_at": now,
                },
            )
            if status == PENDING:
                repo.log_action(conn, comment_id, "system", "queued", "pre-moderation", now)
        if status == PENDING:
            return PostResult("pending", None)
        return PostResult("published", self.comment(comment_id))

    def comments(
        self, target: Target, *, offset: int = 0, limit: int = 20, sort: str = "newest"
    ) -> CommentPage:
        """One page of threads (first comments, each with all its visible replies)."""
        check_choice(sort, "sort", SORTS)
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise InvalidFeedback("invalid_page", f"offset >= 0 and limit 1..{MAX_PAGE}")
        with self.db.snapshot() as conn:
            total, roots = repo.thread_page(conn, target, offset=offset, limit=limit, sort=sort)
            replies = repo.replies_of(conn, [r.id for r in roots])
        return CommentPage(target, total, offset, limit, sort, build_threads(roots, replies))

    def published(self, *, after_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Published comments as open data, oldest first, paged by id: what the portal shows
        the public, without personal data (no name, e-mail address or author digests; an
        official answer names its department)."""
        with self.db.read() as conn:
            rows = repo.published_after(conn, after_id, limit)
        return [
            {
                "id": row.id,
                "target": f"{row.target_kind}:{row.target_id}",
                "parent_id": row.parent_id,
                "language": row.language,
                "stance": row.stance,
                "text": row.text,
                "votes": row.vote_count,
                "official": bool(row.official),
                "department": row.department,
                "created_at": iso_from_us(row.created_at),
            }
            for row in rows
        ]

    def comment(self, comment_id: int) -> PublicComment:
        """One visible comment with its replies (a placeholder if hidden but replied to)."""
        node = None
        with self.db.snapshot() as conn:
            row = repo.get_comment(conn, comment_id)
            root = repo.get_comment(conn, row.root_id) if row is not None and row.root_id else row
            if root is not None:
                threads = build_threads([root], repo.replies_of(conn, [root.id]))
                node = find_in(threads, comment_id)
        if node is None:
            raise FeedbackNotFound("unknown_comment", f"there is no comment {comment_id}")
        return node

    # -- reports -----------------------------------------------------------------------------------

    def _visible_for_update(self, conn: Any, comment_id: int) -> Any:
        row = repo.get_comment(conn, comment_id, lock=True)
        if row is None or row.status != PUBLISHED:
            raise FeedbackNotFound("unknown_comment", f"there is no comment {comment_id}")
        return row

    def report(
        self, comment_id: int, reason: str, detail: str | None, client: Client
    ) -> ReportResult:
        """Report a comment. Every report waits for a moderator; only reports by people
        (``client.person``: a signed-in account or a proven e-mail address) count towards
        hiding it, at ``reports_to_hide`` open ones. A browser's token is the client's choice
        (made-up tokens are free), so a report from a browser alone never hides anything."""
        check_choice(reason, "reason", REPORT_REASONS)
        detail_text = clean_optional(detail, "detail", max_chars=1000)
        if reason == "other" and detail_text is None:
            raise InvalidFeedback("detail_required", "say what is wrong when the reason is other")
        reporter = self.voter_digest(client.session)
        s = self.settings
        limits = self._limits("reaction", client, s.reaction_rate_session, s.reaction_rate_ip)
        now = self.clock()
        with self.db.write() as conn:
            self._visible_for_update(conn, comment_id)
            values = {
                "comment_id": comment_id,
                "reporter_digest": reporter,
                "reporter_person": client.person,
                "reason": reason,
                "detail": detail_text,
                "created_at": now,
            }
            if not repo.insert_report(conn, values):
                return ReportResult(comment_id, False)
            enforce(conn, self.keyed, limits, now, postgres=self.db.is_postgres)
            if client.person is None:
                return ReportResult(comment_id, True, counted=False)
            open_reports = repo.open_person_report_count(conn, comment_id)
            if open_reports >= s.reports_to_hide:
                conn.execute(
                    comments.update()
                    .where(comments.c.id == comment_id, comments.c.status == PUBLISHED)
                    .values(status="hidden_by_reports", modified_at=now)
                )
                repo.log_action(
                    conn, comment_id, "system", "hidden_by_reports", f"{open_reports} reports", now
                )
        return ReportResult(comment_id, True, counted=True)

    def stats(self) -> dict[str, int]:
        """Counters for operators (e.g. ``honeypot``: comments discarded as bots')."""
        with self.db.read() as conn:
            return repo.read_counters(conn)
