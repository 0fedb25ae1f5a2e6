"""Portal hardening: server-side sign-in sessions, and votes counted per person.

* ``portal_sessions``: one row per signed-in session (the SHA-256 of the cookie's key), so
  signing out, a password change or a deactivation ends every copy of a session cookie.
* ``feedback_votes.browser_digest``: the browser that voted, one vote per browser and comment
  (the first filter); ``voter_digest`` now names the person (an account or a proven e-mail
  address). Existing votes were counted per browser: their browser is their old voter digest.
* ``feedback_comments.author_person``: the author as a person, so nobody votes for their own
  comment.
* ``feedback_vote_requests``: votes waiting for their e-mail address to be proven by a link.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "portal_sessions",
        sa.Column("key_digest", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            Id,
            sa.ForeignKey("portal_users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("seen_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_portal_sessions_user", "portal_sessions", ["user_id"])

    op.add_column("feedback_votes", sa.Column("browser_digest", sa.String(64), nullable=True))
    op.execute("UPDATE feedback_votes SET browser_digest = voter_digest")
    op.create_index(
        "uq_feedback_votes_browser",
        "feedback_votes",
        ["comment_id", "browser_digest"],
        unique=True,
    )
    op.add_column("feedback_comments", sa.Column("author_person", sa.String(64), nullable=True))

    op.create_table(
        "feedback_vote_requests",
        sa.Column("token_digest", sa.String(64), primary_key=True),
        sa.Column(
            "comment_id",
            Id,
            sa.ForeignKey("feedback_comments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("person_digest", sa.String(64), nullable=False),
        sa.Column("browser_digest", sa.String(64), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("used_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_feedback_vote_requests_expires", "feedback_vote_requests", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_feedback_vote_requests_expires", table_name="feedback_vote_requests")
    op.drop_table("feedback_vote_requests")
    # Plain DROP COLUMN (SQLite 3.35+), not a batch copy: recreating feedback_comments on
    # SQLite would cascade-delete every vote and report.
    op.drop_column("feedback_comments", "author_person")
    op.drop_index("uq_feedback_votes_browser", table_name="feedback_votes")
    op.drop_column("feedback_votes", "browser_digest")
    op.drop_index("ix_portal_sessions_user", table_name="portal_sessions")
    op.drop_table("portal_sessions")
