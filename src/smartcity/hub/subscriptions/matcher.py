"""Which subscriptions fire for a set of entity changes, and what they owe: outbox rows.

:meth:`Matcher.on_change` is an ``EntityService`` change hook: it runs inside the write
transaction, so the ``outbox`` rows it inserts commit (or roll back) together with the change.
That is what makes notifications durable; delivery happens later, in the notifier. Nothing
here does I/O beyond those inserts (and, on a cache miss, reading the tenant's subscriptions
through the same connection).

Trigger semantics (clause 5.2.12; where the text is open, the choice is written here):

* Creating an entity counts as ``entityCreated`` *and* as ``attributeCreated`` for each of
  its attributes, so a subscription with the default triggers (attributeCreated,
  attributeUpdated) is notified of new entities, as peer brokers do.
* An attribute written again counts as ``attributeUpdated`` even if its value is unchanged
  (its modifiedAt changed). Deleting some of its datasetId instances is ``attributeDeleted``:
  the notification shows the instances left and the deleted ones as the NGSI-LD Null.
* ``entityUpdated`` = any attribute created, updated or deleted (or, without
  watchedAttributes, a change of type or scope).
* Deleting an entity is ``entityDeleted`` *and* ``attributeDeleted`` for each of its
  attributes. Its data holds ``id``, ``type`` and ``deletedAt``; with ``attributeDeleted`` or
  ``showChanges`` also the deleted (watched) attributes as the NGSI-LD Null (with their previous
  values under showChanges).
* ``watchedAttributes`` restricts every trigger to changes of those attributes.
* q, geoQ and scopeQ are evaluated on the entity after the change (before it, for a
  deletion).

All entities of one write that match a subscription go into one notification.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select

from smartcity.hub.changes import Change, Listeners
from smartcity.hub.entity import VALUE_KEY
from smartcity.hub.query.qregex import Pattern, compile_pattern
from smartcity.hub.subscriptions.model import NULL_URI, Doc, triggers_of
from smartcity.hub.subscriptions.outbox import claim_window
from smartcity.hub.timeutil import iso_from_us, now_us, parse_datetime_us
from smartcity.storage import schema

if TYPE_CHECKING:
    from smartcity.hub.subscriptions.service import SubscriptionService

log = logging.getLogger(__name__)

# Member that carries an attribute's previous value with showChanges (clause 5.2.14).
PREVIOUS_KEY = {
    "value": "previousValue",
    "object": "previousObject",
    "languageMap": "previousLanguageMap",
    "vocab": "previousVocab",
    "json": "previousJson",
    "valueList": "previousValueList",
    "objectList": "previousObjectList",
}


# -- compiled subscriptions ------------------------------------------------------------------


@dataclass
class Selector:
    types: list[frozenset[str]]
    entity_id: str | None = None
    pattern: Pattern | None = None

    def matches(self, entity_id: str, types: set[str]) -> bool:
        # Clause 5.2.33: id takes precedence over idPattern.
        if self.entity_id is not None:
            if entity_id != self.entity_id:
                return False
        elif self.pattern is not None and not self.pattern.search(entity_id):
            return False
        return any(required <= types for required in self.types)


@dataclass
class Compiled:
    """A stored subscription made ready for matching (parsed once per cache load)."""

    tenant: str
    sub_id: str
    doc: Doc
    selectors: list[Selector]
    watched: frozenset[str] | None
    triggers: frozenset[str]
    active: bool
    q: Any = None  # qlang node
    q_names: dict[str, str] = field(default_factory=dict)
    geo: Any = None  # geo.GeoQuery
    geoproperty: str = ""
    scope: Any = None  # scope node
    throttling_us: int | None = None
    interval_us: int | None = None
    expires_us: int | None = None
    last_notification: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.tenant, self.sub_id)

    def live(self, now: int) -> bool:
        return self.active and (self.expires_us is None or now < self.expires_us)

    def expand(self, name: str) -> str:
        return self.q_names.get(name, name)

    def selects(self, doc: Doc) -> bool:
        """Does the entity (stored layout) pass the selectors, q, geoQ and scopeQ?"""
        if self.selectors and not any(
            s.matches(doc["id"], set(doc.get("type", []))) for s in self.selectors
        ):
            return False
        if self.q is not None:
            from smartcity.hub.query.qeval import matches

            if not matches(self.q, doc, self.expand):
                return False
        if self.geo is not None:
            from smartcity.hub.query.geo import matches as geo_matches
            from smartcity.hub.querying import geo_subject

            if not any(geo_matches(self.geo, g) for g in geo_subject(doc, self.geoproperty)):
                return False
        if self.scope is not None:
            from smartcity.hub.query.scope import scope_matches

            return scope_matches(self.scope, doc.get("scope"))
        return True


def compile_subscription(tenant: str, doc: Doc, last_notification: int | None) -> Compiled:
    compiled = Compiled(
        tenant=tenant,
        sub_id=doc["id"],
        doc=doc,
        selectors=[
            Selector(
                types=[frozenset(group) for group in s["type"]],
                entity_id=s.get("id"),
                pattern=compile_pattern(s["idPattern"]) if "idPattern" in s else None,
            )
            for s in doc.get("entities", [])
        ],
        watched=frozenset(doc["watchedAttributes"]) if "watchedAttributes" in doc else None,
        triggers=triggers_of(doc),
        active=doc.get("isActive", True),
        q_names=doc.get("qNames", {}),
        last_notification=last_notification,
    )
    if "q" in doc:
        from smartcity.hub.query.qlang import parse_q

        compiled.q = parse_q(doc["q"], max_length=len(doc["q"]) + 1)
    if "geoQ" in doc:
        from smartcity.hub.query.geo import parse_geo_query

        geo = doc["geoQ"]
        compiled.geo = parse_geo_query(
            geo["georel"], geo["geometry"], geo["coordinates"], geo["geoproperty"], max_points=10**9
        )
        compiled.geoproperty = geo["geoproperty"]
    if "scopeQ" in doc:
        from smartcity.hub.query.scope import parse_scope_q

        compiled.scope = parse_scope_q(doc["scopeQ"])
    if "throttling" in doc:
        compiled.throttling_us = int(doc["throttling"] * 1_000_000)
    if "timeInterval" in doc:
        compiled.interval_us = int(doc["timeInterval"] * 1_000_000)
    if "expiresAt" in doc:
        compiled.expires_us = parse_datetime_us(doc["expiresAt"], field="expiresAt")
    return compiled


# -- what changed ----------------------------------------------------------------------------


@dataclass
class Delta:
    kind: str  # created | updated | deleted
    created: set[str]
    updated: set[str]
    deleted: set[str]  # attributes that lost instances (all of them, or some datasetIds)
    meta_changed: bool = False  # type or scope changed
    # iri -> the instances that were deleted (matched by datasetId)
    gone: dict[str, list[Doc]] = field(default_factory=dict)


def _dataset(inst: Doc) -> str | None:
    dataset: str | None = inst.get("datasetId")
    return dataset


def analyse(change: Change) -> Delta:
    before = change.before["attrs"] if change.before else {}
    after = change.after["attrs"] if change.after else {}
    if change.before is None:
        return Delta("created", set(after), set(), set())
    if change.after is None:
        return Delta("deleted", set(), set(), set(before), gone=dict(before))
    gone: dict[str, list[Doc]] = {}
    for iri, instances in before.items():
        kept = {_dataset(i) for i in after.get(iri, [])}
        removed = [i for i in instances if _dataset(i) not in kept]
        if removed:
            gone[iri] = removed
    both = set(before) & set(after)
    updated = {a for a in change.written if a in both}
    for iri in both - updated:
        # An instance written or added counts; instances only removed make a deletion.
        previous = {_dataset(i): i for i in before[iri]}
        if any(previous.get(_dataset(i)) != i for i in after[iri]):
            updated.add(iri)
    meta = change.before.get("type") != change.after.get("type") or change.before.get(
        "scope"
    ) != change.after.get("scope")
    return Delta("updated", set(after) - set(before), updated, set(gone), meta, gone)


def fires(sub: Compiled, delta: Delta) -> bool:
    watched = sub.watched
    trig = sub.triggers

    def hit(attrs: set[str]) -> bool:
        return bool(attrs & watched) if watched is not None else bool(attrs)

    if delta.kind == "created":
        return ("entityCreated" in trig and (watched is None or hit(delta.created))) or (
            "attributeCreated" in trig and hit(delta.created)
        )
    if delta.kind == "deleted":
        # Deleting an entity deletes each of its attributes too (as creating creates them).
        return ("entityDeleted" in trig and (watched is None or hit(delta.deleted))) or (
            "attributeDeleted" in trig and hit(delta.deleted)
        )
    if "attributeCreated" in trig and hit(delta.created):
        return True
    if "attributeUpdated" in trig and hit(delta.updated):
        return True
    if "attributeDeleted" in trig and hit(delta.deleted):
        return True
    return "entityUpdated" in trig and (
        hit(delta.created | delta.updated | delta.deleted)
        or (watched is None and delta.meta_changed)
    )


# -- what is sent ----------------------------------------------------------------------------


def _deleted_instance(inst: Doc, now_iso: str) -> Doc:
    """Clause 5.2.1: a deleted attribute (instance) is notified with the NGSI-LD Null in its
    value member. createdAt/modifiedAt/deletedAt are kept for sysAttrs; the notifier drops
    them otherwise."""
    key = VALUE_KEY[inst["type"]]
    null: Any = NULL_URI
    if key == "languageMap":
        null = {"@none": NULL_URI}
    elif key in ("valueList", "objectList"):
        null = [NULL_URI]
    marker: Doc = {"type": inst["type"], key: null}
    for member in ("datasetId", "createdAt", "modifiedAt"):
        if member in inst:
            marker[member] = inst[member]
    marker["deletedAt"] = now_iso
    return marker


def _deleted_attribute(instances: list[Doc], now_iso: str) -> list[Doc]:
    """A wholly deleted attribute is one NGSI-LD Null, whatever its instances were: the default
    instance's (or the first one's) timestamps, and no datasetId."""
    default = next((i for i in instances if "datasetId" not in i), instances[0])
    marker = _deleted_instance(default, now_iso)
    marker.pop("datasetId", None)
    return [marker]


def notification_item(sub: Compiled, change: Change, delta: Delta, now_iso: str) -> Doc:
    """One entity of a notification, still in the stored layout: it is compacted with the
    subscription's @context by the notifier, outside the write transaction."""
    wants_deletions = bool({"attributeDeleted", "entityUpdated"} & sub.triggers)
    if change.after is None:
        assert change.before is not None
        before = change.before
        keep = ("id", "type", "scope", "createdAt", "modifiedAt")
        doc: Doc = {k: before[k] for k in keep if k in before}
        doc.update({"deletedAt": now_iso, "attrs": {}})
        show_changes = bool(sub.doc["notification"].get("showChanges"))
        if "attributeDeleted" in sub.triggers or show_changes:
            # The deleted attributes (the watched ones) are reported as NGSI-LD Null; with
            # showChanges they carry their last values (below), even for entityDeleted.
            for iri, instances in delta.gone.items():
                if sub.watched is None or iri in sub.watched:
                    doc["attrs"][iri] = _deleted_attribute(instances, now_iso)
        item: Doc = {"doc": doc}
        if show_changes:
            item["previous"] = _previous(before, set(doc["attrs"]))
        return item
    doc = change.after
    if delta.deleted and wants_deletions and change.before is not None:
        doc = {**doc, "attrs": dict(doc["attrs"])}
        for iri in delta.deleted:
            if iri not in doc["attrs"]:
                doc["attrs"][iri] = _deleted_attribute(delta.gone[iri], now_iso)
                continue
            # Some instances deleted: the ones left, then the deleted ones as NGSI-LD Null.
            doc["attrs"][iri] = [
                *doc["attrs"][iri],
                *(_deleted_instance(i, now_iso) for i in delta.gone[iri]),
            ]
    item = {"doc": doc}
    if sub.doc["notification"].get("showChanges") and change.before is not None:
        previous = _previous(change.before, delta.updated | delta.deleted)
        if previous:
            item["previous"] = previous
    return item


