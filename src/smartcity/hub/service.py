"""The hub's Python service layer: every module reads and writes city data through here.

Methods take and return documents in the stored layout (names expanded; see ``entity.py``);
the HTTP layer does the @context work. Each write is one transaction that also writes the
history and any notifications owed, so an accepted write is never half-applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from smartcity.hub import documents, history, repository
from smartcity.hub.changes import Change, ChangeFeed
from smartcity.hub.entity import (
    Doc,
    Instance,
    is_null,
    without_nulls,
)
from smartcity.hub.errors import (
    AlreadyExists,
    BadRequestData,
    NgsiError,
    ResourceNotFound,
    TooComplexQuery,
)
from smartcity.hub.group_commit import AsyncBatcher, GroupCommit
from smartcity.hub.query.qsql import register_sqlite_functions
from smartcity.hub.querying import EntityQuery, matches_geo, to_filter
from smartcity.hub.text import refuse_unstorable
from smartcity.hub.timeutil import iso_from_us, now_us
from smartcity.storage import replicas
from smartcity.storage.engine import Database, QueryTimeout


class Transaction:
    """A write in progress (``EntityService.transaction``)."""

    __slots__ = ("changes", "conn", "history", "history_keys", "now")

    def __init__(self, now: int) -> None:
        self.now = now  # µs since the epoch: every timestamp this write sets
        self.conn: Connection
        self.changes: list[Change] = []  # of the latest state: for the feed
        self.history: list[Change] = []  # the instances the temporal evolution keeps
        # History keys read along with the entities (repository.load_many): no lookup later
        self.history_keys: dict[tuple[str, str], repository.HistoryKey] = {}

    @property
    def now_iso(self) -> str:
        return iso_from_us(self.now)

    def record(self, changes: Sequence[Change], *, history: Sequence[Change] | None = None) -> None:
        """Changes of the latest state; ``history`` when the temporal evolution keeps more
        than the latest state shows (ingestion: every reading of a batch, not just the
        newest)."""
        self.changes.extend(changes)
        self.history.extend(changes if history is None else history)


@dataclass
class _Modification:
    """One single-entity write waiting for its group commit."""

    tenant: str
    entity_id: str
    apply: Callable[[Doc, str], tuple[Doc, dict[str, list[Instance]]]]


@dataclass
class UpdateResult:
    updated: list[str] = field(default_factory=list)
    not_updated: list[tuple[str, str]] = field(default_factory=list)  # (iri, reason)


@dataclass
class BatchResult:
    success: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    errors: list[tuple[str, NgsiError]] = field(default_factory=list)


class EntityService:
    def __init__(
        self, db: Database, feed: ChangeFeed | None = None, *, query_budget: float | None = None
    ) -> None:
        self.db = db
        self.feed = feed or ChangeFeed()
        # The longest find() may run in the database (seconds; None: unbounded). Queries are
        # the reads whose cost the client controls (q, idPattern, geo-queries, counts).
        self.query_budget = query_budget
        self._group: GroupCommit[_Modification] = GroupCommit(self._modify_batch)
        self._agroup: AsyncBatcher[_Modification, None] = AsyncBatcher(self._modify_batch)
        self._aget: AsyncBatcher[tuple[str, str, replicas.ReadPolicy | None], str] = AsyncBatcher(
            self._get_batch, on_loop=True
        )
        if db.is_sqlite:  # regexp() and q_datetime_key(), which q and idPattern compile to
            db.prepare_connection(register_sqlite_functions)

    # -- plumbing ----------------------------------------------------------------------------
    @contextmanager
    def transaction(self, now: int | None = None) -> Iterator[Transaction]:
        """One write: the caller changes the latest state through ``tx.conn`` and records its
        changes with ``tx.record``; then, in this order, the history is written, the feed's
        in-transaction hooks run (subscriptions queue their notifications), the transaction
        commits, and the feed's commit listeners are told. Every write of the hub goes through
        here, the batches of device ingestion included. If the body or a hook raises, nothing
        is written and nobody is told."""
        tx = Transaction(now if now is not None else now_us())
        with self.db.write() as conn:
            tx.conn = conn
            yield tx
            if tx.history:
                history.record(conn, tx.history, tx.now, tx.history_keys)
            self.feed.in_transaction(conn, tx.changes)
        self.feed.committed(tx.changes)

    def _load(self, conn: Connection, tenant: str, entity_id: str) -> tuple[int, Doc]:
        row = repository.get(conn, tenant, entity_id, for_update=True)
        if row is None:
            raise ResourceNotFound(f"entity {entity_id} does not exist" + _tenant_note(tenant))
        return int(row.eid), row.doc

    # -- reads -------------------------------------------------------------------------------
    def get(self, tenant: str, entity_id: str) -> Doc:
        doc: Doc = orjson.loads(self.get_text(tenant, entity_id))
        return doc

    def get_text(self, tenant: str, entity_id: str) -> str:
        """The stored JSON text of the entity's document (``get`` before parsing): what the
        HTTP layer's cache of rendered bodies is keyed by (hub/body_cache.py)."""
        text = repository.get_text(self.db, tenant, entity_id)
        if text is None:
            raise ResourceNotFound(f"entity {entity_id} does not exist" + _tenant_note(tenant))
        return text

    async def get_async(self, tenant: str, entity_id: str) -> Doc:
        """``get`` from the event loop."""
        doc: Doc = orjson.loads(await self.get_text_async(tenant, entity_id))
        return doc

    async def get_text_async(self, tenant: str, entity_id: str) -> str:
        """``get_text`` from the event loop. SQLite reads (a local file, WAL: never blocked by
        a writer) take tens of microseconds, less than a hop to the thread pool, so they run
        on the loop; PostgreSQL reads wait on the network, so the retrievals that arrive
        together go to the database as one batch (one round trip), on the loop's own
        connection (storage/loop_reads.py)."""
        if not self.db.is_postgres:
            return self.get_text(tenant, entity_id)
        # Each retrieval carries its request's read policy (storage/replicas.py): the batch
        # runs on a task of whichever request came first, and must satisfy all of them.
        return await self._aget.submit((tenant, entity_id, replicas.current()))

    async def _get_batch(
        self, items: Sequence[tuple[str, str, replicas.ReadPolicy | None]]
    ) -> list[str | BaseException]:
        keys = [(tenant, entity_id) for tenant, entity_id, _ in items]
        with replicas.using(replicas.strictest(policy for _, _, policy in items)):
            found = await repository.get_texts_async(self.db, keys)
        return [
            found.get(key)
            or ResourceNotFound(f"entity {key[1]} does not exist" + _tenant_note(key[0]))
            for key in keys
        ]

    def changed_since(
        self, tenant: str, since: int, after_eid: int = -1, *, limit: int = 2000
    ) -> list[tuple[int, int, str]]:
        """(modified_at µs, eid, entity id) of the entities modified after (``since``,
        ``after_eid``), in that order: how a reader in another process (a live view) learns
        of writes it did not make. ``docs_by_eid`` then reads the ones it needs."""
        with self.db.read() as conn:
            return repository.changed_since(conn, tenant, since, after_eid, limit)

    def deleted_since(self, tenant: str, since: int, *, limit: int = 2000) -> list[str]:
        """Ids of the entities deleted at or after ``since`` (by any process): the deletions
        ``changed_since`` cannot show, since a deleted entity leaves no row."""
        with self.db.read() as conn:
            return repository.deleted_since(conn, tenant, since, limit)

    def docs_by_eid(self, eids: Sequence[int]) -> dict[int, Doc]:
        with self.db.read() as conn:
            return repository.docs_by_eid(conn, eids)

    def find(
        self, tenant: str, query: EntityQuery, *, limit: int, offset: int = 0, count: bool = False
    ) -> tuple[list[Doc], int | None]:
        """Entities matching ``query`` in insertion order (or ``query.order_by``), and the
        total if ``count``."""
        from smartcity.hub.query.order import only_id, sort_docs

        flt = to_filter(query, self.db.engine.dialect.name)
        by_id = bool(query.order_by) and only_id(query.order_by or ())
        in_python = query.geo is not None or (bool(query.order_by) and not by_id)
        reader = self.db.snapshot if count or in_python else self.db.read
        with self.bounded(), reader(budget=self.query_budget) as conn:
            if not in_python:
                descending = by_id and query.order_by[0].descending  # type: ignore[index]
                return repository.query(
                    conn,
                    tenant,
                    flt,
                    limit=limit,
                    offset=offset,
                    count=count,
                    order="id_desc" if descending else "id" if by_id else None,
                )
            # Geo: the bounding-box prefilter runs in SQL, the exact test here. An attribute
            # orderBy sorts the matched set here (see query.order for why).
            matched = [
                doc
                for doc in repository.iter_docs(conn, tenant, flt, geo=query)
                if query.geo is None or matches_geo(doc, query)
            ]
        if query.order_by:
            matched = sort_docs(matched, query.order_by)
        return matched[offset : offset + limit], (len(matched) if count else None)

    @contextmanager
    def bounded(self) -> Iterator[None]:
        """Turn a query stopped for its budget into the error the client can act on."""
        try:
            yield
        except QueryTimeout as exc:
            raise TooComplexQuery(
                f"the query ran longer than {exc.budget:g} s, this server's budget for one "
                "query, and was stopped; narrow it (type, id, attrs, a q on fewer attributes, "
                "a geo-query) or ask for a smaller page without count"
            ) from None

    # -- whole entities ----------------------------------------------------------------------
    def create(self, tenant: str, doc: Doc) -> None:
        result = self.create_many(tenant, [doc])
        if result.errors:
            raise result.errors[0][1]

    def create_many(self, tenant: str, docs: Sequence[Doc]) -> BatchResult:
        result = BatchResult()
        now = now_us()
        now_iso = iso_from_us(now)
        seen: set[str] = set()
        fresh: list[Doc] = []
        with self.transaction(now) as tx:
            conn = tx.conn
            existing = repository.existing_ids(conn, tenant, (d["id"] for d in docs))
            for doc in docs:
                if doc["id"] in existing or doc["id"] in seen:
                    result.errors.append(
                        (doc["id"], AlreadyExists(f"entity {doc['id']} already exists"))
                    )
                    continue
                seen.add(doc["id"])
                refused = _unstorable(doc)
                if refused is not None:
                    result.errors.append((doc["id"], refused))
                    continue
                doc = documents.new_doc(doc, now_iso)
                fresh.append(doc)
            try:
                repository.insert_entities(conn, tenant, fresh, now)
            except IntegrityError:  # a concurrent create won the race
                raise AlreadyExists("an entity in this request was created concurrently") from None
            tx.record([Change(tenant, d["id"], None, d, written=d["attrs"]) for d in fresh])
        result.success = [d["id"] for d in fresh]
        return result

    def upsert_many(self, tenant: str, docs: Sequence[Doc], *, replace: bool) -> BatchResult:
        """Create missing entities; replace (or, with replace=False, update) existing ones."""
        result = BatchResult()
        now = now_us()
        now_iso = iso_from_us(now)
        merged_docs: dict[str, Doc] = {}
        for doc in docs:  # the same id twice in one batch: later attributes win
            if doc["id"] in merged_docs:
                prior = merged_docs[doc["id"]]
                prior["attrs"].update(doc["attrs"])
                prior["type"] = list(dict.fromkeys(prior["type"] + doc.get("type", [])))
            else:
                merged_docs[doc["id"]] = documents.clone(doc)
        with self.transaction(now) as tx:
            conn = tx.conn
            loaded = repository.load_many(conn, tenant, list(merged_docs), tx.history_keys)
            existing = {entity_id: eid for entity_id, (eid, _) in loaded.items()}
            fresh: list[Doc] = []
            changes: list[Change] = []
            updates: list[tuple[int, Doc, Doc]] = []
            for entity_id, doc in merged_docs.items():
                refused = _unstorable(doc)
                if refused is not None:
                    result.errors.append((entity_id, refused))
                    continue
                if entity_id not in existing:
                    if not doc.get("type"):
                        result.errors.append(
                            (entity_id, BadRequestData(f"entity {entity_id} has no type"))
                        )
                        continue
                    fresh.append(documents.new_doc(doc, now_iso))
                    continue
                eid, old = loaded[entity_id]
                new = (
                    documents.replace_doc(old, doc, now_iso)
                    if replace
                    else documents.update_doc(old, doc, now_iso)
                )
                updates.append((eid, old, new))
                changes.append(
                    Change(tenant, entity_id, old, new, written=documents.written_of(doc["attrs"]))
                )
            repository.update_entities(conn, tenant, updates, now)
            repository.insert_entities(conn, tenant, fresh, now)
            changes.extend(Change(tenant, d["id"], None, d, written=d["attrs"]) for d in fresh)
            tx.record(changes)
        result.success = [c.entity_id for c in changes]
        result.created = [d["id"] for d in fresh]
        return result

    def update_many(self, tenant: str, docs: Sequence[Doc], *, no_overwrite: bool) -> BatchResult:
        """Batch update: entities must exist; attributes are appended (or only added)."""
        result = BatchResult()
        now = now_us()
        now_iso = iso_from_us(now)
        with self.transaction(now) as tx:
            conn = tx.conn
            existing = repository.existing_ids(conn, tenant, (d["id"] for d in docs))
            changes: list[Change] = []
            for doc in docs:
                if doc["id"] not in existing:
                    result.errors.append(
                        (doc["id"], ResourceNotFound(f"entity {doc['id']} does not exist"))
                    )
                    continue
                refused = _unstorable(doc)
                if refused is not None:
                    result.errors.append((doc["id"], refused))
                    continue
                eid, old = self._load(conn, tenant, doc["id"])
                attrs = doc["attrs"]
                if no_overwrite:
                    attrs = {k: v for k, v in attrs.items() if k not in old["attrs"]}
                new = documents.update_doc(old, {**doc, "attrs": attrs}, now_iso)
                repository.update_entity(conn, tenant, eid, old, new, now)
                changes.append(
                    Change(tenant, doc["id"], old, new, written=documents.written_of(attrs))
                )
            tx.record(changes)
        result.success = [c.entity_id for c in changes]
        return result

    def delete_many(self, tenant: str, ids: Sequence[str]) -> BatchResult:
        result = BatchResult()
        now = now_us()
        with self.transaction(now) as tx:
            conn = tx.conn
            existing = repository.existing_ids(conn, tenant, ids)
            changes: list[Change] = []
            done: set[str] = set()
            for entity_id in ids:
                if entity_id in done:  # the same id twice: the second finds it deleted
                    result.errors.append(
                        (entity_id, ResourceNotFound(f"entity {entity_id} was already deleted"))
                    )
                    continue
                done.add(entity_id)
                if entity_id not in existing:
                    result.errors.append(
                        (entity_id, ResourceNotFound(f"entity {entity_id} does not exist"))
                    )
                    continue
                _, old = self._load(conn, tenant, entity_id)
                changes.append(Change(tenant, entity_id, old, None))
            repository.delete_entities(conn, [existing[c.entity_id] for c in changes])
            tx.record(changes)
        result.success = [c.entity_id for c in changes]
        return result

    def purge(
        self,
        tenant: str,
        query: EntityQuery,
        *,
        keep: Sequence[str] | None = None,
        drop: Sequence[str] | None = None,
    ) -> int:
        """Purge entities (DELETE /entities): delete every entity ``query`` matches or, with
        ``drop``, only those attributes of them, or with ``keep``, all other attributes. One
        transaction; history and subscriptions see each change as for any delete. Returns the
        number of entities changed."""
        if keep is not None and drop is not None:
            raise BadRequestData("keep and drop exclude each other")
        if query.geo is not None:
            raise BadRequestData("purge does not take a geo-query")
        flt = to_filter(query, self.db.engine.dialect.name)
        changes: list[Change] = []
        with self.transaction() as tx:
            conn, now, iso = tx.conn, tx.now, tx.now_iso
            matched = repository.matching_for_update(conn, tenant, flt)
            if keep is None and drop is None:
                repository.delete_entities(conn, [eid for eid, _ in matched])
                changes = [Change(tenant, doc["id"], doc, None) for _, doc in matched]
            else:
                updates: list[tuple[int, Doc, Doc]] = []
                for eid, old in matched:
                    new = documents.without_attrs(old, keep=keep, drop=drop)
                    if new is None:
                        continue
                    new["modifiedAt"] = iso
                    updates.append((eid, old, new))
                    removed = [k for k in old["attrs"] if k not in new["attrs"]]
                    changes.append(Change(tenant, old["id"], old, new, removed=removed))
                repository.update_entities(conn, tenant, updates, now)
            tx.record(changes)
        return len(changes)

    def delete(self, tenant: str, entity_id: str) -> None:
        result = self.delete_many(tenant, [entity_id])
        if result.errors:
            raise result.errors[0][1]

    def replace(self, tenant: str, doc: Doc) -> None:
        self._modify(
            tenant, doc["id"], lambda old, iso: (documents.replace_doc(old, doc, iso), doc["attrs"])
        )

    def merge(self, tenant: str, doc: Doc, *, observed_at: str | None = None) -> None:
        """Merge-patch an entity (PATCH /entities/{id}); urn:ngsi-ld:null deletes. An
        ``observed_at`` (the ``observedAt`` parameter) becomes the observedAt of each merged
        instance that had one before and is given none (clause 5.6.17)."""

        def apply(old: Doc, iso: str) -> tuple[Doc, dict[str, list[Instance]]]:
            new = documents.clone(old)
            written: dict[str, list[Instance]] = {}
            if doc.get("type"):
                new["type"] = list(dict.fromkeys(old["type"] + doc["type"]))
            if "scope" in doc:
                new["scope"] = doc["scope"]
            for iri, instances in doc["attrs"].items():
                for inst in instances:
                    target = new["attrs"].get(iri, [])
                    ds = inst.get("datasetId")
                    if is_null(inst):
                        documents.drop_instance(new["attrs"], iri, ds)
                        continue
                    current = next((i for i in target if i.get("datasetId") == ds), None)
                    merged = (
                        documents.merge_instance(current, inst, iri)
                        if current
                        else without_nulls(inst)
                    )
                    if (
                        observed_at
                        and current
                        and "observedAt" in current
                        and "observedAt" not in inst
                    ):
                        merged["observedAt"] = observed_at
                    documents.stamp([merged], iso, [current] if current else None)
                    new["attrs"].setdefault(iri, [])
                    documents.put_instances(new["attrs"][iri], [merged])
                    written.setdefault(iri, []).append(merged)
            new["modifiedAt"] = iso
            return new, written

        self._modify(tenant, doc["id"], apply)

    def _modify(
        self,
        tenant: str,
        entity_id: str,
        apply: Callable[[Doc, str], tuple[Doc, dict[str, list[Instance]]]],
    ) -> None:
        """Change one entity: ``apply(old, now_iso)`` returns the new document and the
        instances it wrote (``old`` itself when nothing changes). Writes arriving together
        share one transaction (hub/group_commit.py)."""
        self._group.submit(_Modification(tenant, entity_id, apply))

    def _modify_batch(self, mods: Sequence[_Modification]) -> list[BaseException | None]:
        try:
            return self._modify_together(mods)
        except (OperationalError, DBAPIError) as exc:
            if len(mods) == 1:
                return [exc]
            # One write broke the transaction (or two processes' batches deadlocked on
            # PostgreSQL): each write again on its own, so only the culprit fails.
            return [self._modify_batch([m])[0] for m in mods]

    def _modify_together(self, mods: Sequence[_Modification]) -> list[BaseException | None]:
        outcomes: list[BaseException | None] = [None] * len(mods)
        with self.transaction() as tx:
            # (tenant, id) -> [eid, document as loaded, document now]: the batch's entities
            # are loaded (and locked, in id order) with one statement per tenant; an entity
            # changed twice in one batch is changed in turn and written once.
            docs: dict[tuple[str, str], list[Any]] = {}
            by_tenant_ids: dict[str, set[str]] = {}
            for mod in mods:
                by_tenant_ids.setdefault(mod.tenant, set()).add(mod.entity_id)
            for tenant, ids in by_tenant_ids.items():
                for entity_id, (eid, loaded) in repository.load_many(
                    tx.conn, tenant, sorted(ids), tx.history_keys
                ).items():
                    docs[(tenant, entity_id)] = [eid, loaded, loaded]
            for i, mod in enumerate(mods):
                key = (mod.tenant, mod.entity_id)
                try:
                    if key not in docs:
                        raise ResourceNotFound(
                            f"entity {mod.entity_id} does not exist" + _tenant_note(mod.tenant)
                        )
                    old = docs[key][2]
                    new, written = mod.apply(old, tx.now_iso)
                    if new is not old:  # (only what this write brings can be new)
                        refuse_unstorable(
                            [new["type"], new.get("scope"), written], f"entity {mod.entity_id}"
                        )
                except Exception as exc:  # this write alone: refused, or a bug in it
                    outcomes[i] = exc
                    continue
                if new is old:
                    continue
                docs[key][2] = new
                removed = [k for k in old["attrs"] if k not in new["attrs"]]
                tx.record(
                    [Change(mod.tenant, mod.entity_id, old, new, written=written, removed=removed)]
                )
            by_tenant: dict[str, list[tuple[int, Doc, Doc]]] = {}
            for (tenant, _), (eid, loaded, now_doc) in docs.items():
                if now_doc is not loaded:
                    by_tenant.setdefault(tenant, []).append((eid, loaded, now_doc))
            for tenant, updates in by_tenant.items():
                repository.update_entities(tx.conn, tenant, updates, tx.now)
        return outcomes

    # -- attributes --------------------------------------------------------------------------
    def append_attrs(
        self,
        tenant: str,
        entity_id: str,
        attrs: dict[str, list[Instance]],
        *,
        no_overwrite: bool,
        types: list[str] | None = None,
        scope: list[str] | None = None,
    ) -> UpdateResult:
        """POST /entities/{id}/attrs. A ``scope`` replaces the entity's scopes, or with
        ``no_overwrite`` is added to them."""
        result = UpdateResult()

        def apply(old: Doc, iso: str) -> tuple[Doc, dict[str, list[Instance]]]:
            result.updated.clear()  # (applied again if its group commit is retried)
            result.not_updated.clear()
            new = documents.clone(old)
            if types:
                new["type"] = list(dict.fromkeys(old["type"] + types))
            if scope is not None:
                kept = old.get("scope", []) if no_overwrite else []
                new["scope"] = list(dict.fromkeys(kept + scope))
            written: dict[str, list[Instance]] = {}
            for iri, instances in attrs.items():
                current = new["attrs"].get(iri)
                if no_overwrite and current is not None:
                    keep = [
                        i
                        for i in instances
                        if all(c.get("datasetId") != i.get("datasetId") for c in current)
                    ]
                    if not keep:
                        result.not_updated.append((iri, "attribute exists and noOverwrite is set"))
                        continue
                    instances = keep
                instances = [
                    i if is_null(i) else without_nulls(i) for i in documents.clone(instances)
                ]
                kept = [i for i in instances if not is_null(i)]
                documents.stamp(kept, iso, current)
                new["attrs"].setdefault(iri, [])
                documents.put_instances(new["attrs"][iri], instances)
                if not new["attrs"][iri]:
                    del new["attrs"][iri]
                if kept:
                    written[iri] = kept
                result.updated.append(iri)
            new["modifiedAt"] = iso
            return new, written

        self._modify(tenant, entity_id, apply)
        return result

    def update_attrs(
        self, tenant: str, entity_id: str, attrs: dict[str, list[Instance]]
    ) -> UpdateResult:
        """PATCH /entities/{id}/attrs: replace existing attributes; others are not updated.
        An instance given as the NGSI-LD Null is deleted."""
        result = UpdateResult()

        def apply(old: Doc, iso: str) -> tuple[Doc, dict[str, list[Instance]]]:
            result.updated.clear()  # (applied again if its group commit is retried)
            result.not_updated.clear()
            new = documents.clone(old)
            written: dict[str, list[Instance]] = {}
            for iri, instances in attrs.items():
                current = new["attrs"].get(iri)
                if current is None:
                    result.not_updated.append((iri, "attribute does not exist"))
                    continue
                missing = [
                    i
                    for i in instances
                    if all(c.get("datasetId") != i.get("datasetId") for c in current)
                ]
                if missing:
                    result.not_updated.append((iri, "no instance with that datasetId"))
                    continue
                instances = [
                    i if is_null(i) else without_nulls(i) for i in documents.clone(instances)
                ]
                kept = [i for i in instances if not is_null(i)]
                documents.stamp(kept, iso, current)
                documents.put_instances(current, instances)
                if not current:
                    del new["attrs"][iri]
                if kept:
                    written[iri] = kept
                result.updated.append(iri)
            if not result.updated:
                return old, {}
            new["modifiedAt"] = iso
            return new, written

        self._modify(tenant, entity_id, apply)
        return result

    def patch_attr(self, tenant: str, entity_id: str, iri: str, patch: Instance, name: str) -> None:
        """PATCH /entities/{id}/attrs/{attr}: merge the fragment into the existing instance."""
        self._modify(tenant, entity_id, documents.patching(entity_id, iri, patch, name))

    async def patch_attr_async(
        self, tenant: str, entity_id: str, iri: str, patch: Instance, name: str
    ) -> None:
        """``patch_attr`` from the event loop: partial updates arriving together are written
        in one transaction, handed to the thread pool once (hub/group_commit.py)."""
        await self._agroup.submit(
            _Modification(tenant, entity_id, documents.patching(entity_id, iri, patch, name))
        )

    def replace_attr(
        self, tenant: str, entity_id: str, iri: str, instances: list[Instance], name: str
    ) -> None:
        """PUT /entities/{id}/attrs/{attr}: each instance given replaces the existing instance
        with its datasetId (the default one without); the other instances stay."""

        def apply(old: Doc, iso: str) -> tuple[Doc, dict[str, list[Instance]]]:
            current = old["attrs"].get(iri)
            if current is None:
                raise ResourceNotFound(f"entity {entity_id} has no attribute {name}")
            for inst in instances:
                ds = inst.get("datasetId")
                if all(i.get("datasetId") != ds for i in current):
                    where = f"with datasetId {ds}" if ds else "default instance (no datasetId)"
                    raise ResourceNotFound(f"attribute {name} of {entity_id} has no {where}")
            new = documents.clone(old)
            fresh = [i if is_null(i) else without_nulls(i) for i in documents.clone(instances)]
            kept = [i for i in fresh if not is_null(i)]
            documents.stamp(kept, iso, current)
            documents.put_instances(new["attrs"][iri], fresh)
            if not new["attrs"][iri]:
                del new["attrs"][iri]
            new["modifiedAt"] = iso
            return new, ({iri: kept} if kept else {})

        self._modify(tenant, entity_id, apply)

    def delete_attr(
        self,
        tenant: str,
        entity_id: str,
        iri: str,
        name: str,
        *,
        dataset_id: str | None = None,
        delete_all: bool = False,
    ) -> None:
        def apply(old: Doc, iso: str) -> tuple[Doc, dict[str, list[Instance]]]:
            current = old["attrs"].get(iri)
            if current is None:
                raise ResourceNotFound(f"entity {entity_id} has no attribute {name}")
            new = documents.clone(old)
            if delete_all:
                del new["attrs"][iri]
            else:
                kept = [i for i in current if i.get("datasetId") != dataset_id]
                if len(kept) == len(current):
                    label = f"datasetId {dataset_id}" if dataset_id else "a default instance"
                    raise ResourceNotFound(f"attribute {name} of {entity_id} has no {label}")
                if kept:
                    new["attrs"][iri] = kept
                else:
                    del new["attrs"][iri]
            new["modifiedAt"] = iso
            return new, {}

        self._modify(tenant, entity_id, apply)

    def delete_scope(self, tenant: str, entity_id: str) -> None:
        """DELETE /entities/{id}/attrs/scope: the entity keeps no scope."""

        def apply(old: Doc, iso: str) -> tuple[Doc, dict[str, list[Instance]]]:
            if "scope" not in old:
                raise ResourceNotFound(f"entity {entity_id} has no scope")
            new = documents.clone(old)
            del new["scope"]
            new["modifiedAt"] = iso
            return new, {}

        self._modify(tenant, entity_id, apply)

    # -- discovery ---------------------------------------------------------------------------
    def types(self, tenant: str) -> list[tuple[str, int]]:
        with self.db.read() as conn:
            return repository.list_types(conn, tenant)

    def type_details(self, tenant: str, etype: str) -> tuple[int, list[str]] | None:
        with self.db.read() as conn:
            counts = dict(repository.list_types(conn, tenant))
            if etype not in counts:
                return None
            return counts[etype], repository.attrs_of_type(conn, tenant, etype)

    def attributes(self, tenant: str) -> list[tuple[str, int]]:
        with self.db.read() as conn:
            return repository.list_attrs(conn, tenant)

    def attribute_details(self, tenant: str, attr: str) -> tuple[int, list[str], list[Doc]] | None:
        with self.db.read() as conn:
            counts = dict(repository.list_attrs(conn, tenant))
            if attr not in counts:
                return None
            return (
                counts[attr],
                repository.types_with_attr(conn, tenant, attr),
                repository.docs_with_attr(conn, tenant, attr, limit=200),
            )


def _unstorable(doc: Doc) -> BadRequestData | None:
    """The refusal of an entity holding a string no backend can store (hub/text.py): checked
    here per entity, so that one bad entity of a batch fails alone, whoever wrote it (the HTTP
    API refuses it earlier; connectors and scripts reach only this)."""
    try:
        refuse_unstorable(doc, f"entity {doc['id']}")
    except BadRequestData as exc:
        return exc
    return None


def _tenant_note(tenant: str) -> str:
    return f" in tenant {tenant!r}" if tenant else ""
