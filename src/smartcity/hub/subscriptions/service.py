"""Stored subscriptions: CRUD, and a per-tenant cache of compiled active ones for the matcher.

The cache is what keeps entity writes cheap: the matcher runs inside every write transaction
and must not read and compile every subscription each time. It is invalidated at once by any
create/update/delete in this process. Other processes sharing the database (several workers
on PostgreSQL) change subscriptions without telling us, so a cached tenant is also reloaded
when it is older than ``cache_ttl`` seconds: a subscription created by another process starts
matching within that delay.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from smartcity.hub.changes import Listeners
from smartcity.hub.errors import AlreadyExists, Conflict, ResourceNotFound
from smartcity.hub.subscriptions.matcher import Compiled, compile_subscription
from smartcity.hub.subscriptions.model import Doc
from smartcity.hub.timeutil import now_us
from smartcity.storage import schema
from smartcity.storage.engine import Database

log = logging.getLogger(__name__)
S = schema.subscriptions
O = schema.outbox  # noqa: E741

STAT_COLUMNS = (
    "times_sent",
    "times_failed",
    "last_notification",
    "last_success",
    "last_failure",
    "created_at",
    "modified_at",
)


@dataclass
class StoredSubscription:
    tenant: str
    doc: Doc
    stats: dict[str, Any]  # the status columns, see STAT_COLUMNS


def _stored(row: Any) -> StoredSubscription:
    return StoredSubscription(
        tenant=row.tenant, doc=row.doc, stats={c: getattr(row, c) for c in STAT_COLUMNS}
    )


def _not_found(sub_id: str, tenant: str) -> ResourceNotFound:
    where = f" in tenant {tenant!r}" if tenant else ""
    return ResourceNotFound(f"subscription {sub_id} does not exist{where}")


class SubscriptionService:
    def __init__(self, db: Database, *, cache_ttl: float = 2.0) -> None:
        self.db = db
        self.cache_ttl = cache_ttl
        self._lock = threading.Lock()
        # tenant -> (loaded at, compiled active-or-paused subscriptions)
        self._cache: dict[str, tuple[float, list[Compiled]]] = {}
        # Bumped by every invalidation, so that a load that raced with a change is not kept.
        self._generation: dict[str, int] = {}
        self._periodic: tuple[float, list[Compiled]] | None = None
        # Told (tenant, subscription id) after any change (the notifier listens).
        self.changed: Listeners[[str, str]] = Listeners("subscription changed")

    # -- CRUD ----------------------------------------------------------------------------------
    def create(self, tenant: str, doc: Doc) -> None:
        now = now_us()
        try:
            with self.db.write() as conn:
                exists = conn.execute(
                    select(S.c.sub_id).where(S.c.tenant == tenant, S.c.sub_id == doc["id"])
                ).first()
                if exists is not None:
                    raise AlreadyExists(f"subscription {doc['id']} already exists")
                conn.execute(
                    insert(S).values(
                        tenant=tenant,
                        sub_id=doc["id"],
                        doc=doc,
                        created_at=now,
                        modified_at=now,
                        times_sent=0,
                        times_failed=0,
                    )
                )
        except IntegrityError:  # a concurrent create with the same id won
            raise AlreadyExists(f"subscription {doc['id']} already exists") from None
        self._changed(tenant, doc["id"])

    def get(self, tenant: str, sub_id: str) -> StoredSubscription:
        with self.db.read() as conn:
            row = conn.execute(select(S).where(S.c.tenant == tenant, S.c.sub_id == sub_id)).first()
        if row is None:
            raise _not_found(sub_id, tenant)
        return _stored(row)

    def find(self, tenant: str, sub_id: str) -> StoredSubscription | None:
        try:
            return self.get(tenant, sub_id)
        except ResourceNotFound:
            return None

    def query(
        self, tenant: str, *, limit: int, offset: int = 0, count: bool = False
    ) -> tuple[list[StoredSubscription], int | None]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(S)
                .where(S.c.tenant == tenant)
                .order_by(S.c.created_at, S.c.sub_id)
                .limit(limit)
                .offset(offset)
            ).all()
            total = None
            if count:
                total = int(
                    conn.execute(
                        select(func.count()).select_from(S).where(S.c.tenant == tenant)
                    ).scalar_one()
                )
        return [_stored(r) for r in rows], total

    def update(self, tenant: str, doc: Doc, *, expected_modified: int) -> None:
        """Store a changed document; ``expected_modified`` (the modified_at column of the
        version it was derived from) turns a concurrent PATCH into a 409, not a lost update."""
        with self.db.write() as conn:
            row = conn.execute(
                select(S.c.modified_at).where(S.c.tenant == tenant, S.c.sub_id == doc["id"])
            ).first()
            if row is None:
                raise _not_found(doc["id"], tenant)
            if row.modified_at != expected_modified:
                raise Conflict(f"subscription {doc['id']} was changed concurrently; retry")
            conn.execute(
                update(S)
                .where(S.c.tenant == tenant, S.c.sub_id == doc["id"])
                .values(doc=doc, modified_at=now_us())
            )
        self._changed(tenant, doc["id"])

    def delete(self, tenant: str, sub_id: str) -> None:
        with self.db.write() as conn:
            deleted = conn.execute(
                delete(S).where(S.c.tenant == tenant, S.c.sub_id == sub_id)
            ).rowcount
            if not deleted:
                raise _not_found(sub_id, tenant)
            # Nothing is owed to a subscription that no longer exists.
            conn.execute(delete(O).where(O.c.tenant == tenant, O.c.sub_id == sub_id))
        self._changed(tenant, sub_id)

    # -- the cache -----------------------------------------------------------------------------
    def _changed(self, tenant: str, sub_id: str) -> None:
        self.invalidate(tenant)
        self.changed.notify(tenant, sub_id)

    def invalidate(self, tenant: str | None = None) -> None:
        with self._lock:
            if tenant is None:
                for key in list(self._generation):
                    self._generation[key] += 1
                self._cache.clear()
            else:
                self._generation[tenant] = self._generation.get(tenant, 0) + 1
                self._cache.pop(tenant, None)
            self._periodic = None

    def compiled(self, conn: Connection, tenant: str) -> list[Compiled]:
        """The tenant's subscriptions, compiled; read through ``conn`` (the caller's
        transaction) when the cache misses."""
        with self._lock:
            hit = self._cache.get(tenant)
            generation = self._generation.get(tenant, 0)
        if hit is not None and time.monotonic() - hit[0] < self.cache_ttl:
            return hit[1]
        loaded_at = time.monotonic()
        rows = conn.execute(
            select(S.c.tenant, S.c.sub_id, S.c.doc, S.c.last_notification).where(
                S.c.tenant == tenant
            )
        ).all()
        compiled = self._compile_rows(rows)
        with self._lock:
            if self._generation.get(tenant, 0) == generation:
                self._cache[tenant] = (loaded_at, compiled)
        return compiled

    def periodic(self) -> list[Compiled]:
        """Every tenant's periodic (timeInterval) subscriptions, for the notifier."""
        with self._lock:
            hit = self._periodic
        if hit is not None and time.monotonic() - hit[0] < self.cache_ttl:
            return hit[1]
        loaded_at = time.monotonic()
        with self.db.read() as conn:
            rows = conn.execute(
                select(S.c.tenant, S.c.sub_id, S.c.doc, S.c.last_notification)
            ).all()
        compiled = self._compile_rows([r for r in rows if "timeInterval" in r.doc])
        with self._lock:
            self._periodic = (loaded_at, compiled)
        return compiled

    def _compile_rows(self, rows: Any) -> list[Compiled]:
        out: list[Compiled] = []
        for row in rows:
            try:
                out.append(compile_subscription(row.tenant, row.doc, row.last_notification))
            except Exception:  # one broken subscription must not stop the others
                log.exception("cannot compile subscription %s; it is skipped", row.sub_id)
        return out