def _previous(before: Doc, iris: set[str]) -> dict[str, dict[str, list[Any]]]:
    """showChanges: iri -> datasetId ("@none" for the default) -> [previous member, value]."""
    previous: dict[str, dict[str, list[Any]]] = {}
    for iri in iris:
        for inst in before["attrs"].get(iri, []):
            key = VALUE_KEY[inst["type"]]
            dataset = inst.get("datasetId", "@none")
            previous.setdefault(iri, {})[dataset] = [PREVIOUS_KEY[key], inst[key]]
    return previous


def new_payload(items: list[Doc], now: int) -> Doc:
    """An outbox payload: the notification's id and time are fixed now, so that a retried
    delivery is recognisably the same notification."""
    return {
        "id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
        "notifiedAt": iso_from_us(now),
        "entities": items,
    }


def outbox_row(sub: Compiled, payload: Doc, now: int) -> Doc:
    return {
        "tenant": sub.tenant,
        "sub_id": sub.sub_id,
        "payload": payload,
        "created_at": now,
        "next_attempt_at": now,
        "attempts": 0,
    }


# -- the hook --------------------------------------------------------------------------------


class Matcher:
    """Plugs into the change feed (hub/changes.py): ``on_change`` as an in-transaction hook,
    ``after_commit`` as a commit listener, which then tells ``queued`` (the notifier wakes)."""

    def __init__(self, subscriptions: SubscriptionService) -> None:
        self.subscriptions = subscriptions
        self.queued: Listeners[[]] = Listeners("notification queued")
        # Throttling is enforced per process: the last time each subscription was queued.
        self._last_queued: dict[tuple[str, str], int] = {}
        self._guard = threading.Lock()
        # What the current transaction queued, applied only once it has committed (a rolled
        # back write must not count against a throttled subscription).
        self._local = threading.local()

    def on_change(self, conn: Connection, changes: Sequence[Change]) -> None:
        self._local.pending = []
        if not changes:
            return
        now = now_us()
        now_iso = iso_from_us(now)
        owed: dict[tuple[str, str], tuple[Compiled, list[Doc]]] = {}
        for tenant in dict.fromkeys(c.tenant for c in changes):
            subs = [s for s in self.subscriptions.compiled(conn, tenant) if s.interval_us is None]
            if not subs:
                continue
            for change in changes:
                if change.tenant != tenant:
                    continue
                delta = analyse(change)
                subject = change.after if change.after is not None else change.before
                assert subject is not None
                for sub in subs:
                    try:
                        if not (sub.live(now) and fires(sub, delta) and sub.selects(subject)):
                            continue
                        item = notification_item(sub, change, delta, now_iso)
                    except Exception:  # a broken subscription must never fail a write
                        log.exception("subscription %s failed to match; skipped", sub.sub_id)
                        continue
                    owed.setdefault(sub.key, (sub, []))[1].append(item)
        rows: list[Doc] = []
        for sub, items in sorted(owed.values(), key=lambda owed_: owed_[0].key):
            if self._throttled(sub, now) or not self._claim_throttle(conn, sub, now):
                continue
            rows.append(outbox_row(sub, new_payload(items, now), now))
            self._local.pending.append(sub.key)
        if rows:
            conn.execute(insert(schema.outbox), rows)
        self._local.now = now

    def _throttled(self, sub: Compiled, now: int) -> bool:
        """This process queued for ``sub`` within its throttling window (no database read)."""
        if sub.throttling_us is None:
            return False
        with self._guard:
            last = self._last_queued.get(sub.key)
        if last is None:
            last = sub.last_notification
        return last is not None and now - last < sub.throttling_us

    def _claim_throttle(self, conn: Connection, sub: Compiled, now: int) -> bool:
        """Throttling across processes and nodes (``outbox.claim_window``). Subscriptions are
        claimed in key order (sorted above), so two transactions never wait on each other in
        a cycle."""
        if sub.throttling_us is None:
            return True
        S = schema.subscriptions
        claimed = claim_window(conn, S, sub.tenant, sub.sub_id, sub.throttling_us, now)
        if not claimed:  # another node queued inside the window: throttle here too until its end
            other = conn.execute(
                select(S.c.last_queued_at).where(S.c.tenant == sub.tenant, S.c.sub_id == sub.sub_id)
            ).scalar()
            if other is not None:
                with self._guard:
                    self._last_queued[sub.key] = max(self._last_queued.get(sub.key, 0), other)
        return bool(claimed)

    def after_commit(self, changes: Sequence[Change]) -> None:
        pending: list[tuple[str, str]] = getattr(self._local, "pending", [])
        self._local.pending = []
        if not pending:
            return
        now = getattr(self._local, "now", now_us())
        with self._guard:
            for key in pending:
                self._last_queued[key] = now
        self.queued.notify()
