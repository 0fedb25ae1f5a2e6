"""The portal: measures, their progress, milestones and audit trail; KPIs; users and roles.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")

# The status catalogue as first shipped; `blueprint load` keeps it in step afterwards.
STATUSES = [
    ("planned", {"en": "Planned", "zh-Hant": "計劃中", "zh-Hans": "计划中"}, 0.0, 1),
    ("in_progress", {"en": "In progress", "zh-Hant": "進行中", "zh-Hans": "进行中"}, 50.0, 2),
    ("completed", {"en": "Completed", "zh-Hant": "已完成", "zh-Hans": "已完成"}, 100.0, 3),
    ("ongoing", {"en": "Ongoing", "zh-Hant": "持續推行", "zh-Hans": "持续推行"}, 100.0, 4),
    ("suspended", {"en": "Suspended", "zh-Hant": "暫停", "zh-Hans": "暂停"}, None, 5),
]


def _measure_fk(name: str = "measure_id", *, cascade: bool = True) -> sa.Column[str]:
    return sa.Column(
        name,
        sa.String(32),
        sa.ForeignKey("portal_measures.id", ondelete="CASCADE" if cascade else None),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "portal_organisations",
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("name", Json, nullable=False),
    )
    op.create_table(
        "portal_areas",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", Json, nullable=False),
        sa.Column("ord", sa.Integer, nullable=False),
        sa.Column("intro", Json, nullable=True),
        sa.Column("next_steps", Json, nullable=False),
        sa.Column("outlook", Json, nullable=False),
    )
    op.create_table(
        "portal_strategies",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("area", sa.String(32), sa.ForeignKey("portal_areas.id"), nullable=False),
        sa.Column("title", Json, nullable=False),
        sa.Column("ord", sa.Integer, nullable=False),
    )
    statuses = op.create_table(
        "portal_statuses",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("label", Json, nullable=False),
        sa.Column("default_progress", sa.Float, nullable=True),
        sa.Column("ord", sa.Integer, nullable=False),
    )
    op.bulk_insert(
        statuses,
        [
            {"code": c, "label": label, "default_progress": p, "ord": o}
            for c, label, p, o in STATUSES
        ],
    )
    op.create_table(
        "portal_measures",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("area", sa.String(32), sa.ForeignKey("portal_areas.id"), nullable=False),
        sa.Column("strategy", sa.String(32), sa.ForeignKey("portal_strategies.id"), nullable=False),
        sa.Column("ord", sa.Integer, nullable=False),
        sa.Column("title", Json, nullable=False),
        sa.Column("text", Json, nullable=False),
        sa.Column("is_new", sa.Boolean, nullable=False),
        sa.Column("target", Json, nullable=True),
        sa.Column("target_date", sa.Date, nullable=True),
        sa.Column("owners", Json, nullable=False),
        sa.Column("search", sa.Text, nullable=False),
    )
    op.create_index("ix_portal_measures_area", "portal_measures", ["area", "ord"])
    op.create_table(
        "portal_progress",
        sa.Column(
            "measure_id",
            sa.String(32),
            sa.ForeignKey("portal_measures.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("status", sa.String(32), sa.ForeignKey("portal_statuses.code"), nullable=False),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("start_date", sa.Date, nullable=True),
        sa.Column("end_date", sa.Date, nullable=True),
        sa.Column("weight", sa.Float, nullable=False),
        sa.Column("parent_id", sa.String(32), sa.ForeignKey("portal_measures.id"), nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_portal_progress_parent", "portal_progress", ["parent_id"])
    op.create_table(
        "portal_milestones",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _measure_fk(),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("title", Json, nullable=False),
        sa.Column("description", Json, nullable=True),
        sa.Column("done", sa.Boolean, nullable=False),
    )
    op.create_index("ix_portal_milestones_measure", "portal_milestones", ["measure_id", "date"])
    op.create_table(
        "portal_live_links",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _measure_fk(),
        sa.Column("ord", sa.Integer, nullable=False),
        sa.Column("link", Json, nullable=False),
    )
    op.create_index("ix_portal_live_links_measure", "portal_live_links", ["measure_id", "ord"])
    op.create_table(
        "portal_kpis",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("area", sa.String(32), sa.ForeignKey("portal_areas.id"), nullable=False),
        sa.Column("ord", sa.Integer, nullable=False),
        sa.Column("label", Json, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("unit", Json, nullable=False),
        sa.Column("qualifier", sa.String(16), nullable=False),
        sa.Column("as_of", sa.String(10), nullable=False),
        sa.Column("text", Json, nullable=False),
    )
    op.create_table(
        "portal_users",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("department", sa.String(16), nullable=True),
        sa.Column("display_name", sa.String(255), nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("username", name="uq_portal_users_username"),
    )
    op.create_table(
        "portal_login_failures",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_portal_login_failures_user", "portal_login_failures", ["username", "at"])
    op.create_table(
        "portal_audit",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _measure_fk(cascade=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("user_id", Id, sa.ForeignKey("portal_users.id"), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("old", sa.Text, nullable=True),
        sa.Column("new", sa.Text, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
    )
    op.create_index("ix_portal_audit_measure", "portal_audit", ["measure_id", "at"])
    # The audit trail is append-only: refuse UPDATE in the database itself, so no code path
    # (or hand-typed SQL) can rewrite history. DELETE stays possible for test/cleanup tooling.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TRIGGER portal_audit_no_update BEFORE UPDATE ON portal_audit "
            "BEGIN SELECT RAISE(ABORT, 'portal_audit is append-only'); END"
        )
    else:
        op.execute(
            "CREATE FUNCTION portal_audit_no_update() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'portal_audit is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER portal_audit_no_update BEFORE UPDATE ON portal_audit "
            "FOR EACH ROW EXECUTE FUNCTION portal_audit_no_update()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS portal_audit_no_update")
    else:
        op.execute("DROP TRIGGER IF EXISTS portal_audit_no_update ON portal_audit")
        op.execute("DROP FUNCTION IF EXISTS portal_audit_no_update()")
    for table in (
        "portal_audit",
        "portal_login_failures",
        "portal_users",
        "portal_kpis",
        "portal_live_links",
        "portal_milestones",
        "portal_progress",
        "portal_measures",
        "portal_statuses",
        "portal_strategies",
        "portal_areas",
        "portal_organisations",
    ):
        op.drop_table(table)
