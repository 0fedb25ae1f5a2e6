"""Failed notifications: those kept in an outbox (``failed_at`` set) because their subscription
expired or was paused while the receiver kept refusing them (see ``outbox``).

They are listed, replayed (owed again: delivered like a new notification, first attempt even
if the subscription is still expired or paused, since an operator asked for it) or discarded
per subscription. The same functions serve entity subscriptions (``outbox``) and registration
subscriptions (``csource_outbox``); the API is in hub/api/notifications.py.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, delete, func, select, update

from smartcity.hub.errors import BadRequestData, ResourceNotFound
from smartcity.hub.subscriptions.model import Doc
from smartcity.hub.timeutil import iso_from_us, now_us
from smartcity.storage.engine import Database


def _failed_of(outbox: Table, tenant: str, sub_id: str) -> ColumnElement[bool]:
    failed = outbox.c.failed_at.is_not(None)
    return failed & (outbox.c.tenant == tenant) & (outbox.c.sub_id == sub_id)


def _about(payload: Doc) -> dict[str, list[str]]:
    """The ids a notification is about: its entities, or its registrations."""
    if "entities" in payload:
        return {"entityIds": [item["doc"]["id"] for item in payload["entities"]]}
    return {"registrationIds": [r["id"] for r in payload.get("registrations", [])]}


def _render(row: Any) -> Doc:
    out: Doc = {
        "id": row.payload["id"],
        "subscriptionId": row.sub_id,
        "notifiedAt": row.payload["notifiedAt"],
        **_about(row.payload),
        "attempts": row.attempts,
        "failedAt": iso_from_us(row.failed_at),
        "failedReason": row.failed_reason,
    }
    if row.last_attempt_at is not None:
        out["lastAttemptAt"] = iso_from_us(row.last_attempt_at)
    if row.last_error:
        out["lastError"] = row.last_error
    return out


def list_failed(
    db: Database, outbox: Table, tenant: str, sub_id: str, *, limit: int, offset: int
) -> tuple[list[Doc], int]:
    """One page of the subscription's failed notifications, oldest first, and their count."""
    where = _failed_of(outbox, tenant, sub_id)
    with db.read() as conn:
        rows = conn.execute(
            select(outbox).where(where).order_by(outbox.c.oid).limit(limit).offset(offset)
        ).all()
        total = conn.execute(select(func.count()).select_from(outbox).where(where)).scalar_one()
    return [_render(r) for r in rows], int(total)


MAX_IDS = 1000  # notification ids named in one replay or discard


def _chosen(
    db: Database, outbox: Table, tenant: str, sub_id: str, ids: list[str] | None
) -> ColumnElement[bool]:
    """The rows of ``ids`` (every failed one when None); 404 naming any that is not there."""
    where = _failed_of(outbox, tenant, sub_id)
    if ids is None:
        return where
    if len(ids) > MAX_IDS:
        raise BadRequestData(f"at most {MAX_IDS} notification ids at a time (got {len(ids)})")
    notification_id = outbox.c.payload["id"].as_string()
    with db.read() as conn:
        rows = conn.execute(
            select(outbox.c.oid, notification_id.label("nid")).where(
                where, notification_id.in_(ids)
            )
        ).all()
    missing = sorted(set(ids) - {r.nid for r in rows})
    if missing:
        raise ResourceNotFound(
            f"subscription {sub_id} has no failed notification {', '.join(missing)}; "
            "GET .../failedNotifications lists them"
        )
    return where & outbox.c.oid.in_([r.oid for r in rows])


def replay_failed(
    db: Database, outbox: Table, tenant: str, sub_id: str, ids: list[str] | None = None
) -> int:
    """Make the failed notifications (``ids``, or all) owed again; how many."""
    where = _chosen(db, outbox, tenant, sub_id, ids)
    with db.write() as conn:
        # attempts back to 0: the next attempt is made even if the subscription is still
        # expired or paused (see outbox); failing again, the notification is kept again.
        replayed = conn.execute(
            update(outbox)
            .where(where)
            .values(
                failed_at=None,
                failed_reason=None,
                attempts=0,
                claimed_by=None,
                next_attempt_at=now_us(),
            )
        ).rowcount
    return int(replayed)


def discard_failed(
    db: Database, outbox: Table, tenant: str, sub_id: str, ids: list[str] | None = None
) -> int:
    """Delete the failed notifications (``ids``, or all); how many."""
    where = _chosen(db, outbox, tenant, sub_id, ids)
    with db.write() as conn:
        return int(conn.execute(delete(outbox).where(where)).rowcount)
