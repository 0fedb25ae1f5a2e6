"""One transaction for a batch of readings: ledger, latest state, history, hooks.

Why not ``EntityService.upsert_many``: it keeps one document per entity id, so two readings of
one sensor in a batch would leave one history instance, and it would let an old reading
overwrite a newer value. Here, per batch:

1. the ledger (``live_readings``) takes every (device, t) with INSERT ... ON CONFLICT DO
   NOTHING RETURNING: what comes back is new, the rest are redeliveries (duplicates);
2. the entities fed are loaded in one statement (locked on PostgreSQL, in id order);
3. every new reading becomes a history instance; the latest value of an attribute only moves
   forward in time (an older reading goes to the history only: "stale");
4. each entity is written once (one batched UPDATE / INSERT); the hub's transaction
   (``EntityService.transaction``) then writes the history with its rollup, runs the change
   feed's hooks (subscriptions) on the latest-state changes, commits, and tells its listeners.

Everything commits together, so a reading is in both the ledger and the hub, or in neither.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, delete, select

from smartcity.hub import repository
from smartcity.hub.changes import Change
from smartcity.hub.service import Transaction
from smartcity.hub.timeutil import iso_from_us, parse_datetime_us
from smartcity.live.devices.service import DeviceRegistry
from smartcity.live.ingest.readings import Reading
from smartcity.live.tables import live_readings as L
from smartcity.storage.engine import Database

WRITTEN, STALE, DUPLICATE = "written", "stale", "duplicate"


# The ledger insert takes the whole batch as one parameter and returns the pairs that were new:
# one statement per batch, and no per-row parameter processing in Python (SQLAlchemy's
# multi-row INSERT ... RETURNING built and processed two parameters per reading: 10 % of the
# writer's time).
_LEDGER_SQLITE = (
    "INSERT INTO live_readings (did, t) SELECT value ->> 0, value ->> 1 FROM json_each(?) "
    "WHERE true ON CONFLICT DO NOTHING RETURNING did, t"  # WHERE: SQLite's upsert syntax
)
_LEDGER_POSTGRES = (
    "INSERT INTO live_readings (did, t) SELECT * FROM unnest(%s::bigint[], %s::bigint[]) "
    "ON CONFLICT DO NOTHING RETURNING did, t"
)


def _new_in_ledger(conn: Connection, keys: Collection[tuple[int, int]]) -> set[tuple[int, int]]:
    """Add (device, time) pairs to the ledger; returns those that were not there yet."""
    if conn.dialect.name == "postgresql":
        # Sorted: two nodes inserting the same readings (a redelivery) take the ledger's
        # index entries in one order and wait for each other rather than deadlock.
        ordered = sorted(keys)
        dids, times = [d for d, _ in ordered], [t for _, t in ordered]
        rows = conn.exec_driver_sql(_LEDGER_POSTGRES, (dids, times))
    else:
        rows = conn.exec_driver_sql(_LEDGER_SQLITE, (orjson.dumps(list(keys)).decode(),))
    return {(int(row[0]), int(row[1])) for row in rows}  # (Row.t is a method)


def prune_ledger(db: Database, before: int, *, devices_per_transaction: int = 200) -> int:
    """Forget ledger rows of readings taken before ``before`` (µs); returns how many.

    The ledger only has to outlive redeliveries (an MQTT session keeps unacknowledged
    messages for a day) and devices replaying what they buffered while offline; kept for
    ever it would grow by every reading (1.7 billion rows a day at 20,000 readings/s). One
    range delete per device on the (did, t) key, a few hundred devices per transaction so that
    ingestion is never held up for long."""
    with db.read() as conn:
        dids = [int(d) for d in conn.execute(select(L.c.did).distinct()).scalars()]
    removed = 0
    for start in range(0, len(dids), devices_per_transaction):
        with db.write() as conn:
            for did in dids[start : start + devices_per_transaction]:
                result = conn.execute(delete(L).where(L.c.did == did, L.c.t < before))
                removed += max(result.rowcount or 0, 0)
    return removed


def _instance_time(inst: dict[str, Any]) -> int:
    """When the current value was observed (else when it was set): what a reading must beat."""
    stamp = inst.get("observedAt") or inst.get("modifiedAt")
    return parse_datetime_us(stamp, field="observedAt") if stamp else -1


def write_readings(tx: Transaction, readings: Sequence[Reading]) -> list[str]:
    """Write a batch in the hub's open transaction (``EntityService.transaction``); returns
    each reading's status. The changes go to ``tx``: the latest state's for the change feed,
    every new reading's for the history."""
    conn, now = tx.conn, tx.now
    statuses = [DUPLICATE] * len(readings)
    keys: dict[tuple[int, int], int] = {}
    for i, r in enumerate(readings):
        keys.setdefault((r.device.did, r.t), i)  # the same reading twice in one batch
    fresh = _new_in_ledger(conn, keys) if keys else set()
    groups: dict[tuple[str, str], list[int]] = {}
    for key in fresh:
        i = keys[key]
        r = readings[i]
        groups.setdefault((r.device.tenant, r.device.entity_id), []).append(i)
    now_iso = iso_from_us(now)
    latest_changes: list[Change] = []
    history_changes: list[Change] = []
    seen: dict[int, int] = {}
    by_tenant: dict[str, list[str]] = {}
    for tenant, entity_id in groups:
        by_tenant.setdefault(tenant, []).append(entity_id)
    for tenant, ids in by_tenant.items():
        ids.sort()  # lock rows in one order in every writer (no deadlocks on PostgreSQL)
        loaded = repository.load_many(conn, tenant, ids)
        inserts: list[dict[str, Any]] = []
        updates: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
        for entity_id in ids:
            members = sorted(groups[(tenant, entity_id)], key=lambda i: readings[i].t)
            found = loaded.get(entity_id)
            old = found[1] if found else None
            current = old["attrs"] if old else {}
            # iri -> [time of the latest value, its createdAt, the instance that replaces it]
            state: dict[str, list[Any]] = {}
            written: dict[str, list[dict[str, Any]]] = {}
            for i in members:
                r = readings[i]
                seen[r.device.did] = now
                moved = False
                for iri, inst in r.values.items():
                    st = state.get(iri)
                    if st is None:
                        default = next(
                            (x for x in current.get(iri, ()) if "datasetId" not in x), None
                        )
                        if default is None:
                            st = state[iri] = [-1, now_iso, None]
                        else:
                            created = default.get("createdAt", now_iso)
                            st = state[iri] = [_instance_time(default), created, None]
                    stamped = {**inst, "createdAt": st[1], "modifiedAt": now_iso}
                    written.setdefault(iri, []).append(stamped)
                    if r.t >= st[0]:
                        st[0], st[2] = r.t, stamped
                        moved = True
                statuses[i] = WRITTEN if moved else STALE
            moves = {iri: st[2] for iri, st in state.items() if st[2] is not None}
            if old is None:
                doc = {
                    "id": entity_id,
                    "type": [readings[members[0]].device.type_iri],
                    "createdAt": now_iso,
                    "modifiedAt": now_iso,
                    "attrs": {iri: [inst] for iri, inst in moves.items()},
                }
                inserts.append(doc)
                change = Change(
                    tenant, entity_id, None, doc, written={k: [v] for k, v in moves.items()}
                )
                latest_changes.append(change)
                history_changes.append(Change(tenant, entity_id, None, doc, written=written))
                continue
            assert found is not None
            new = old
            if moves:
                # A new document sharing what did not change with ``old`` (a full deep copy
                # was 2 % of the writer): attrs is a new dict, each changed attribute a new
                # list; nothing writes into either document after this.
                new = {**old, "attrs": {**old["attrs"]}}
                for iri, inst in moves.items():
                    instances = new["attrs"][iri] = list(old["attrs"].get(iri, ()))
                    for n, x in enumerate(instances):
                        if "datasetId" not in x:
                            instances[n] = inst
                            break
                    else:
                        instances.insert(0, inst)
                new["modifiedAt"] = now_iso
                updates.append((found[0], old, new))
                latest_changes.append(
                    Change(tenant, entity_id, old, new, written={k: [v] for k, v in moves.items()})
                )
            history_changes.append(Change(tenant, entity_id, old, new, written=written))
        repository.insert_entities(conn, tenant, inserts, now)
        repository.update_entities(conn, tenant, updates, now)
    tx.record(latest_changes, history=history_changes)
    DeviceRegistry.mark_seen(conn, seen)
    return statuses
