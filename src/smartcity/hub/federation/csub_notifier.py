"""Delivers registration notifications (clause 5.3.2) from ``csource_outbox``.

A smaller sibling of ``hub.subscriptions.notifier``: registrations change rarely, so one
thread delivers, in outbox order, with the same senders (HTTP, MQTT) and retry policy. A claim
leases rows for ``LEASE_SECONDS`` in a short write transaction (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), so several server processes never deliver the same row at once, and a process
that dies mid-delivery leaves its rows to the others once the lease runs out.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import delete, select, update

from smartcity.hub.contexts import CORE_CONTEXT_URL, ContextStore
from smartcity.hub.federation.model import Doc, render_registration
from smartcity.hub.subscriptions.model import JSONLD, notification_context
from smartcity.hub.subscriptions.notifier import CONTEXT_REL, RetryPolicy, link_url
from smartcity.hub.subscriptions.senders import Message, Senders, timeout_of
from smartcity.hub.timeutil import now_us
from smartcity.storage import schema
from smartcity.storage.engine import Database

log = logging.getLogger(__name__)
O = schema.csource_outbox  # noqa: E741
S = schema.csource_subscriptions

LEASE_SECONDS = 120.0
BATCH = 20


def build_csource_message(tenant: str, sub: Doc, payload: Doc, contexts: ContextStore) -> Message:
    endpoint = sub["notification"]["endpoint"]
    accept = endpoint.get("accept", "application/json")
    context = notification_context(sub)
    headers = {"Content-Type": accept}
    if accept != JSONLD:
        context = link_url(context)
        headers["Link"] = f'<{context}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
    ctx = contexts.active(context)
    notification: Doc = {
        "id": payload["id"],
        "type": "CsourceNotification",
        "subscriptionId": sub["id"],
        "notifiedAt": payload["notifiedAt"],
        "triggerReason": payload["triggerReason"],
        "data": [render_registration(r, ctx) for r in payload["registrations"]],
    }
    if accept == JSONLD:
        notification["@context"] = context if context is not None else CORE_CONTEXT_URL
    if tenant:
        headers["NGSILD-Tenant"] = tenant
    for pair in endpoint.get("receiverInfo", []):
        headers[pair["key"]] = pair["value"]
    return Message(
        uri=endpoint["uri"],
        notification=notification,
        headers=headers,
        timeout=timeout_of(endpoint),
        notifier_info={p["key"]: p["value"] for p in endpoint.get("notifierInfo", [])},
    )


class CsubNotifier:
    def __init__(
        self,
        db: Database,
        contexts: ContextStore,
        senders: Senders,
        *,
        retry: RetryPolicy | None = None,
        idle: float = 5.0,
    ) -> None:
        self.db = db
        self.contexts = contexts
        self.senders = senders
        self.retry = retry or RetryPolicy()
        self.idle = idle  # seconds between looks at the outbox when nobody wakes us
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="csub-notifier", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.senders.close()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delivered = self.deliver_due()
            except Exception:
                log.exception("registration notifier failed; retrying")
                delivered = 0
            if not delivered:
                self._wake.wait(self.idle)
                self._wake.clear()

    def deliver_due(self) -> int:
        """Claim and deliver the due rows (one batch); how many were attempted."""
        rows = self._claim()
        for row in rows:
            if self._stop.is_set():
                break
            self._deliver(row)
        return len(rows)

    def _claim(self) -> list[Any]:
        now = now_us()
        with self.db.write() as conn:
            query = select(O).where(O.c.next_attempt_at <= now).order_by(O.c.oid).limit(BATCH)
            if self.db.is_postgres:
                query = query.with_for_update(skip_locked=True)
            rows = conn.execute(query).all()
            if rows:
                conn.execute(
                    update(O)
                    .where(O.c.oid.in_([r.oid for r in rows]))
                    .values(next_attempt_at=now + int(LEASE_SECONDS * 1_000_000))
                )
        return list(rows)

    def _deliver(self, row: Any) -> None:
        with self.db.read() as conn:
            sub = conn.execute(
                select(S.c.doc).where(S.c.tenant == row.tenant, S.c.sub_id == row.sub_id)
            ).first()
        if sub is None:  # deleted meanwhile: nothing is owed
            self._finish(row, ok=True, forget=True)
            return
        try:
            message = build_csource_message(row.tenant, sub.doc, row.payload, self.contexts)
            self.senders.send(message)
        except Exception as exc:  # a refused receiver (DeliveryError), a bad @context...
            self._finish(row, ok=False, error=str(exc) or type(exc).__name__)
            return
        self._finish(row, ok=True)

    def _finish(self, row: Any, *, ok: bool, error: str = "", forget: bool = False) -> None:
        now = now_us()
        attempts = row.attempts + 1
        with self.db.write() as conn:
            if ok or attempts >= self.retry.max_attempts:
                conn.execute(delete(O).where(O.c.oid == row.oid))
            else:
                delay = int(self.retry.delay(attempts) * 1_000_000)
                conn.execute(
                    update(O)
                    .where(O.c.oid == row.oid)
                    .values(attempts=attempts, next_attempt_at=now + delay, last_error=error)
                )
            if forget:
                return
            where = (S.c.tenant == row.tenant) & (S.c.sub_id == row.sub_id)
            if ok:
                values: dict[str, Any] = {"times_sent": S.c.times_sent + 1, "last_success": now}
            else:
                values = {
                    "times_sent": S.c.times_sent + 1,
                    "times_failed": S.c.times_failed + 1,
                    "last_failure": now,
                }
            conn.execute(update(S).where(where).values(**values))
        if not ok:
            log.info("registration notification to %s failed: %s", row.sub_id, error)
