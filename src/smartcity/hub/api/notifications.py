"""Failed notifications and delivery metrics: this hub's extension to NGSI-LD (docs/hub.md,
"Delivery guarantees").

A notification is kept as failed when its subscription expired or was paused while the
receiver kept refusing it (hub/subscriptions/outbox.py). Per subscription, entity
(``/subscriptions``) or registration (``/csourceSubscriptions``):

- ``GET .../{id}/failedNotifications``: list them (limit/offset/count like every list);
- ``POST .../{id}/failedNotifications/replay``: owe them again (all, or ``?id=`` a
  comma-separated list of notification ids); 202 with how many;
- ``DELETE .../{id}/failedNotifications``: discard them (all, or ``?id=``); 204.

Like every subscription endpoint they need a write key of the subscription's tenant: the
notifications carry the subscription's data. They are registered before the subscription
routes, whose ``{subscriptionId:path}`` would otherwise take ``.../failedNotifications`` as part
of an id.

``GET /api/v1/notifications/metrics``: this process's delivery counters and the outboxes'
contents (every tenant, so it needs a key valid for all tenants).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Table
from starlette.concurrency import run_in_threadpool

from smartcity.hub.api.deps import Hub, hub, require
from smartcity.hub.api.paging import add_page_links, count_header, page_of
from smartcity.hub.api.preamble import Call, Write
from smartcity.hub.entity import check_uri
from smartcity.hub.errors import BadRequestData
from smartcity.hub.subscriptions.failed import discard_failed, list_failed, replay_failed
from smartcity.hub.subscriptions.outbox import outbox_gauges
from smartcity.hub.timeutil import iso_from_us, now_us
from smartcity.storage import schema
from smartcity.storage.engine import Database

router = APIRouter(tags=["Failed notifications (extension)"])
metrics_router = APIRouter(prefix="/api/v1", tags=["Operations"])
JSON = "application/json"
# replay_failed or discard_failed: (db, outbox, tenant, subscription id, ids or None) -> count
Action = Callable[[Database, Table, str, str, list[str] | None], int]

# The two kinds of subscription: path segment -> the outbox of their notifications.
KINDS: dict[str, Table] = {
    "subscriptions": schema.outbox,
    "csourceSubscriptions": schema.csource_outbox,
}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type=JSON)


def _ids(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    ids = [i.strip() for i in raw.split(",") if i.strip()]
    if not ids:
        raise BadRequestData("id must name at least one notification id (comma-separated)")
    for notification_id in ids:
        check_uri(notification_id, "notification id")
    return ids


def _existing(h: Hub, kind: str, tenant: str, sub_id: str) -> Table:
    """The kind's outbox, after checking the subscription exists (404 otherwise)."""
    check_uri(sub_id, "subscription id")
    outbox = KINDS[kind]
    if kind == "subscriptions":
        h.subscriptions.get(tenant, sub_id)
    else:
        service = h.federation.subscriptions
        if service is None:
            raise BadRequestData("registration subscriptions are not enabled on this server")
        service.get(tenant, sub_id)
    return outbox


def _wake(h: Hub, kind: str) -> None:
    notifier = h.notifier if kind == "subscriptions" else h.federation.notifier
    if notifier is not None:
        notifier.wake()


def _install(kind: str) -> None:
    base = f"/{kind}/{{subscriptionId:path}}/failedNotifications"

    @router.get(base, summary=f"List the failed notifications of a {kind[:-1]} (extension)")
    async def list_(
        call: Write,
        subscriptionId: str,
        limit: str | None = None,
        offset: str | None = None,
        count: str | None = None,
    ) -> Response:
        request, h, tenant = call.request, call.hub, call.tenant
        page = page_of(h.settings.limits, limit, offset, count)

        def work() -> tuple[list[dict[str, Any]], int]:
            outbox = _existing(h, kind, tenant, subscriptionId)
            return list_failed(
                h.db, outbox, tenant, subscriptionId, limit=page.limit, offset=page.offset
            )

        found, total = await run_in_threadpool(work)
        response = _json(found, headers=count_header(page, total))
        return add_page_links(response, request, page, total, JSON)

    @router.post(base + "/replay", status_code=202, summary=f"Replay failed {kind} notifications")
    async def replay(call: Write, subscriptionId: str, id: str | None = None) -> Response:
        replayed = await _on_failed(call, kind, subscriptionId, id, replay_failed)
        if replayed:
            _wake(call.hub, kind)
        return _json({"replayed": replayed}, 202)

    @router.delete(base, status_code=204, summary=f"Discard failed {kind} notifications")
    async def discard(call: Write, subscriptionId: str, id: str | None = None) -> Response:
        await _on_failed(call, kind, subscriptionId, id, discard_failed)
        return Response(status_code=204)


async def _on_failed(
    call: Call, kind: str, sub_id: str, raw_ids: str | None, action: Action
) -> int:
    """Replay or discard failed notifications of a subscription of ``kind``; how many."""
    h, tenant = call.hub, call.tenant
    ids = _ids(raw_ids)

    def work() -> int:
        return action(h.db, _existing(h, kind, tenant, sub_id), tenant, sub_id, ids)

    return await run_in_threadpool(work)


for _kind in KINDS:
    _install(_kind)


@metrics_router.get("/notifications/metrics", summary="Notification delivery counters")
async def notification_metrics(request: Request) -> Response:
    require(request, "*", "write")  # every tenant's outbox: an operator's key
    h = hub(request)

    def work() -> dict[str, Any]:
        body: dict[str, Any] = {"at": iso_from_us(now_us())}
        workers = {"subscriptions": h.notifier, "csourceSubscriptions": h.federation.notifier}
        for kind, outbox in KINDS.items():
            worker = workers[kind]
            body[kind] = {
                "process": worker.metrics.snapshot() if worker is not None else None,
                "outbox": outbox_gauges(h.db, outbox),
            }
        return body

    return _json(await run_in_threadpool(work))
