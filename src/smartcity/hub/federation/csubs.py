"""Subscriptions to context source registrations (clauses 5.11, 5.3.2): who wants to hear of
department brokers being registered, changed or removed.

The payload is a Subscription like those on entities (same parser, same stored layout; see
``hub.subscriptions.model``) minus the members that only make sense for entities. A
registration subscription matches a registration when one of its entity selectors could
overlap the registration's information (``matching``) and, with watchedAttributes, when the
registration names one of them or names none (it then offers every attribute). ``q``, ``csf``,
``geoQ``, ``scopeQ`` and ``temporalQ`` then narrow it as they narrow a registration query
(``regquery``): q and csf on the registration's Context Source properties and simple members,
geoQ on its ``location`` (or ``observationSpace`` / ``operationSpace`` as ``geoproperty``),
scopeQ on its ``scope``, temporalQ on its ``observationInterval`` (or ``managementInterval``);
a change is judged on the registration before and after it, as for entities.

``throttling`` drops what a change would notify within that many seconds of the previous
notification, as on entity subscriptions; a compare-and-set on ``last_queued_at`` in the
registration's own transaction makes it hold across processes and nodes. A periodic
subscription (``timeInterval``) is not notified of changes: every interval, the first at once,
it gets one notification listing every registration that matches then (triggerReason
``newlyMatching``, as a first notification), or none when nothing matches. It is a snapshot: a
registration missing from it no longer matches.

Durable like entity notifications: the change hook runs inside the registration's write
transaction and writes one ``csource_outbox`` row per matching subscription; the notifier
(``csub_notifier``, the shared outbox loop) delivers and deletes them, retrying failures while
the subscription is active and keeping as failed what its receiver never took.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from smartcity.config import Limits
from smartcity.hub.entity import NULL_URI
from smartcity.hub.errors import AlreadyExists, BadRequestData, Conflict, ResourceNotFound
from smartcity.hub.federation.csf import parse_csf
from smartcity.hub.federation.matching import Wanted, registration_matches
from smartcity.hub.federation.model import Doc
from smartcity.hub.federation.regquery import Filter, Temporal, passes, temporal_filter
from smartcity.hub.jsonld import ActiveContext
from smartcity.hub.query.geo import parse_geo_query
from smartcity.hub.query.qlang import parse_q
from smartcity.hub.query.scope import parse_scope_q
from smartcity.hub.subscriptions.model import (
    apply_fragment,
    parse_subscription,
    q_names,
    status_of,
)
from smartcity.hub.subscriptions.outbox import claim_period, claim_window, pending
from smartcity.hub.subscriptions.service import STAT_COLUMNS  # the same status columns
from smartcity.hub.timeutil import iso_from_us, now_us
from smartcity.storage import schema
from smartcity.storage.engine import Database

S = schema.csource_subscriptions
O = schema.csource_outbox  # noqa: E741
R = schema.csource_registrations

# Members of entity subscriptions that this hub does not offer on registration subscriptions.
UNSUPPORTED = {
    "notificationTrigger": "registration subscriptions notify newlyMatching, updated and "
    "noLongerMatching registrations; notificationTrigger does not apply",
    "localOnly": "localOnly does not apply to registration subscriptions",
}


def _check_members(payload: Any) -> None:
    if isinstance(payload, dict):
        for key in payload:
            if key in UNSUPPORTED and payload[key] != NULL_URI:
                raise BadRequestData(UNSUPPORTED[key])


# A registration's geometries, by the IRI a geoQ's geoproperty expands to (core @context terms).
_GEO_MEMBERS = {
    f"https://uri.etsi.org/ngsi-ld/{name}": name
    for name in ("location", "observationSpace", "operationSpace")
}


# Members of registration subscriptions only (the entity subscriptions' parser refuses them).
_OWN = ("csf", "temporalQ")


def _split_own(payload: Any) -> tuple[Any, Doc]:
    """The payload without ``csf`` and ``temporalQ``, and those of them it has."""
    if not isinstance(payload, dict) or not any(key in payload for key in _OWN):
        return payload, {}
    return (
        {k: v for k, v in payload.items() if k not in _OWN},
        {k: payload[k] for k in _OWN if k in payload},
    )


def _temporal_q(value: Any) -> Doc:
    """A TemporalQuery (clause 5.2.21) on the registration's observationInterval (timeproperty
    observedAt, the default) or managementInterval (createdAt, modifiedAt)."""
    if not isinstance(value, dict) or "timerel" not in value:
        raise BadRequestData(
            "temporalQ must be an object such as "
            '{"timerel": "after", "timeAt": "2026-01-01T00:00:00Z"}'
        )
    unknown = set(value) - {"timerel", "timeAt", "endTimeAt", "timeproperty"}
    if unknown:
        raise BadRequestData(f"temporalQ has unknown members {', '.join(sorted(unknown))}")
    texts = {k: v for k, v in value.items() if isinstance(v, str)}
    if len(texts) != len(value):
        raise BadRequestData("temporalQ's members are strings")
    _temporal_of(texts)  # validates
    return texts


def _temporal_of(query: Doc) -> Temporal | None:
    return temporal_filter(
        query.get("timerel"), query.get("timeAt"), query.get("endTimeAt"), query.get("timeproperty")
    )


def _with_own(doc: Doc, own: Doc, ctx: ActiveContext) -> Doc:
    if "csf" in own:
        text = own["csf"]
        doc.pop("csf", None)
        doc.pop("csfNames", None)
        if text != NULL_URI:
            if not isinstance(text, str):
                raise BadRequestData("csf must be a string in the query language of q")
            parse_csf(text)
            doc["csf"] = text
            doc["csfNames"] = q_names(text, ctx)
    if "temporalQ" in own:
        doc.pop("temporalQ", None)
        if own["temporalQ"] != NULL_URI:
            doc["temporalQ"] = _temporal_q(own["temporalQ"])
    geo = doc.get("geoQ")
    if geo is not None and geo["geoproperty"] not in _GEO_MEMBERS:
        raise BadRequestData(
            "geoQ.geoproperty on a registration subscription is location, observationSpace "
            f"or operationSpace, got {ctx.compact(geo['geoproperty'])!r}"
        )
    return doc


def parse_csub(payload: Any, ctx: ActiveContext, *, context: Any, limits: Limits) -> Doc:
    """Validate a Create Context Source Registration Subscription payload (clause 5.11.2)."""
    _check_members(payload)
    payload, own = _split_own(payload)
    doc = parse_subscription(payload, ctx, context=context, limits=limits, now_us=now_us())
    return _with_own(doc, own, ctx)


def patch_csub(old: Doc, fragment: Any, ctx: ActiveContext, *, context: Any,
               limits: Limits) -> Doc:  # fmt: skip
    _check_members(fragment)
    fragment, own = _split_own(fragment)
    if own and not fragment:  # only members of registration subscriptions change
        doc = {**old, "modifiedAt": iso_from_us(now_us())}
    else:
        doc = apply_fragment(old, fragment, ctx, context=context, limits=limits, now_us=now_us())
    return _with_own(doc, own, ctx)


# What a registration subscription's filter is made of (stored members).
_FILTER_MEMBERS = ("q", "csf", "geoQ", "scopeQ", "temporalQ", "qNames", "csfNames")


def _filter_of(sub: Doc) -> tuple[Filter, dict[str, str]]:
    """The subscription's q, csf, geoQ, scopeQ and temporalQ as a registration query's
    filter, and the IRIs their names expanded to when the subscription was stored. Parsed
    once per distinct filter: every registration change, and every period of a periodic
    subscription, matches it against each registration."""
    members = {k: sub[k] for k in _FILTER_MEMBERS if k in sub}
    return _parsed_filter(orjson.dumps(members, option=orjson.OPT_SORT_KEYS))


@lru_cache(maxsize=512)
def _parsed_filter(members_json: bytes) -> tuple[Filter, dict[str, str]]:
    sub: Doc = orjson.loads(members_json)
    geo = sub.get("geoQ")
    geo_query = (
        parse_geo_query(geo["georel"], geo["geometry"], geo["coordinates"], None, max_points=10**9)
        if geo
        else None
    )
    flt = Filter(
        q=parse_q(sub["q"], max_length=len(sub["q"]) + 1) if "q" in sub else None,
        csf=parse_q(sub["csf"], max_length=len(sub["csf"]) + 1) if "csf" in sub else None,
        geo=geo_query,
        geo_member=_GEO_MEMBERS.get(geo["geoproperty"], "location") if geo else "location",
        scope=parse_scope_q(sub["scopeQ"]) if "scopeQ" in sub else None,
        temporal=_temporal_of(sub["temporalQ"]) if "temporalQ" in sub else None,
    )
    return flt, {**sub.get("qNames", {}), **sub.get("csfNames", {})}


def csub_matches(sub: Doc, registration: Doc) -> bool:
    """Whether a registration is one the subscription is about (see the module docstring)."""
    flt, names = _filter_of(sub)
    if not passes(registration, flt, lambda name: names.get(name, name)):
        return False
    watched = sub.get("watchedAttributes")
    selectors = sub.get("entities")
    if not selectors:
        return registration_matches(registration, Wanted(attrs=watched))
    for selector in selectors:
        wanted = Wanted(
            types=[frozenset(alt) for alt in selector["type"]],
            ids=[selector["id"]] if "id" in selector else None,
            id_pattern=selector.get("idPattern") if "id" not in selector else None,
            attrs=watched,
        )
        if registration_matches(registration, wanted):
            return True
    return False


def trigger_reason(sub: Doc, old: Doc | None, new: Doc | None) -> str | None:
    """Clause 5.3.2's triggerReason for a registration change, or None (not notified)."""
    was = old is not None and csub_matches(sub, old)
    now = new is not None and csub_matches(sub, new)
    if now:
        return "updated" if was else "newlyMatching"
    return "noLongerMatching" if was else None


