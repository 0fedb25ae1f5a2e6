"""Reports that hide a comment are counted per person, like votes.

* ``feedback_reports.reporter_person``: the person who reported (a signed-in account or a
  proven e-mail address, keyed hash), NULL for a report from a browser alone. Only reports
  with a person count towards hiding a comment; the others still wait for a moderator.
* ``uq_feedback_reports_person``: one report per person and comment (NULLs never collide).

Reports from before this revision have no person: they stay in the moderation queue but no
longer count towards hiding (they were counted per client-chosen token).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feedback_reports", sa.Column("reporter_person", sa.String(64), nullable=True))
    op.create_index(
        "uq_feedback_reports_person",
        "feedback_reports",
        ["comment_id", "reporter_person"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_feedback_reports_person", table_name="feedback_reports")
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy would recreate the table.
    op.drop_column("feedback_reports", "reporter_person")
