"""The portal's tables (migration 0005): the blueprint's measures, their progress, KPIs, users.

Design notes:

* What the shipped blueprint data says (texts, targets, owners, live links) lives in
  ``portal_measures`` / ``portal_live_links``; what editors enter (status, progress, dates,
  weight, parent) lives in ``portal_progress``. ``blueprint load`` rewrites the first and only
  ever *inserts* into the second, so re-loading never overwrites an editor's work.
* Texts are stored as JSON objects keyed ``en`` / ``zh-Hant`` / ``zh-Hans`` (the ``Text``
  model). ``search`` holds the three languages' titles and texts normalised (NFKC, casefolded):
  search is a ``LIKE`` on it, which matches Chinese (no word splitting needed) and English
  case-insensitively on both backends. 130-odd measures need no full-text index.
* ``portal_audit`` is append-only (a trigger refuses UPDATE on both backends); every change to
  a measure's progress, milestones, parent or texts is one row.
* Times are microseconds since the epoch, as in the hub's tables.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from smartcity.storage.schema import Id, Json, metadata

organisations = Table(
    "portal_organisations",
    metadata,
    Column("code", String(16), primary_key=True),
    Column("name", Json, nullable=False),
)

areas = Table(
    "portal_areas",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", Json, nullable=False),
    Column("ord", Integer, nullable=False),
    Column("intro", Json, nullable=True),
    Column("next_steps", Json, nullable=False),
    Column("outlook", Json, nullable=False),
)

strategies = Table(
    "portal_strategies",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("area", String(32), ForeignKey("portal_areas.id"), nullable=False),
    Column("title", Json, nullable=False),
    Column("ord", Integer, nullable=False),
)

statuses = Table(
    "portal_statuses",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("label", Json, nullable=False),
    # None: choosing the status keeps the measure's progress (e.g. suspended).
    Column("default_progress", Float, nullable=True),
    Column("ord", Integer, nullable=False),
)

measures = Table(
    "portal_measures",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("area", String(32), ForeignKey("portal_areas.id"), nullable=False),
    Column("strategy", String(32), ForeignKey("portal_strategies.id"), nullable=False),
    Column("ord", Integer, nullable=False),
    Column("title", Json, nullable=False),
    Column("text", Json, nullable=False),
    Column("is_new", Boolean, nullable=False),
    Column("target", Json, nullable=True),
    Column("target_date", Date, nullable=True),
    Column("owners", Json, nullable=False),
    Column("search", Text, nullable=False),
    Index("ix_portal_measures_area", "area", "ord"),
)

progress = Table(
    "portal_progress",
    metadata,
    Column(
        "measure_id",
        String(32),
        ForeignKey("portal_measures.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("status", String(32), ForeignKey("portal_statuses.code"), nullable=False),
    Column("progress", Float, nullable=False),
    Column("start_date", Date, nullable=True),
    Column("end_date", Date, nullable=True),
    Column("weight", Float, nullable=False),
    Column("parent_id", String(32), ForeignKey("portal_measures.id"), nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    # Migration 0018: why ``blueprint load`` seeded the status, {"reason", "text"} (the
    # blueprint's sentence); None once an editor has set the status, or for older rows.
    Column("status_basis", Json, nullable=True),
    Index("ix_portal_progress_parent", "parent_id"),
)

milestones = Table(
    "portal_milestones",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "measure_id",
        String(32),
        ForeignKey("portal_measures.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("date", Date, nullable=False),
    Column("title", Json, nullable=False),
    Column("description", Json, nullable=True),
    Column("done", Boolean, nullable=False),
    Index("ix_portal_milestones_measure", "measure_id", "date"),
)

live_links = Table(
    "portal_live_links",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "measure_id",
        String(32),
        ForeignKey("portal_measures.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("ord", Integer, nullable=False),
    Column("link", Json, nullable=False),  # a LiveLink, as the data files write it
    Index("ix_portal_live_links_measure", "measure_id", "ord"),
)

kpis = Table(
    "portal_kpis",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("area", String(32), ForeignKey("portal_areas.id"), nullable=False),
    Column("ord", Integer, nullable=False),
    Column("label", Json, nullable=False),
    Column("value", Float, nullable=False),
    Column("unit", Json, nullable=False),
    Column("qualifier", String(16), nullable=False),
    Column("as_of", String(10), nullable=False),
    Column("text", Json, nullable=False),
)

users = Table(
    "portal_users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("department", String(16), nullable=True),
    Column("display_name", String(255), nullable=True),
    Column("active", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("username", name="uq_portal_users_username"),
)

# One row per failed login, so the limit holds across processes; rows older than the window
# are pruned whenever a failure is recorded.
login_failures = Table(
    "portal_login_failures",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(255), nullable=False),
    Column("at", BigInteger, nullable=False),
    Index("ix_portal_login_failures_user", "username", "at"),
)

# Signed-in sessions (migration 0013): the browser's session cookie holds a random key, this
# table only its SHA-256, so the table's contents open no session. Signing out deletes the
# row; a password change or deactivation deletes every row of the user: each copy of the
# cookie stops working at once. ``seen_at`` (for the idle time-out) is refreshed at most once
# a minute, so reading a session is one indexed read and rarely a write.
sessions = Table(
    "portal_sessions",
    metadata,
    Column("key_digest", String(64), primary_key=True),
    Column("user_id", Id, ForeignKey("portal_users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("seen_at", BigInteger, nullable=False),
    Index("ix_portal_sessions_user", "user_id"),
)

audit = Table(
    "portal_audit",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("measure_id", String(32), ForeignKey("portal_measures.id"), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("user_id", Id, ForeignKey("portal_users.id"), nullable=True),  # None: the system
    Column("actor", String(255), nullable=False),  # username then, or "system"
    Column("field", String(64), nullable=False),
    # JSON text, not a JSON column: SQLite's NUMERIC affinity for "JSON" would turn a stored
    # scalar like "50.0" into a number the JSON decoder then rejects.
    Column("old", Text, nullable=True),
    Column("new", Text, nullable=True),
    Column("note", Text, nullable=True),
    # Migration 0018: the note in each language it was written in, {"en": ..., "zh-Hant": ...}.
    Column("notes", Json, nullable=True),
    Index("ix_portal_audit_measure", "measure_id", "at"),
)
