"""Delivers registration notifications (clause 5.3.2) from ``csource_outbox``.

The shared outbox delivery loop (``hub.subscriptions.outbox.OutboxWorker``) applied to
registration subscriptions: the same claims and renewed leases, capped retries while the
subscription is active, failed notifications kept and replayable, per-subscription order. Only
loading the subscription and building the ``CsourceNotification`` are its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from smartcity.hub.contexts import CORE_CONTEXT_URL, ContextStore
from smartcity.hub.federation.model import Doc, render_registration
from smartcity.hub.subscriptions.model import JSONLD
from smartcity.hub.subscriptions.notifier import context_and_headers, to_message
from smartcity.hub.subscriptions.outbox import OutboxWorker
from smartcity.hub.subscriptions.senders import Message, Senders
from smartcity.storage import schema
from smartcity.storage.engine import Database

O = schema.csource_outbox  # noqa: E741
S = schema.csource_subscriptions


def build_csource_message(tenant: str, sub: Doc, payload: Doc, contexts: ContextStore) -> Message:
    context, headers = context_and_headers(sub)
    ctx = contexts.active(context)
    notification: Doc = {
        "id": payload["id"],
        "type": "CsourceNotification",
        "subscriptionId": sub["id"],
        "notifiedAt": payload["notifiedAt"],
        "triggerReason": payload["triggerReason"],
        "data": [render_registration(r, ctx) for r in payload["registrations"]],
    }
    if headers["Content-Type"] == JSONLD:
        notification["@context"] = context if context is not None else CORE_CONTEXT_URL
    return to_message(tenant, sub, notification, headers)


class CsubNotifier(OutboxWorker):
    name = "csub-notifier"

    def __init__(
        self,
        db: Database,
        contexts: ContextStore,
        senders: Senders,
        periodic: Callable[[], int] | None = None,
        **delivery: Any,
    ) -> None:
        # Registrations change rarely: two delivery threads are plenty.
        super().__init__(db, O, S, senders, **{"workers": 2, **delivery})
        self.contexts = contexts
        # Queues the periodic (timeInterval) subscriptions' notifications that are due.
        self.periodic = periodic
        # Whether this node queues them: on several nodes, the one holding the periodic job's
        # lease (hub/runtime.py); the compare-and-set in ``periodic`` keeps the others from
        # queueing twice anyway, but not from scanning.
        self.periodic_here: Callable[[], bool] = lambda: True

    def before_claim(self) -> None:
        if self.periodic is not None and self.periodic_here():
            self.periodic()

    def load(self, tenant: str, sub_id: str) -> Doc | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(S.c.doc).where(S.c.tenant == tenant, S.c.sub_id == sub_id)
            ).first()
        return row.doc if row is not None else None

    def message(self, tenant: str, sub: Doc, payload: Doc) -> Message:
        return build_csource_message(tenant, sub, payload, self.contexts)
