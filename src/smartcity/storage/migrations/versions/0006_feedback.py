"""The portal: public feedback on measures and topics, votes, reports and moderation.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _comment_fk() -> sa.Column[int]:
    return sa.Column(
        "comment_id", Id, sa.ForeignKey("feedback_comments.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "feedback_comments",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("target_kind", sa.String(16), nullable=False),
        sa.Column("target_id", sa.String(64), nullable=False),
        sa.Column("parent_id", Id, sa.ForeignKey("feedback_comments.id"), nullable=True),
        sa.Column("root_id", Id, sa.ForeignKey("feedback_comments.id"), nullable=True),
        sa.Column("depth", sa.Integer, nullable=False),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("stance", sa.String(8), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("official", sa.Boolean, nullable=False),
        sa.Column("department", Json, nullable=True),
        sa.Column("author_digest", sa.String(64), nullable=True),
        sa.Column("vote_count", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("modified_at", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_feedback_comments_target",
        "feedback_comments",
        ["target_kind", "target_id", "root_id", "created_at"],
    )
    op.create_index("ix_feedback_comments_root", "feedback_comments", ["root_id"])
    op.create_index("ix_feedback_comments_email", "feedback_comments", ["email"])
    op.create_index("ix_feedback_comments_status", "feedback_comments", ["status"])
    op.create_table(
        "feedback_votes",
        sa.Column(
            "comment_id",
            Id,
            sa.ForeignKey("feedback_comments.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("voter_digest", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "feedback_reports",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _comment_fk(),
        sa.Column("reporter_digest", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("resolved_at", sa.BigInteger, nullable=True),
        sa.Column("resolution", sa.String(16), nullable=True),
        sa.UniqueConstraint("comment_id", "reporter_digest", name="uq_feedback_reports_reporter"),
    )
    op.create_index("ix_feedback_reports_open", "feedback_reports", ["resolved_at", "comment_id"])
    op.create_table(
        "feedback_moderation_log",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _comment_fk(),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_feedback_moderation_log_comment",
        "feedback_moderation_log",
        ["comment_id", "created_at"],
    )
    op.create_table(
        "feedback_rate_events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("key_digest", sa.String(64), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_feedback_rate_events_key", "feedback_rate_events", ["action", "key_digest", "at"]
    )
    op.create_index("ix_feedback_rate_events_at", "feedback_rate_events", ["at"])
    op.create_table(
        "feedback_counters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "feedback_privacy_requests",
        sa.Column("token_digest", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("used_at", sa.BigInteger, nullable=True),
    )
    op.create_index(
        "ix_feedback_privacy_requests_expires", "feedback_privacy_requests", ["expires_at"]
    )
    op.create_table(
        "mail_outbox",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("to_addr", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("sent_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_mail_outbox_unsent", "mail_outbox", ["sent_at", "id"])


def downgrade() -> None:
    for table in (
        "mail_outbox",
        "feedback_privacy_requests",
        "feedback_counters",
        "feedback_rate_events",
        "feedback_moderation_log",
        "feedback_reports",
        "feedback_votes",
        "feedback_comments",
    ):
        op.drop_table(table)
