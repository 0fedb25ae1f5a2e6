"""Entity notifications: rendering (clause 5.3.1) and the delivery worker.

``Notifier`` is the shared outbox delivery loop (``outbox.OutboxWorker``: claims, leases,
retries, failed notifications kept) applied to the ``outbox`` table. What it adds: building the
message, and periodic (``timeInterval``) subscriptions, which it turns into outbox rows before
each claim so they get the same delivery guarantees.

Rendering happens here, not in the write transaction: the entities stored in the row are
compacted with the subscription's @context (which may need fetching) just before sending.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert, select

from smartcity.hub import linking
from smartcity.hub.contexts import CORE_ALIASES, CORE_CONTEXT_URL, ContextStore
from smartcity.hub.entity import render_entity
from smartcity.hub.jsonld import ActiveContext
from smartcity.hub.querying import EntityQuery
from smartcity.hub.service import EntityService
from smartcity.hub.subscriptions.matcher import Compiled, new_payload, outbox_row
from smartcity.hub.subscriptions.model import (
    JSONLD,
    Doc,
    linked_projection,
    notification_context,
)
from smartcity.hub.subscriptions.outbox import OutboxWorker, claim_period, pending
from smartcity.hub.subscriptions.senders import Message, Senders, timeout_of
from smartcity.hub.subscriptions.service import SubscriptionService
from smartcity.hub.timeutil import now_us
from smartcity.storage import schema
from smartcity.storage.engine import Database

log = logging.getLogger(__name__)
O = schema.outbox  # noqa: E741
S = schema.subscriptions

CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
# A periodic notification carries at most this many entities (the first ones, in insertion
# order): a notification is one HTTP request or MQTT message, not a bulk export.
MAX_PERIODIC_ENTITIES = 1000


# -- rendering -------------------------------------------------------------------------------


def _add_previous(rendered: Any, previous: dict[str, list[Any]], inst_type: str, fmt: str) -> Any:
    """Add previousValue (etc.) to a rendered attribute instance (showChanges)."""
    dataset = rendered.get("datasetId", "@none") if isinstance(rendered, dict) else "@none"
    found = previous.get(dataset)
    if found is None:
        return rendered
    key, value = found
    if fmt == "concise" and (
        not isinstance(rendered, dict) or (inst_type == "GeoProperty" and "value" not in rendered)
    ):
        rendered = {"value": rendered}  # a simplified concise value needs its object form back
    return {**rendered, key: value}


def select_datasets(doc: Doc, wanted: list[str]) -> Doc:
    """The entity with only the attribute instances whose datasetId is ``wanted`` ("@none":
    the default instance); attributes left without instances are dropped (clause 4.5.5)."""
    attrs = {}
    for iri, instances in doc["attrs"].items():
        kept = [i for i in instances if i.get("datasetId", "@none") in wanted]
        if kept:
            attrs[iri] = kept
    return {**doc, "attrs": attrs}


def _top_omit(params: Doc) -> set[str] | None:
    """The members notification.omit removes from the notified entity itself: ``omit``
    without its braced entries (``locatedAt{name}`` omits name from the linked entity and
    keeps locatedAt, as the query parameter does)."""
    if "omit" not in params:
        return None
    nested, picking = linked_projection(params)
    return {m for m in params["omit"] if picking or m not in nested}


def render_item(item: Doc, ctx: ActiveContext, sub: Doc) -> Doc:
    params = sub["notification"]
    fmt = params.get("format", "normalized")
    doc = item["doc"]
    if "datasetId" in sub:
        doc = select_datasets(doc, sub["datasetId"])
    rendered = render_entity(
        doc,
        ctx,
        fmt=fmt,
        sys_attrs=bool(params.get("sysAttrs")),
        attrs=params.get("attributes"),
        lang=sub.get("lang"),
        pick=set(params["pick"]) if "pick" in params else None,
        omit=_top_omit(params),
    )
    if fmt == "keyValues" and params.get("sysAttrs"):
        # NotificationParams.sysAttrs has no exception for keyValues: the entity's own
        # timestamps are shown (attribute values are bare there, so theirs cannot be).
        rendered.update({k: doc[k] for k in ("createdAt", "modifiedAt") if k in doc})
    if "deletedAt" in doc:
        rendered["deletedAt"] = doc["deletedAt"]
    previous: dict[str, dict[str, list[Any]]] = item.get("previous", {})
    if fmt != "keyValues":
        for iri, by_dataset in previous.items():
            name = ctx.compact(iri)
            if name not in rendered or iri not in doc["attrs"]:
                continue
            instances = doc["attrs"][iri]
            by_dataset = {
                ds: [k, [ctx.compact(x) for x in v] if isinstance(v, list) else ctx.compact(v)]
                if k == "previousVocab"
                else [k, v]
                for ds, (k, v) in by_dataset.items()
            }
            value = rendered[name]
            if isinstance(value, list):
                rendered[name] = [
                    _add_previous(v, by_dataset, inst["type"], fmt)
                    for v, inst in zip(value, instances, strict=False)
                ]
            else:
                rendered[name] = _add_previous(value, by_dataset, instances[0]["type"], fmt)
    return rendered


def linked_entities(
    entities: EntityService,
    tenant: str,
    sub: Doc,
    payload: Doc,
    ctx: ActiveContext,
    notification: Doc,
) -> list[Doc]:
    """Follow notification.join from the notified entities (rendered in notification["data"]):
    inline targets go into them, the flat ones are returned."""
    params = sub["notification"]
    join = linking.parse_join(params.get("join"), str(params.get("joinLevel", 1)))
    if join is None:
        return []
    docs = [item["doc"] for item in payload["entities"]]
    if "datasetId" in sub:
        docs = [select_datasets(d, sub["datasetId"]) for d in docs]
    fmt = params.get("format", "normalized")
    nested, picking = linked_projection(params)
    view = linking.View(ctx, fmt, bool(params.get("sysAttrs")), sub.get("lang"))
    flat = linking.resolve(
        entities,
        tenant,
        docs,
        notification["data"],
        view,
        linking.LinkRequest(join, None, None, nested, picking),
        attrs=params.get("attributes"),
        pick=set(params["pick"]) if "pick" in params else None,
        omit=_top_omit(params),
    )
    return [rendered for _, rendered in flat]


def link_url(context: Any) -> str:
    """The one URL a Link header can carry for ``context``: the user's context URL (the core
    context is implied), or the core context if the user's cannot be conveyed by one URL."""
    items = context if isinstance(context, list) else [context]
    core = {CORE_CONTEXT_URL, *CORE_ALIASES}
    user = [c for c in items if c is not None and not (isinstance(c, str) and c in core)]
    if len(user) == 1 and isinstance(user[0], str):
        return user[0]
    return CORE_CONTEXT_URL