def _payload(reason: str, registrations: list[Doc]) -> Doc:
    return {
        "id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
        "notifiedAt": iso_from_us(now_us()),
        "triggerReason": reason,
        "registrations": registrations,
    }


def _claim_throttle(conn: Connection, tenant: str, sub_id: str, sub: Doc, now: int) -> bool:
    """Whether the subscription may be notified now: always without ``throttling``, else
    when its window is free (``outbox.claim_window``, in the registration's transaction)."""
    if "throttling" not in sub:
        return True
    return claim_window(conn, S, tenant, sub_id, int(sub["throttling"] * 1_000_000), now)


def _not_found(sub_id: str, tenant: str) -> ResourceNotFound:
    where = f" in tenant {tenant!r}" if tenant else ""
    return ResourceNotFound(f"registration subscription {sub_id} does not exist{where}")


class CsourceSubscriptionService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the registration change hook (inside the registration's transaction) -------------------
    def on_registration_change(
        self, conn: Connection, tenant: str, _change: str, old: Doc | None, new: Doc | None
    ) -> None:
        now = now_us()
        rows = conn.execute(
            select(S.c.sub_id, S.c.doc).where(S.c.tenant == tenant).order_by(S.c.sub_id)
        ).all()
        for row in rows:  # (in id order: throttling's row locks are taken in one order)
            if status_of(row.doc, now) != "active" or "timeInterval" in row.doc:
                continue
            reason = trigger_reason(row.doc, old, new)
            if reason is None or not _claim_throttle(conn, tenant, row.sub_id, row.doc, now):
                continue
            registration = new if new is not None else old
            assert registration is not None
            self._queue(conn, tenant, row.sub_id, _payload(reason, [registration]), now)

    # -- periodic subscriptions (the notifier's loop, on the node holding the periodic job) --
    def enqueue_periodic(self) -> int:
        """Queue the notification of each periodic subscription that is due; how many."""
        now = now_us()
        with self.db.read() as conn:
            subs = [
                r
                for r in conn.execute(
                    select(S.c.tenant, S.c.sub_id, S.c.doc, S.c.last_notification)
                ).all()
                if "timeInterval" in r.doc and status_of(r.doc, now) == "active"
            ]
        queued = 0
        for sub in subs:
            interval = int(sub.doc["timeInterval"] * 1_000_000)
            last = sub.last_notification
            if last is not None and last + interval > now:
                continue
            with self.db.read() as conn:
                busy = pending(conn, O, sub.tenant, sub.sub_id)
                matching = [] if busy else self._matching(conn, sub.tenant, sub.doc, now)
            # Nothing matches, or the previous one is still being delivered (or retried): send
            # nothing rather than pile notifications up (and take no write lock for it).
            if not matching:
                continue
            with self.db.write() as conn:
                if claim_period(conn, S, sub.tenant, sub.sub_id, last, now):
                    payload = _payload("newlyMatching", matching)
                    self._queue(conn, sub.tenant, sub.sub_id, payload, now)
                    queued += 1
        return queued

    def _matching(self, conn: Connection, tenant: str, sub: Doc, now: int) -> list[Doc]:
        """The registrations of ``tenant`` that are live and match ``sub``, oldest first."""
        rows = conn.execute(
            select(R.c.doc, R.c.expires_at)
            .where(R.c.tenant == tenant)
            .order_by(R.c.created_at, R.c.reg_id)
        ).all()
        return [
            r.doc
            for r in rows
            if (r.expires_at is None or r.expires_at > now) and csub_matches(sub, r.doc)
        ]

    def _queue(self, conn: Connection, tenant: str, sub_id: str, payload: Doc, now: int) -> None:
        conn.execute(
            insert(O).values(
                tenant=tenant,
                sub_id=sub_id,
                payload=payload,
                created_at=now,
                next_attempt_at=now,
                attempts=0,
            )
        )

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
                    insert(S).values(tenant=tenant, sub_id=doc["id"], doc=doc, created_at=now,
                                     modified_at=now, times_sent=0, times_failed=0)
                )  # fmt: skip
                # Clause 5.11.2: the first notification lists the registrations matching now
                # (a periodic subscription's comes from its first period, at once).
                if doc.get("isActive", True) and "timeInterval" not in doc:
                    matching = self._matching(conn, tenant, doc, now)
                    if matching and _claim_throttle(conn, tenant, doc["id"], doc, now):
                        self._queue(
                            conn, tenant, doc["id"], _payload("newlyMatching", matching), now
                        )
        except IntegrityError:
            raise AlreadyExists(f"subscription {doc['id']} already exists") from None

    def get(self, tenant: str, sub_id: str) -> tuple[Doc, dict[str, Any]]:
        with self.db.read() as conn:
            row = conn.execute(select(S).where(S.c.tenant == tenant, S.c.sub_id == sub_id)).first()
        if row is None:
            raise _not_found(sub_id, tenant)
        return row.doc, {c: getattr(row, c) for c in STAT_COLUMNS}

    def query(
        self, tenant: str, *, limit: int, offset: int
    ) -> tuple[list[tuple[Doc, dict[str, Any]]], int]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(S)
                .where(S.c.tenant == tenant)
                .order_by(S.c.created_at, S.c.sub_id)
                .limit(limit)
                .offset(offset)
            ).all()
            total = conn.execute(
                select(func.count()).select_from(S).where(S.c.tenant == tenant)
            ).scalar_one()
        return [(r.doc, {c: getattr(r, c) for c in STAT_COLUMNS}) for r in rows], int(total)

    def update(self, tenant: str, doc: Doc, *, expected_modified: int) -> None:
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
                .values(doc=doc, modified_at=max(now_us(), row.modified_at + 1))
            )

    def delete(self, tenant: str, sub_id: str) -> None:
        with self.db.write() as conn:
            deleted = conn.execute(
                delete(S).where(S.c.tenant == tenant, S.c.sub_id == sub_id)
            ).rowcount
            if not deleted:
                raise _not_found(sub_id, tenant)
            conn.execute(delete(O).where(O.c.tenant == tenant, O.c.sub_id == sub_id))
