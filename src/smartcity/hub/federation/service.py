"""Stored context source registrations: CRUD, and a per-tenant cache of the active ones for
the forwarding path.

The cache is what keeps every GET /entities cheap when a tenant has no registration at all
(the common case): one dict lookup. It is invalidated at once by a change in this process and
reloaded after ``cache_ttl`` seconds, so a registration made through another server process
(several workers on PostgreSQL) is used within that delay.

Registrations are few (one or a handful per department), so queries over them filter in Python.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from smartcity.hub.errors import AlreadyExists, Conflict, ResourceNotFound
from smartcity.hub.federation.matching import (
    Wanted,
    claims_overlap,
    exclusive_claims,
    registration_matches,
)
from smartcity.hub.federation.model import Doc, expires_us
from smartcity.hub.timeutil import now_us
from smartcity.storage import schema
from smartcity.storage.engine import Database

log = logging.getLogger(__name__)
R = schema.csource_registrations

# Called inside the write transaction with (conn, tenant, change, old doc, new doc), change
# being "created", "updated" or "deleted": registration subscriptions queue their
# notifications there, so that a committed change is never left un-notified.
ChangeHook = Callable[[Connection, str, str, Doc | None, Doc | None], None]


@dataclass
class StoredRegistration:
    tenant: str
    doc: Doc
    modified_at: int


def _not_found(reg_id: str, tenant: str) -> ResourceNotFound:
    where = f" in tenant {tenant!r}" if tenant else ""
    return ResourceNotFound(f"context source registration {reg_id} does not exist{where}")


class RegistrationService:
    def __init__(self, db: Database, *, cache_ttl: float = 2.0) -> None:
        self.db = db
        self.cache_ttl = cache_ttl
        self._lock = threading.Lock()
        # Held while the cache is reloaded: requests that find it stale together wait for one
        # read instead of each making its own (32 concurrent writers did, every ``cache_ttl``,
        # each checking a connection out of the pool or opening one past its size).
        self._loading = threading.Lock()
        self._cache: dict[str, tuple[float, list[Doc]]] = {}
        self._generation: dict[str, int] = {}
        self.change_hooks: list[ChangeHook] = []
        self.commit_listeners: list[Callable[[], None]] = []

    # -- CRUD ----------------------------------------------------------------------------------
    def create(self, tenant: str, doc: Doc) -> None:
        now = now_us()
        try:
            with self.db.write() as conn:
                exists = conn.execute(
                    select(R.c.reg_id).where(R.c.tenant == tenant, R.c.reg_id == doc["id"])
                ).first()
                if exists is not None:
                    raise AlreadyExists(f"context source registration {doc['id']} already exists")
                self._check_claims(conn, tenant, doc)
                conn.execute(
                    insert(R).values(
                        tenant=tenant,
                        reg_id=doc["id"],
                        doc=doc,
                        created_at=now,
                        modified_at=now,
                        expires_at=expires_us(doc),
                    )
                )
                self._hooks(conn, tenant, "created", None, doc)
        except IntegrityError:  # a concurrent create with the same id won
            raise AlreadyExists(f"context source registration {doc['id']} already exists") from None
        self._changed(tenant)

    def get(self, tenant: str, reg_id: str) -> StoredRegistration:
        with self.db.read() as conn:
            row = conn.execute(select(R).where(R.c.tenant == tenant, R.c.reg_id == reg_id)).first()
        if row is None:
            raise _not_found(reg_id, tenant)
        return StoredRegistration(tenant=row.tenant, doc=row.doc, modified_at=row.modified_at)

    def query(
        self,
        tenant: str,
        wanted: Wanted,
        *,
        limit: int,
        offset: int = 0,
        keep: Callable[[Doc], bool] | None = None,
    ) -> tuple[list[Doc], int]:
        """The tenant's registrations matching ``wanted`` (unexpired) and ``keep`` (the
        other filters of a registration query), one page, and how many match in all."""
        now = now_us()
        rows = self._stored(tenant)
        found = [
            r.doc
            for r in rows
            if (r.expires_at is None or r.expires_at > now)
            and registration_matches(r.doc, wanted)
            and (keep is None or keep(r.doc))
        ]
        return found[offset : offset + limit], len(found)

    def update(self, tenant: str, doc: Doc, *, expected_modified: int) -> None:
        """Store a changed document; ``expected_modified`` turns a concurrent PATCH into a 409
        rather than a lost update."""
        with self.db.write() as conn:
            row = conn.execute(
                select(R.c.modified_at, R.c.doc).where(
                    R.c.tenant == tenant, R.c.reg_id == doc["id"]
                )
            ).first()
            if row is None:
                raise _not_found(doc["id"], tenant)
            if row.modified_at != expected_modified:
                raise Conflict(f"registration {doc['id']} was changed concurrently; retry")
            self._check_claims(conn, tenant, doc)
            conn.execute(
                update(R)
                .where(R.c.tenant == tenant, R.c.reg_id == doc["id"])
                .values(doc=doc, modified_at=max(now_us(), row.modified_at + 1),
                        expires_at=expires_us(doc))
            )  # fmt: skip
            self._hooks(conn, tenant, "updated", row.doc, doc)
        self._changed(tenant)

    def delete(self, tenant: str, reg_id: str) -> None:
        with self.db.write() as conn:
            row = conn.execute(
                select(R.c.doc).where(R.c.tenant == tenant, R.c.reg_id == reg_id)
            ).first()
            if row is None:
                raise _not_found(reg_id, tenant)
            conn.execute(delete(R).where(R.c.tenant == tenant, R.c.reg_id == reg_id))
            self._hooks(conn, tenant, "deleted", row.doc, None)
        self._changed(tenant)

    def _check_claims(self, conn: Connection, tenant: str, doc: Doc) -> None:
        """Clause 5.9.2.4: an exclusive or redirect registration may not claim attributes of
        an entity that another exclusive or redirect registration already claims (409)."""
        claims = exclusive_claims(doc)
        if not claims:
            return
        rows = conn.execute(select(R.c.reg_id, R.c.doc).where(R.c.tenant == tenant)).all()
        for row in rows:
            if row.reg_id != doc["id"] and claims_overlap(claims, exclusive_claims(row.doc)):
                raise Conflict(
                    f"registration {row.reg_id} ({row.doc.get('mode')}) already claims "
                    "attributes of the same entity exclusively"
                )

    def _hooks(self, conn: Connection, tenant: str, change: str, old: Doc | None,
               new: Doc | None) -> None:  # fmt: skip
        for hook in self.change_hooks:
            hook(conn, tenant, change, old, new)

    # -- the cache of active registrations -----------------------------------------------------
    def _fresh(self, tenant: str) -> list[Doc] | None:
        with self._lock:
            hit = self._cache.get(tenant)
        if hit is not None and time.monotonic() - hit[0] < self.cache_ttl:
            return hit[1]
        return None

    def _stored(self, tenant: str) -> Sequence[Row[Any, Any]]:
        """The tenant's registrations as stored (doc, expires_at), oldest first."""
        with self.db.read() as conn:
            return conn.execute(
                select(R.c.doc, R.c.expires_at)
                .where(R.c.tenant == tenant)
                .order_by(R.c.created_at, R.c.reg_id)
            ).all()

    def _load(self, tenant: str) -> list[Doc]:
        now = time.monotonic()
        with self._lock:
            generation = self._generation.get(tenant, 0)
        rows = self._stored(tenant)
        docs = [r.doc | {"_expires": r.expires_at} for r in rows]
        with self._lock:
            if self._generation.get(tenant, 0) == generation:
                self._cache[tenant] = (now, docs)
        return docs

    def _changed(self, tenant: str) -> None:
        with self._lock:
            self._generation[tenant] = self._generation.get(tenant, 0) + 1
            self._cache.pop(tenant, None)
        for listener in self.commit_listeners:
            try:
                listener()
            except Exception:
                log.exception("registration commit listener failed")

    def surely_none(self, tenant: str) -> bool:
        """True when the cache says the tenant has no registration at all: the one check a
        read of a tenant without federation pays (no lock: a dict read is atomic)."""
        hit = self._cache.get(tenant)
        return hit is not None and not hit[1] and time.monotonic() - hit[0] < self.cache_ttl

    def cached(self, tenant: str) -> list[Doc] | None:
        """The tenant's unexpired registrations if the cache holds them (no database read:
        safe on the event loop), else None."""
        docs = self._fresh(tenant)
        if docs is None:
            return None
        clock = now_us()
        return [d for d in docs if d["_expires"] is None or d["_expires"] > clock]

    def active(self, tenant: str) -> list[Doc]:
        """The tenant's unexpired registrations (cached; see the module docstring)."""
        docs = self._fresh(tenant)
        if docs is None:
            with self._loading:
                docs = self._fresh(tenant)  # another thread may have just read them
                if docs is None:
                    docs = self._load(tenant)
        clock = now_us()
        return [d for d in docs if d["_expires"] is None or d["_expires"] > clock]
