"""Writes the temporal evolution: one ``attr_history`` row per accepted attribute instance.

Called inside the same transaction as the change, so the history can never disagree with the
latest state. Each history entity is looked up once per transaction and its key cached.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from smartcity.hub.entity import VALUE_KEY, Instance
from smartcity.hub.temporal.repository import add_to_rollup
from smartcity.hub.timeutil import parse_datetime_us
from smartcity.storage import schema

H = schema.history_entities
AH = schema.attr_history


@dataclass
class Change:
    """One entity changed by one operation (for history, subscriptions and live listeners)."""

    tenant: str
    entity_id: str
    before: dict[str, Any] | None  # None: the entity was created
    after: dict[str, Any] | None  # None: the entity was deleted
    written: dict[str, list[Instance]] = field(default_factory=dict)  # iri -> new instances
    removed: list[str] = field(default_factory=list)  # iris of deleted attributes


def new_instance_id() -> str:
    return f"urn:ngsi-ld:attribute:instance:{uuid.uuid4()}"


def numeric(inst: Instance) -> float | None:
    value = inst.get(VALUE_KEY[inst["type"]])
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


_FIND = select(H.c.hid, H.c.types).where(
    H.c.tenant == bindparam("tenant"), H.c.entity_id == bindparam("entity_id")
)


def _hid(conn: Connection, change: Change, now: int) -> int:
    doc = change.after or change.before or {}
    if (
        change.before is not None
        and change.after is not None
        and (change.before.get("type") == change.after.get("type"))
    ):
        # The common case, an update that keeps the types: nothing to change on the row.
        row = conn.execute(_FIND, {"tenant": change.tenant, "entity_id": change.entity_id}).first()
        if row is not None:
            return int(row.hid)
    row = conn.execute(_FIND, {"tenant": change.tenant, "entity_id": change.entity_id}).first()
    if row is None:
        return int(
            conn.execute(
                insert(H)
                .values(
                    tenant=change.tenant,
                    entity_id=change.entity_id,
                    types=doc.get("type", []),
                    scope=doc.get("scope"),
                    created_at=now,
                    modified_at=now,
                )
                .returning(H.c.hid)
            ).scalar_one()
        )
    values: dict[str, Any] = {"modified_at": now}
    if change.after is None:
        values["deleted_at"] = now
    else:
        values["deleted_at"] = None
        if row.types != doc.get("type"):
            values["types"] = sorted(set(row.types) | set(doc.get("type", [])))
    conn.execute(update(H).where(H.c.hid == row.hid).values(**values))
    return int(row.hid)


def record(conn: Connection, changes: Sequence[Change], now: int) -> None:
    rows: list[dict[str, Any]] = []
    for change in changes:
        if not change.written and change.after is not None:
            continue
        hid = _hid(conn, change, now)
        for iri, instances in change.written.items():
            for inst in instances:
                observed = inst.get("observedAt")
                rows.append(
                    {
                        "hid": hid,
                        "attr": iri,
                        "dataset_id": inst.get("datasetId", ""),
                        "instance_id": new_instance_id(),
                        "observed_at": parse_datetime_us(observed, field="observedAt")
                        if observed
                        else now,
                        "created_at": now,
                        "modified_at": now,
                        "num": numeric(inst),
                        "value": inst,
                    }
                )
    if rows:
        conn.execute(insert(AH), rows)
        # The Temporal API's hourly rollup must match attr_history in every transaction.
        add_to_rollup(conn, rows)