def context_and_headers(sub: Doc) -> tuple[Any, dict[str, str]]:
    """The @context a subscription's notifications are compacted with, and the headers that
    carry it (entity and registration notifications alike)."""
    accept = sub["notification"]["endpoint"].get("accept", "application/json")
    context = notification_context(sub)
    headers = {"Content-Type": accept}
    if accept != JSONLD:
        # application/json conveys the @context as one URL in a Link header; names compacted
        # with anything that URL cannot convey would be misread, so use the core context then.
        context = link_url(context)
        headers["Link"] = f'<{context}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
    return context, headers


def to_message(tenant: str, sub: Doc, notification: Doc, headers: dict[str, str]) -> Message:
    """``notification`` addressed to the subscription's endpoint, with the tenant and the
    receiverInfo headers."""
    endpoint = sub["notification"]["endpoint"]
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


def build_message(
    tenant: str,
    sub: Doc,
    payload: Doc,
    contexts: ContextStore,
    entities: EntityService | None = None,
) -> Message:
    """The notification (clause 5.3.1) as the receiver will get it; with ``entities``, the
    linked entities notification.join asks for (loaded now, at delivery)."""
    context, headers = context_and_headers(sub)
    ctx = contexts.active(context)
    notification: Doc = {
        "id": payload["id"],
        "type": "Notification",
        "subscriptionId": sub["id"],
        "notifiedAt": payload["notifiedAt"],
        "data": [render_item(item, ctx, sub) for item in payload["entities"]],
    }
    if entities is not None:
        notification["data"] += linked_entities(entities, tenant, sub, payload, ctx, notification)
    if headers["Content-Type"] == JSONLD:
        # Each entity of data is a JSON-LD document of its own (as in an application/ld+json
        # query result, clause 6.3.6), and so is the notification.
        ld_context = context if context is not None else CORE_CONTEXT_URL
        notification["data"] = [{**e, "@context": ld_context} for e in notification["data"]]
        notification["@context"] = ld_context
    return to_message(tenant, sub, notification, headers)


