"""Votes: one person, one vote per comment, never one's own.

A person is a signed-in portal account or an e-mail address proven by a link
(``Client.person``: ``FeedbackService.account_person`` / ``email_person``, keyed hashes).
The browser's voter token stays as a first filter: one vote per browser and comment too. Both
rules are unique keys of ``feedback_votes``, so concurrent requests cannot slip past them.

Someone with neither asks for a link (``request_by_email``): the vote waits in
``feedback_vote_requests`` and the link, in ``mail_outbox`` for the operator's mail relay,
points at the site's confirmation page (a button that POSTs: mail scanners open links).
``confirm`` spends the token and records the vote; the site then remembers the proven person
in that browser's session, so its next votes need no mail.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from smartcity.portal.feedback import repository as repo
from smartcity.portal.feedback.errors import (
    FeedbackNotFound,
    InvalidFeedback,
    NotAllowed,
    VoteRefused,
)
from smartcity.portal.feedback.model import (
    LANGUAGES,
    PUBLISHED,
    Client,
    Target,
    VoteConfirmed,
    VoteResult,
)
from smartcity.portal.feedback.notice import SITE_PREFIX, vote_mail
from smartcity.portal.feedback.ratelimit import Limit, enforce
from smartcity.portal.feedback.sanitize import normalise_email
from smartcity.portal.feedback.tables import comments, vote_requests, votes

if TYPE_CHECKING:
    from smartcity.portal.feedback.service import FeedbackService

V = vote_requests.c


class TokenGone(NotAllowed):
    status = 410
    title = "Gone"


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class VoteService:
    def __init__(self, feedback: FeedbackService) -> None:
        self.feedback = feedback
        self.db = feedback.db

    def vote(self, comment_id: int, client: Client) -> VoteResult:
        """Up-vote as ``client.person``; a second vote by the person or from the browser
        changes nothing and says so."""
        fb = self.feedback
        browser = fb.voter_digest(client.session)
        if client.person is None:
            raise VoteRefused(
                "vote_needs_person",
                "a vote counts once per person: sign in on the site, or send an e-mail address "
                'in the body ({"email": "..."}) and open the link we send to it',
            )
        s = fb.settings
        limits = [
            Limit("reaction", "session", client.session, s.reaction_rate_session),
            Limit("reaction", "ip", client.ip, s.reaction_rate_ip),
        ]
        now = fb.clock()
        with self.db.write() as conn:
            row = self._votable(conn, comment_id, client.person, browser)
            if not self._insert(conn, comment_id, client.person, browser, now):
                return VoteResult(comment_id, False, row.vote_count)
            enforce(conn, fb.keyed, limits, now, postgres=self.db.is_postgres)
            self._count_one_more(conn, comment_id)
            return VoteResult(comment_id, True, row.vote_count + 1)

    def request_by_email(
        self, comment_id: int, email: str | None, client: Client, *, language: str = "en"
    ) -> VoteResult | None:
        """Queue a link to ``email``; opening it (``confirm``) counts the vote. None: the link
        is on its way; a VoteResult (not recorded): this browser has voted for it already.
        Whether the address has voted is not said here (that would tell anyone who types an
        address); the link's page says it."""
        fb = self.feedback
        browser = fb.voter_digest(client.session)
        address = normalise_email(email)
        if address is None:
            raise InvalidFeedback("invalid_email", "email is required to vote without signing in")
        if language not in LANGUAGES:
            raise InvalidFeedback("invalid_language", f"language must be one of {LANGUAGES}")
        person = fb.email_person(address)
        s = fb.settings
        now = fb.clock()
        limits = [
            Limit("vote-mail", "ip", client.ip, s.vote_mail_rate_ip),
            Limit("vote-mail", "email", address, s.vote_mail_rate_email),
        ]
        token = secrets.token_urlsafe(32)
        with self.db.write() as conn:
            row = self._votable(conn, comment_id, person, browser)
            voted = conn.execute(
                select(votes.c.comment_id).where(
                    votes.c.comment_id == comment_id, votes.c.browser_digest == browser
                )
            ).first()
            if voted is not None:
                return VoteResult(comment_id, False, row.vote_count)
            enforce(conn, fb.keyed, limits, now, postgres=self.db.is_postgres)
            conn.execute(delete(vote_requests).where(V.expires_at < now))
            conn.execute(
                insert(vote_requests).values(
                    token_digest=_token_digest(token),
                    comment_id=comment_id,
                    person_digest=person,
                    browser_digest=browser,
                    language=language,
                    created_at=now,
                    expires_at=now + s.vote_token_ttl * 1_000_000,
                    used_at=None,
                )
            )
            base = s.public_url.rstrip("/")
            link = f"{base}/{SITE_PREFIX[language]}/votes/confirm?token={quote(token)}"
            subject, body = vote_mail(language, link, max(1, s.vote_token_ttl // 3600))
            repo.queue_mail(conn, address, subject, body, now)
        return None

    def confirm(self, token: str) -> VoteConfirmed:
        """Spend the link's token and record its vote (or say it was already counted)."""
        if not isinstance(token, str) or not 10 <= len(token) <= 200:
            raise FeedbackNotFound("vote_token_unknown", "this link is not valid")
        now = self.feedback.clock()
        with self.db.write() as conn:
            request = conn.execute(
                select(vote_requests)
                .where(V.token_digest == _token_digest(token))
                .with_for_update()
            ).first()
            if request is None:
                raise FeedbackNotFound("vote_token_unknown", "this link is not valid")
            if request.used_at is not None:
                raise TokenGone("vote_token_used", "this link has been used already")
            if request.expires_at <= now:
                raise TokenGone("vote_token_expired", "this link has expired: vote again")
            conn.execute(
                update(vote_requests)
                .where(V.token_digest == request.token_digest)
                .values(used_at=now)
            )
            cid, person = request.comment_id, request.person_digest
            row = self._votable(conn, cid, person, request.browser_digest)
            target = Target(row.target_kind, row.target_id)
            if self._insert(conn, cid, person, request.browser_digest, now):
                self._count_one_more(conn, cid)
                result = VoteResult(cid, True, row.vote_count + 1)
            else:
                result = VoteResult(cid, False, row.vote_count)
        return VoteConfirmed(result, target, person)

    # -- in the caller's transaction ----------------------------------------------------------

    def _votable(self, conn: Connection, comment_id: int, person: str, browser: str) -> Any:
        """The comment, locked, if it is published and not the voter's own."""
        row = repo.get_comment(conn, comment_id, lock=True)
        if row is None or row.status != PUBLISHED:
            raise FeedbackNotFound("unknown_comment", f"there is no comment {comment_id}")
        fb = self.feedback
        authors = {row.author_person, row.author_digest}
        if row.email:  # older comments have no author_person: the address they gave
            authors.add(fb.email_person(row.email))
        if person in authors or browser in authors:
            raise VoteRefused("own_comment", "nobody may vote for their own comment")
        return row

    def _insert(self, conn: Connection, cid: int, person: str, browser: str, now: int) -> bool:
        """True if the vote went in; False if the person or the browser already voted (either
        unique key: DO NOTHING without a conflict target covers both)."""
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = (
            dialect.insert(votes)
            .values(comment_id=cid, voter_digest=person, browser_digest=browser, created_at=now)
            .on_conflict_do_nothing()
            .returning(votes.c.comment_id)
        )
        return conn.execute(stmt).first() is not None

    def _count_one_more(self, conn: Connection, comment_id: int) -> None:
        # Kept beside the votes (same transaction, the comment row locked) so threads sort by
        # votes without a join.
        conn.execute(
            comments.update()
            .where(comments.c.id == comment_id)
            .values(vote_count=comments.c.vote_count + 1)
        )
