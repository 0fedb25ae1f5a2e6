"""Feedback tables (migration 0006): comments, votes, reports, the moderation log, rate-limit
events, privacy requests and the mail outbox.

Design notes:

* Comments point at a measure or an area by plain strings (``target_kind``, ``target_id``):
  no foreign key into the portal's tables, so feedback survives a re-load of the blueprint and
  the service checks targets through a callable instead.
* ``root_id`` (NULL for a thread's first comment) lets one query read a page of threads and
  then all their replies, however deep.
* Voter tokens, people (an account or a verified e-mail address) and IP addresses are stored
  only as keyed hashes (HMAC with the server secret): enough to count and to refuse a second
  vote, useless to anyone who reads the database.
* A vote belongs to a person (``voter_digest``: a signed-in account or an e-mail address proven
  by a link), one per comment by the primary key; the browser's token (``browser_digest``) is a
  first filter, also one per comment (migration 0013).
* ``vote_count`` is kept in the voting transaction so threads sort by votes without a join.
* Times are microseconds since the epoch, as everywhere else.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from smartcity.storage.schema import Id, Json, metadata

comments = Table(
    "feedback_comments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("target_kind", String(16), nullable=False),
    Column("target_id", String(64), nullable=False),
    Column("parent_id", Id, ForeignKey("feedback_comments.id"), nullable=True),
    Column("root_id", Id, ForeignKey("feedback_comments.id"), nullable=True),
    Column("depth", Integer, nullable=False),
    Column("name", String(100), nullable=True),
    # Lower-cased; never leaves the service except in the owner's own privacy export.
    Column("email", String(254), nullable=True),
    Column("text", Text, nullable=False),
    Column("stance", String(8), nullable=False),
    Column("language", String(16), nullable=False),
    Column("status", String(32), nullable=False),
    Column("official", Boolean, nullable=False, default=False),
    # {"en", "zh-Hant", "zh-Hans"} as the moderator gave it; only on official answers.
    Column("department", Json, nullable=True),
    Column("author_digest", String(64), nullable=True),  # the author's browser token, keyed
    # The author as a person (their account, or the e-mail address they gave), keyed: they may
    # not vote for their own comment. Migration 0013; older comments have none.
    Column("author_person", String(64), nullable=True),
    Column("vote_count", Integer, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Column("modified_at", BigInteger, nullable=False),
    Index("ix_feedback_comments_target", "target_kind", "target_id", "root_id", "created_at"),
    Index("ix_feedback_comments_root", "root_id"),
    Index("ix_feedback_comments_email", "email"),
    Index("ix_feedback_comments_status", "status"),
)

votes = Table(
    "feedback_votes",
    metadata,
    Column(
        "comment_id",
        Id,
        ForeignKey("feedback_comments.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # The person (FeedbackService.person_digest); votes from before 0013 hold the browser's.
    Column("voter_digest", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    # The browser that voted (its voter token, keyed): one vote per browser and comment too.
    Column("browser_digest", String(64), nullable=True),
    Index("uq_feedback_votes_browser", "comment_id", "browser_digest", unique=True),
)

# A vote waiting for its e-mail address to be proven: the link's token (SHA-256), the person
# (the address, keyed: the address itself is only in the outbox) and the browser (migration
# 0013). Confirming the link records the vote.
vote_requests = Table(
    "feedback_vote_requests",
    metadata,
    Column("token_digest", String(64), primary_key=True),
    Column(
        "comment_id", Id, ForeignKey("feedback_comments.id", ondelete="CASCADE"), nullable=False
    ),
    Column("person_digest", String(64), nullable=False),
    Column("browser_digest", String(64), nullable=False),
    Column("language", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Index("ix_feedback_vote_requests_expires", "expires_at"),
)

reports = Table(
    "feedback_reports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "comment_id", Id, ForeignKey("feedback_comments.id", ondelete="CASCADE"), nullable=False
    ),
    Column("reporter_digest", String(64), nullable=False),  # the browser's voter token
    # The person (an account or a proven e-mail address, as for votes), NULL for a browser
    # alone: only reports with a person count towards hiding (migration 0019).
    Column("reporter_person", String(64), nullable=True),
    Column("reason", String(16), nullable=False),
    Column("detail", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    # Set when a moderator acts: 'upheld' (hidden) or 'dismissed' (restored).
    Column("resolved_at", BigInteger, nullable=True),
    Column("resolution", String(16), nullable=True),
    # One report per person and comment, even after review: the same people cannot hide a
    # restored comment again.
    UniqueConstraint("comment_id", "reporter_digest", name="uq_feedback_reports_reporter"),
    Index("uq_feedback_reports_person", "comment_id", "reporter_person", unique=True),
    Index("ix_feedback_reports_open", "resolved_at", "comment_id"),
)

moderation_log = Table(
    "feedback_moderation_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "comment_id", Id, ForeignKey("feedback_comments.id", ondelete="CASCADE"), nullable=False
    ),
    Column("actor", String(255), nullable=False),
    Column("action", String(32), nullable=False),
    Column("reason", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_feedback_moderation_log_comment", "comment_id", "created_at"),
)

rate_events = Table(
    "feedback_rate_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("action", String(16), nullable=False),
    Column("key_digest", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),
    Index("ix_feedback_rate_events_key", "action", "key_digest", "at"),
    Index("ix_feedback_rate_events_at", "at"),
)

counters = Table(
    "feedback_counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

privacy_requests = Table(
    "feedback_privacy_requests",
    metadata,
    Column("token_digest", String(64), primary_key=True),
    # Cleared once the request is carried out.
    Column("email", String(254), nullable=True),
    Column("action", String(8), nullable=False),
    Column("language", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Index("ix_feedback_privacy_requests_expires", "expires_at"),
)

# Messages for the operator's mail relay, which sends them and then deletes the rows.
mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("to_addr", String(254), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=True),
    Index("ix_mail_outbox_unsent", "sent_at", "id"),
)
