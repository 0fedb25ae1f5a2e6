"""The delivery worker: takes owed notifications from the ``outbox`` and delivers them.

One background thread claims due outbox rows and hands them, grouped by subscription, to a
small pool of delivery threads. A delivered row is deleted; a failed one is retried with
exponential backoff and jitter, and dropped after ``RetryPolicy.max_attempts``. Every attempt
updates the subscription's timesSent / timesFailed / lastNotification / lastSuccess /
lastFailure. The thread sleeps until the next row is due, and is woken at once when a write
commits a notification (``Matcher.on_queued``). Periodic (``timeInterval``) subscriptions are
turned into outbox rows by the same thread, so they get the same retries.

Rendering happens here, not in the write transaction: the entities stored in the row are
compacted with the subscription's @context (which may need fetching) just before sending.

Claiming, and why it is safe with several processes:

* A claim is one short write transaction that pushes the rows' ``next_attempt_at`` a lease
  (``LEASE_SECONDS``) into the future, so no other worker takes them while they are being
  delivered; if this process dies, the lease runs out and another process delivers them.
  On PostgreSQL the claim reads with ``SELECT ... FOR UPDATE SKIP LOCKED``, so concurrent
  workers in several processes never wait for or double-claim each other's rows.
* On SQLite the claim transaction is serialised (BEGIN IMMEDIATE), which gives the same
  guarantee, but SQLite is meant for one server process: run one process (which delivers
  everything) or move to PostgreSQL for several.
* Order: a subscription whose oldest row is leased or backing off is skipped entirely, and
  one subscription's rows are delivered in order by one thread; a failure stops the group, so
  later notifications never overtake an earlier one that is being retried. Delivery is
  at-least-once: a crash between sending and deleting the row sends it again, with the same
  notification id, which receivers can use to de-duplicate.

On startup, rows that were waiting out a retry delay are made due at once: whatever the outbox
holds when the server starts is delivered straight away.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from smartcity.hub import linking
from smartcity.hub.contexts import CORE_ALIASES, CORE_CONTEXT_URL, ContextStore
from smartcity.hub.entity import render_entity
from smartcity.hub.jsonld import ActiveContext
from smartcity.hub.querying import EntityQuery
from smartcity.hub.service import EntityService
from smartcity.hub.subscriptions.matcher import Compiled, new_payload, outbox_row
from smartcity.hub.subscriptions.model import JSONLD, Doc, notification_context
from smartcity.hub.subscriptions.senders import Message, Senders, timeout_of
from smartcity.hub.subscriptions.service import StoredSubscription, SubscriptionService
from smartcity.hub.timeutil import now_us
from smartcity.storage import schema
from smartcity.storage.engine import Database

log = logging.getLogger(__name__)
O = schema.outbox  # noqa: E741
S = schema.subscriptions

CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
LEASE_SECONDS = 120.0
# A periodic notification carries at most this many entities (the first ones, in insertion
# order): a notification is one HTTP request or MQTT message, not a bulk export.
MAX_PERIODIC_ENTITIES = 1000


@dataclass
class RetryPolicy:
    max_attempts: int = 10
    base_delay: float = 1.0  # seconds before the first retry
    max_delay: float = 600.0
    jitter: float = 0.5  # each delay is shortened by up to this fraction, at random

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        raw = min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1))
        # Jitter spreads retries of many notifications to one receiver that came back up.
        return raw * (1 - self.jitter * random.random())


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
        omit=set(params["omit"]) if "omit" in params else None,
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
    view = linking.View(ctx, fmt, bool(params.get("sysAttrs")), sub.get("lang"))
    flat = linking.resolve(
        entities,
        tenant,
        docs,
        notification["data"],
        view,
        linking.LinkRequest(join, None, None, {}, False),
        attrs=params.get("attributes"),
        pick=set(params["pick"]) if "pick" in params else None,
        omit=set(params["omit"]) if "omit" in params else None,
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


def build_message(
    tenant: str,
    sub: Doc,
    payload: Doc,
    contexts: ContextStore,
    entities: EntityService | None = None,
) -> Message:
    """The notification (clause 5.3.1) as the receiver will get it; with ``entities``, the
    linked entities notification.join asks for (loaded now, at delivery)."""
    endpoint = sub["notification"]["endpoint"]
    accept = endpoint.get("accept", "application/json")
    context = notification_context(sub)
    headers = {"Content-Type": accept}
    if accept != JSONLD:
        # application/json conveys the @context as one URL in a Link header; names compacted
        # with anything that URL cannot convey would be misread, so use the core context then.
        context = link_url(context)
        headers["Link"] = f'<{context}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
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
    if accept == JSONLD:
        # Each entity of data is a JSON-LD document of its own (as in an application/ld+json
        # query result, clause 6.3.6), and so is the notification.
        ld_context = context if context is not None else CORE_CONTEXT_URL
        notification["data"] = [{**e, "@context": ld_context} for e in notification["data"]]
        notification["@context"] = ld_context
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


# -- the worker ------------------------------------------------------------------------------


class Notifier:
    def __init__(
        self,
        db: Database,
        subscriptions: SubscriptionService,
        entities: EntityService,
        contexts: ContextStore,
        *,
        senders: Senders,
        retry: RetryPolicy | None = None,
        workers: int = 8,
        batch: int = 200,
        group_size: int = 20,
        idle_poll: float = 2.0,
    ) -> None:
        self.db = db
        self.subscriptions = subscriptions
        self.entities = entities
        self.contexts = contexts
        self.senders = senders
        self.retry = retry or RetryPolicy()
        self.workers = workers
        self.batch = batch
        self.group_size = group_size
        self.idle_poll = idle_poll
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: set[tuple[str, str]] = set()
        self._inflight_lock = threading.Lock()
        # (tenant, id) -> when this process will next look at a periodic subscription
        self._next_periodic: dict[tuple[str, str], int] = {}

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._release_backoff()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="smartcity-notify")
        self._thread = threading.Thread(target=self._run, name="smartcity-notifier", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming; let deliveries in progress finish (each is bounded by its timeout);
        anything not delivered stays in the outbox for the next start."""
        if self._thread is None:
            return
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)
        self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.senders.close()

    def wake(self) -> None:
        self._wake.set()

    def _release_backoff(self) -> None:
        now = now_us()
        with self.db.write() as conn:
            conn.execute(
                update(O)
                .where(O.c.next_attempt_at > now, O.c.attempts > 0)
                .values(next_attempt_at=now)
            )

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            claimed = 0
            try:
                self._enqueue_periodic()
                claimed = self._dispatch()
            except Exception:  # the database may be briefly unavailable: keep going
                log.exception("notifier cycle failed")
            if claimed:
                continue  # there may be more due rows
            self._wake.wait(self._idle_time())

    def _idle_time(self) -> float:
        try:
            with self.db.read() as conn:
                due = conn.execute(select(func.min(O.c.next_attempt_at))).scalar()
        except Exception:
            return self.idle_poll
        if due is None:
            return self.idle_poll
        return min(self.idle_poll, max(0.01, (due - now_us()) / 1e6))

    # -- claiming ------------------------------------------------------------------------------
    def _dispatch(self) -> int:
        with self._inflight_lock:
            free = self.workers - len(self._inflight)
            busy = set(self._inflight)
        if free <= 0 or self._pool is None:
            return 0
        groups = self._claim(free, busy)
        for group in groups:
            key = (group[0].tenant, group[0].sub_id)
            with self._inflight_lock:
                self._inflight.add(key)
            future = self._pool.submit(self._deliver_group, group)
            future.add_done_callback(self._done(key, group))
        return sum(len(g) for g in groups)

    def _done(self, key: tuple[str, str], group: list[Any]) -> Any:
        def callback(future: Future[None]) -> None:
            with self._inflight_lock:
                self._inflight.discard(key)
            if future.cancelled():  # shut down before it started: hand the rows back now
                try:
                    self._release(group)
                except Exception:
                    log.exception("could not release notifications at shutdown")
            elif future.exception() is not None:
                log.error("notification delivery crashed", exc_info=future.exception())
            self._wake.set()

        return callback

    def _claim(self, free: int, busy: set[tuple[str, str]]) -> list[list[Any]]:
        now = now_us()
        with self.db.write() as conn:
            # A subscription with a row leased or backing off is blocked: its later rows wait.
            blocked = {
                (r.tenant, r.sub_id)
                for r in conn.execute(
                    select(O.c.tenant, O.c.sub_id).where(O.c.next_attempt_at > now).distinct()
                )
            } | busy
            stmt = select(O.c.oid, O.c.tenant, O.c.sub_id, O.c.payload, O.c.attempts).where(
                O.c.next_attempt_at <= now
            )
            blocked_ids = sorted({sub_id for _, sub_id in blocked})
            if blocked_ids and len(blocked_ids) <= 1000:
                # By id only (not tenant): may hold back a namesake briefly, never wrongly send.
                stmt = stmt.where(O.c.sub_id.not_in(blocked_ids))
            stmt = stmt.order_by(O.c.oid).limit(self.batch)
            if self.db.is_postgres:
                stmt = stmt.with_for_update(skip_locked=True)
            groups: dict[tuple[str, str], list[Any]] = {}
            for row in conn.execute(stmt):
                key = (row.tenant, row.sub_id)
                if key in blocked or (key not in groups and len(groups) >= free):
                    continue
                group = groups.setdefault(key, [])
                if len(group) < self.group_size:
                    group.append(row)
            oids = [row.oid for group in groups.values() for row in group]
            if oids:
                conn.execute(
                    update(O)
                    .where(O.c.oid.in_(oids))
                    .values(next_attempt_at=now + int(LEASE_SECONDS * 1e6))
                )
        return list(groups.values())

    # -- delivering ----------------------------------------------------------------------------
    def _deliver_group(self, rows: list[Any]) -> None:
        tenant, sub_id = rows[0].tenant, rows[0].sub_id
        stored = self.subscriptions.find(tenant, sub_id)
        if stored is None:  # deleted meanwhile: nothing is owed any more
            with self.db.write() as conn:
                conn.execute(delete(O).where(O.c.oid.in_([r.oid for r in rows])))
            return
        started = time.monotonic()
        for index, row in enumerate(rows):
            # Hand back what is left rather than outlive the lease (or delay a shutdown).
            if self._stopping.is_set() or time.monotonic() - started > LEASE_SECONDS / 2:
                self._release(rows[index:])
                return
            try:
                message = build_message(
                    tenant, stored.doc, row.payload, self.contexts, self.entities
                )
                self.senders.send(message)
            except Exception as exc:
                self._failed(stored, row, rows[index + 1 :], exc)
                return
            self._succeeded(tenant, sub_id, row.oid)

    def _release(self, rows: list[Any]) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(O).where(O.c.oid.in_([r.oid for r in rows])).values(next_attempt_at=now_us())
            )

    def _succeeded(self, tenant: str, sub_id: str, oid: int) -> None:
        now = now_us()
        with self.db.write() as conn:
            conn.execute(delete(O).where(O.c.oid == oid))
            _count(conn, tenant, sub_id, now, ok=True)

    def _failed(
        self, stored: StoredSubscription, row: Any, rest: list[Any], exc: Exception
    ) -> None:
        now = now_us()
        reason = str(exc) or type(exc).__name__
        attempts = row.attempts + 1
        sub_id = stored.doc["id"]
        with self.db.write() as conn:
            _count(conn, stored.tenant, sub_id, now, ok=False)
            if attempts >= self.retry.max_attempts:
                log.warning(
                    "notification %s for subscription %s dropped after %d attempts: %s",
                    row.payload.get("id"),
                    sub_id,
                    attempts,
                    reason,
                )
                conn.execute(delete(O).where(O.c.oid == row.oid))
            else:
                log.info(
                    "notification for subscription %s failed (attempt %d): %s",
                    sub_id,
                    attempts,
                    reason,
                )
                conn.execute(
                    update(O)
                    .where(O.c.oid == row.oid)
                    .values(
                        attempts=attempts,
                        last_error=reason[:2000],
                        next_attempt_at=now + int(self.retry.delay(attempts) * 1e6),
                    )
                )
            if rest:  # due again, but held back behind the failed row (see _claim)
                conn.execute(
                    update(O).where(O.c.oid.in_([r.oid for r in rest])).values(next_attempt_at=now)
                )

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
            pending = conn.execute(
                select(func.count())
                .select_from(O)
                .where(O.c.tenant == sub.tenant, O.c.sub_id == sub.sub_id)
            ).scalar_one()
            # Nothing matches, or the previous one is still being delivered (or retried):
            # send nothing rather than pile notifications up.
            if docs and not pending:
                # Compare-and-set on last_notification: of several processes, one enqueues.
                last = S.c.last_notification
                won = conn.execute(
                    update(S)
                    .where(
                        S.c.tenant == sub.tenant,
                        S.c.sub_id == sub.sub_id,
                        last.is_(None)
                        if row.last_notification is None
                        else last == row.last_notification,
                    )
                    .values(last_notification=now)
                ).rowcount
                if won:
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


def _count(conn: Connection, tenant: str, sub_id: str, now: int, *, ok: bool) -> None:
    values: dict[str, Any] = {"times_sent": S.c.times_sent + 1, "last_notification": now}
    if ok:
        values["last_success"] = now
    else:
        values["times_failed"] = S.c.times_failed + 1
        values["last_failure"] = now
    conn.execute(update(S).where(S.c.tenant == tenant, S.c.sub_id == sub_id).values(**values))
