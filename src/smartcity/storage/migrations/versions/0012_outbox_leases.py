"""Notification delivery that never drops: worker leases and kept failed notifications.

Both outboxes (``outbox``, ``csource_outbox``) get ``claimed_by`` (the delivery worker
holding the row; ``next_attempt_at`` is its short lease, renewed while it works),
``last_attempt_at``, and ``failed_at`` / ``failed_reason`` for a notification given up because
its subscription expired or was paused while the receiver kept failing (kept, listed and
replayable). The due index leads with ``failed_at`` so claims skip failed rows.
Registration subscriptions get ``last_notification`` like entity subscriptions.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

OUTBOXES = (("outbox", "ix_outbox_due"), ("csource_outbox", "ix_csource_outbox_due"))


def upgrade() -> None:
    for table, index in OUTBOXES:
        op.add_column(table, sa.Column("claimed_by", sa.String(64), nullable=True))
        op.add_column(table, sa.Column("last_attempt_at", sa.BigInteger, nullable=True))
        op.add_column(table, sa.Column("failed_at", sa.BigInteger, nullable=True))
        op.add_column(table, sa.Column("failed_reason", sa.Text, nullable=True))
        op.drop_index(index, table_name=table)
        op.create_index(index, table, ["failed_at", "next_attempt_at"])
    op.add_column(
        "csource_subscriptions", sa.Column("last_notification", sa.BigInteger, nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("csource_subscriptions") as batch:
        batch.drop_column("last_notification")
    for table, index in OUTBOXES:
        op.drop_index(index, table_name=table)
        # Failed notifications have nowhere to go in the old layout: they become due again.
        op.execute(f"UPDATE {table} SET next_attempt_at = 0 WHERE failed_at IS NOT NULL")
        with op.batch_alter_table(table) as batch:
            for column in ("failed_reason", "failed_at", "last_attempt_at", "claimed_by"):
                batch.drop_column(column)
        op.create_index(index, table, ["next_attempt_at"])
