"""Portal progress that tells the truth, and editors' trilingual notes.

* ``portal_progress.status_basis``: why the measure has the status ``blueprint load`` seeded,
  ``{"reason": ..., "text": {en, zh-Hant, zh-Hans}}`` (the blueprint's sentence); None for rows
  an editor set or that predate seeding.
* ``portal_audit.notes``: a progress note in up to three languages (``{"en": ..., ...}``);
  ``note`` keeps the note in the language that was written first, for older readers.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("portal_progress", sa.Column("status_basis", Json, nullable=True))
    op.add_column("portal_audit", sa.Column("notes", Json, nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35 and PostgreSQL): a batch copy of portal_audit would
    # lose its append-only trigger.
    op.execute("ALTER TABLE portal_audit DROP COLUMN notes")
    op.execute("ALTER TABLE portal_progress DROP COLUMN status_basis")
