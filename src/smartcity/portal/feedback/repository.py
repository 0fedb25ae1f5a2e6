"""SQL over the feedback tables (callers own the transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, and_, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from smartcity.portal.feedback.model import DELETED, PUBLISHED, Target
from smartcity.portal.feedback.tables import (
    comments,
    counters,
    mail_outbox,
    moderation_log,
    reports,
)

C = comments.c
R = reports.c


def insert_ignore(conn: Connection, table: Any, values: dict[str, Any], keys: list[str]) -> bool:
    """INSERT that does nothing on a duplicate key; True if a row went in."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT here.
    return conn.execute(stmt.returning(table.c[keys[0]])).first() is not None


def bump_counter(conn: Connection, name: str, by: int = 1) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(counters).values(name=name, value=by)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"], set_={"value": counters.c.value + by}
    )
    conn.execute(stmt)


def read_counters(conn: Connection) -> dict[str, int]:
    return {r.name: int(r.value) for r in conn.execute(select(counters))}


def insert_comment(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(insert(comments).values(**values).returning(C.id)).scalar_one())


def get_comment(conn: Connection, comment_id: int, *, lock: bool = False) -> Row[Any] | None:
    stmt = select(comments).where(C.id == comment_id)
    if lock:
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def log_action(
    conn: Connection, comment_id: int, actor: str, action: str, reason: str | None, now: int
) -> None:
    conn.execute(
        insert(moderation_log).values(
            comment_id=comment_id, actor=actor, action=action, reason=reason, created_at=now
        )
    )


def insert_report(conn: Connection, values: dict[str, Any]) -> bool:
    """Store a report; False if this browser or this person has reported the comment already
    (either unique key: DO NOTHING without a conflict target covers both)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(reports).values(**values).on_conflict_do_nothing()
    return conn.execute(stmt.returning(R.id)).first() is not None


def open_person_report_count(conn: Connection, comment_id: int) -> int:
    """Open reports by people (not by a browser alone): what hides a comment."""
    return int(
        conn.execute(
            select(func.count()).where(
                R.comment_id == comment_id,
                R.resolved_at.is_(None),
                R.reporter_person.is_not(None),
            )
        ).scalar_one()
    )


def resolve_reports(conn: Connection, comment_id: int, resolution: str, now: int) -> int:
    result = conn.execute(
        update(reports)
        .where(R.comment_id == comment_id, R.resolved_at.is_(None))
        .values(resolved_at=now, resolution=resolution)
    )
    return int(result.rowcount)


def _visible_root_filter(target: Target) -> Any:
    """Threads worth showing: a published first comment, or any with a published reply (then
    the first comment shows as a placeholder)."""
    reply = aliased(comments)
    has_visible_reply = exists().where(reply.c.root_id == C.id, reply.c.status == PUBLISHED)
    return and_(
        C.target_kind == target.kind,
        C.target_id == target.id,
        C.parent_id.is_(None),
        (C.status == PUBLISHED) | has_visible_reply,
    )


def thread_page(
    conn: Connection, target: Target, *, offset: int, limit: int, sort: str
) -> tuple[int, list[Row[Any]]]:
    where = _visible_root_filter(target)
    total = int(conn.execute(select(func.count()).select_from(comments).where(where)).scalar_one())
    order: list[Any]
    if sort == "oldest":
        order = [C.created_at.asc(), C.id.asc()]
    elif sort == "votes":
        order = [C.vote_count.desc(), C.created_at.desc(), C.id.desc()]
    else:
        order = [C.created_at.desc(), C.id.desc()]
    rows = list(
        conn.execute(select(comments).where(where).order_by(*order).offset(offset).limit(limit))
    )
    return total, rows


def published_after(conn: Connection, after_id: int, limit: int) -> list[Row[Any]]:
    """Published comments with ids above ``after_id``, oldest first (the open data export)."""
    stmt = (
        select(comments)
        .where(C.status == PUBLISHED, C.id > after_id)
        .order_by(C.id.asc())
        .limit(limit)
    )
    return list(conn.execute(stmt))


def replies_of(conn: Connection, root_ids: Sequence[int]) -> list[Row[Any]]:
    if not root_ids:
        return []
    stmt = (
        select(comments)
        .where(C.root_id.in_(list(root_ids)))
        .order_by(C.created_at.asc(), C.id.asc())
    )
    return list(conn.execute(stmt))


def comments_by_email(conn: Connection, email: str) -> list[Row[Any]]:
    stmt = (
        select(comments)
        .where(C.email == email, C.status != DELETED)
        .order_by(C.created_at.asc(), C.id.asc())
    )
    return list(conn.execute(stmt))


def queue_mail(conn: Connection, to: str, subject: str, body: str, now: int) -> None:
    """A message for the operator's mail relay (``PrivacyService.pending_mail``/``mark_sent``)."""
    conn.execute(
        insert(mail_outbox).values(
            to_addr=to, subject=subject, body=body, created_at=now, sent_at=None
        )
    )
