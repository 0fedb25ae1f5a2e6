"""Writes the temporal evolution: one ``attr_history`` row per accepted attribute instance.

Called inside the same transaction as the change, so the history can never disagree with the
latest state. Each history entity is looked up once per transaction and its key cached.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from smartcity.hub.changes import Change
from smartcity.hub.entity import VALUE_KEY, Instance
from smartcity.hub.repository import HistoryKey
from smartcity.hub.temporal.repository import InstanceRow, insert_deletions, insert_instances
from smartcity.hub.timeutil import parse_datetime_us
from smartcity.storage import bulk, schema

H = schema.history_entities
AH = schema.attr_history

# Built once: for a single-entity write, building these statements cost more than running them.
_HID_COLUMNS = (H.c.hid, H.c.entity_id, H.c.types, H.c.deleted_at)
_HID_ONE = select(*_HID_COLUMNS).where(
    H.c.tenant == bindparam("tenant"), H.c.entity_id == bindparam("entity_id")
)


_RAND_BITS = 74  # UUID version 7: 48 bits of milliseconds, 4 of version, 2 of variant, 74 more


def new_instance_ids(n: int) -> list[str]:
    """``n`` instance ids: time-ordered UUID URNs (version 7, RFC 9562), the Unix milliseconds
    followed by a random start that counts up by one per id.

    Why not random (version 4) ids: the index on ``instance_id`` then takes every insert on a
    random leaf page, so a 5,000-row history batch dirtied thousands of index pages that the
    commit had to write; time-ordered ids append at the index's right edge (see
    docs/performance.md, "Device ingestion")."""
    ms = time.time_ns() // 1_000_000
    start = int.from_bytes(os.urandom(10), "big") >> (80 - _RAND_BITS)
    high = (ms << 80) | (0x7 << 76)
    ids = []
    for k in range(n):
        r = (start + k) & ((1 << _RAND_BITS) - 1)
        h = f"{high | ((r >> 62) << 64) | (0b10 << 62) | (r & ((1 << 62) - 1)):032x}"
        ids.append(
            f"urn:ngsi-ld:attribute:instance:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        )
    return ids


def numeric(inst: Instance) -> float | None:
    value = inst.get(VALUE_KEY[inst["type"]])
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


_NEW_HID_COLUMNS = (
    "tenant",
    "entity_id",
    "types",
    "scope",
    "created_at",
    "modified_at",
    "deleted_at",
)
_NEW_HID_RETURNING = ("hid", "tenant", "entity_id")


def _hids(
    conn: Connection,
    changes: Sequence[Change],
    now: int,
    known: Mapping[tuple[str, str], HistoryKey] | None = None,
) -> dict[tuple[str, str], int]:
    """The history key of every changed entity, created where missing: a few set-wise
    statements per batch rather than two statements per entity, none for the keys ``known``
    (read with the entities, in this transaction: ``repository.load_many``)."""
    wanted = {(c.tenant, c.entity_id): c for c in changes}
    found: dict[tuple[str, str], int] = {}
    by_tenant: dict[str, list[str]] = {}
    for key, change in wanted.items():
        hit = known.get(key) if known is not None else None
        if hit is not None:
            found[key] = hit.hid
            _settle(conn, hit.hid, hit.types, hit.deleted_at, change, now)
        else:
            by_tenant.setdefault(key[0], []).append(key[1])
    for tenant, ids in by_tenant.items():
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            if len(chunk) == 1:
                rows = conn.execute(_HID_ONE, {"tenant": tenant, "entity_id": chunk[0]})
            else:
                rows = conn.execute(
                    select(*_HID_COLUMNS).where(
                        H.c.tenant == tenant, bulk.among(H.c.entity_id, chunk, conn.dialect)
                    )
                )
            for row in rows:
                key = (tenant, row.entity_id)
                found[key] = int(row.hid)
                _settle(conn, int(row.hid), row.types, row.deleted_at, wanted[key], now)
    missing = [change for key, change in wanted.items() if key not in found]
    new_rows = []
    for c in missing:
        doc = c.after or c.before or {}
        deleted = now if c.after is None else None
        types, scope = bulk.json_text(doc.get("type", [])), bulk.json_text(doc.get("scope"))
        new_rows.append((c.tenant, c.entity_id, types, scope, now, now, deleted))
    returned = bulk.insert_returning(conn, H, _NEW_HID_COLUMNS, new_rows, _NEW_HID_RETURNING)
    for hid, tenant, entity_id in returned:
        found[(tenant, entity_id)] = int(hid)
    return found


def _settle(
    conn: Connection,
    hid: int,
    types: Sequence[str],
    deleted_at: int | None,
    change: Change,
    now: int,
) -> None:
    """Bring an existing history key up to ``change``: deleted, created again, new types."""
    doc = change.after or change.before or {}
    values: dict[str, Any] = {}
    if change.after is None:
        values["deleted_at"] = now
    elif deleted_at is not None:
        values["deleted_at"] = None  # created again after a delete
    new_types = set(doc.get("type", []))
    if not new_types <= set(types):
        values["types"] = sorted(set(types) | new_types)
    if values:
        values["modified_at"] = now
        conn.execute(update(H).where(H.c.hid == hid).values(**values))


def instance_rows(hid: int, attrs: dict[str, list[Instance]], now: int) -> list[InstanceRow]:
    """attr_history rows for newly accepted instances (also used by temporal writes)."""
    count = sum(len(instances) for instances in attrs.values())
    ids = iter(new_instance_ids(count))
    rows: list[InstanceRow] = []
    for iri, instances in attrs.items():
        for inst in instances:
            observed = inst.get("observedAt")
            t = parse_datetime_us(observed, field="observedAt") if observed else now
            dataset_id = inst.get("datasetId", "")
            rows.append((hid, iri, dataset_id, next(ids), t, now, now, numeric(inst), inst))
    return rows


NULL_URI = "urn:ngsi-ld:null"
# What a deleted attribute instance holds, by type (clause 4.5.7: the value is
# urn:ngsi-ld:null in the member that carries the type's value).
_DELETED_VALUE: dict[str, Any] = {
    "LanguageProperty": {"@none": NULL_URI},
    "ListProperty": [NULL_URI],
    "ListRelationship": [NULL_URI],
}


def deleted_instances(change: Change) -> dict[str, list[Instance]]:
    """The attribute instances (iri -> instances, one per datasetId) the change deleted:
    every one of a deleted entity, the attributes and datasetIds gone from the entity."""
    before = change.before["attrs"] if change.before else {}
    if not before:
        return {}
    after = change.after["attrs"] if change.after else {}
    gone: dict[str, list[Instance]] = {}
    for iri, instances in before.items():
        kept = after.get(iri)
        if kept is None:
            gone[iri] = instances
        elif len(instances) > 1 or len(kept) != len(instances):  # one datasetId deleted?
            left = {i.get("datasetId") for i in kept}
            lost = [i for i in instances if i.get("datasetId") not in left]
            if lost:
                gone[iri] = lost
    return gone


def deletion_rows(hid: int, gone: dict[str, list[Instance]], now: int) -> list[InstanceRow]:
    """attr_history rows recording deletions: per deleted instance, one valued
    urn:ngsi-ld:null of the same type and datasetId, at the time of the deletion."""
    count = sum(len(instances) for instances in gone.values())
    ids = iter(new_instance_ids(count))
    rows: list[InstanceRow] = []
    for iri, instances in gone.items():
        for old in instances:
            kind = old["type"]
            inst: Instance = {"type": kind, VALUE_KEY[kind]: _DELETED_VALUE.get(kind, NULL_URI)}
            dataset_id = old.get("datasetId", "")
            if dataset_id:
                inst["datasetId"] = dataset_id
            rows.append((hid, iri, dataset_id, next(ids), now, now, now, None, inst))
    return rows


def record(
    conn: Connection,
    changes: Sequence[Change],
    now: int,
    known: Mapping[tuple[str, str], HistoryKey] | None = None,
) -> None:
    """The history of ``changes``; ``known``: history keys already read in this transaction."""
    rows: list[InstanceRow] = []
    deletions: list[InstanceRow] = []
    gone = {id(c): deleted_instances(c) for c in changes if c.before is not None}
    relevant = [c for c in changes if c.written or c.after is None or gone.get(id(c))]
    if not relevant:
        return
    hids = _hids(conn, relevant, now, known)
    for change in relevant:
        hid = hids[(change.tenant, change.entity_id)]
        rows.extend(instance_rows(hid, change.written, now))
        deletions.extend(deletion_rows(hid, gone.get(id(change)) or {}, now))
    # The Temporal API's hourly rollup must match attr_history in every transaction:
    # insert_instances keeps both.
    insert_instances(conn, rows)
    insert_deletions(conn, deletions)