# -- the worker ------------------------------------------------------------------------------


class Notifier(OutboxWorker):
    name = "notifier"

    def __init__(
        self,
        db: Database,
        subscriptions: SubscriptionService,
        entities: EntityService,
        contexts: ContextStore,
        *,
        senders: Senders,
        **delivery: Any,  # OutboxWorker's: retry, lease, workers, batch, group_size, idle_poll
    ) -> None:
        super().__init__(db, O, S, senders, **delivery)
        self.subscriptions = subscriptions
        self.entities = entities
        self.contexts = contexts
        # (tenant, id) -> when this process will next look at a periodic subscription
        self._next_periodic: dict[tuple[str, str], int] = {}
        # Whether this node queues periodic notifications: on several nodes, only the one
        # holding the job's lease (hub/runtime.py) scans them; the compare-and-set below
        # would keep the others from queueing twice anyway, but not from the scanning.
        self.periodic_here: Callable[[], bool] = lambda: True

    def load(self, tenant: str, sub_id: str) -> Doc | None:
        stored = self.subscriptions.find(tenant, sub_id)
        return stored.doc if stored is not None else None

    def message(self, tenant: str, sub: Doc, payload: Doc) -> Message:
        return build_message(tenant, sub, payload, self.contexts, self.entities)

    def before_claim(self) -> None:
        if self.periodic_here():
            self._enqueue_periodic()

    # -- periodic subscriptions ----------------------------------------------------------------
    def _enqueue_periodic(self) -> None:
        now = now_us()
        for sub in self.subscriptions.periodic():
            if self._stopping.is_set():
                return
            assert sub.interval_us is not None
            if not sub.live(now) or self._next_periodic.get(sub.key, 0) > now:
                continue
            try:
                self._periodic_once(sub, now)
            except Exception:
                log.exception("periodic notification for %s failed", sub.sub_id)
                self._next_periodic[sub.key] = now + sub.interval_us

    def _periodic_once(self, sub: Compiled, now: int) -> None:
        assert sub.interval_us is not None
        with self.db.read() as conn:
            row = conn.execute(
                select(S.c.created_at, S.c.last_notification).where(
                    S.c.tenant == sub.tenant, S.c.sub_id == sub.sub_id
                )
            ).first()
        if row is None:
            return
        # The first notification goes out at once; then one per interval.
        due = row.last_notification + sub.interval_us if row.last_notification else 0
        if due > now:
            self._next_periodic[sub.key] = due
            return
        docs = self._periodic_entities(sub)
        with self.db.write() as conn:
            # Nothing matches, or the previous one is still being delivered (or retried):
            # send nothing rather than pile notifications up (one kept as failed is set aside).
            if (
                docs
                and not pending(conn, O, sub.tenant, sub.sub_id)
                and claim_period(conn, S, sub.tenant, sub.sub_id, row.last_notification, now)
            ):
                payload = new_payload([{"doc": d} for d in docs], now)
                conn.execute(insert(O).values(**outbox_row(sub, payload, now)))
        self._next_periodic[sub.key] = now + sub.interval_us

    def _periodic_entities(self, sub: Compiled) -> list[Doc]:
        found: dict[str, Doc] = {}
        for selector in sub.selectors:
            pattern = selector.pattern.source if selector.pattern else None
            query = EntityQuery(
                types=selector.types,
                ids=[selector.entity_id] if selector.entity_id else None,
                id_pattern=None if selector.entity_id else pattern,
                expand=sub.expand,
            )
            offset = 0
            while len(found) < MAX_PERIODIC_ENTITIES:
                docs, _ = self.entities.find(sub.tenant, query, limit=500, offset=offset)
                for doc in docs:
                    if doc["id"] not in found and sub.selects(doc):
                        found[doc["id"]] = doc
                if len(docs) < 500:
                    break
                offset += 500
        return list(found.values())[:MAX_PERIODIC_ENTITIES]
