"""The driver-level bulk path (storage.bulk) writes exactly what SQLAlchemy's path writes."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from sqlalchemy import bindparam, insert, select

from smartcity.hub.history import new_instance_ids
from smartcity.hub.temporal.repository import INSTANCE_COLUMNS, insert_instances
from smartcity.storage import bulk, schema
from smartcity.storage.engine import Database

H, AH, HR = schema.history_entities, schema.attr_history, schema.attr_history_hourly


def test_instance_ids_are_unique_time_ordered_uuid_urns() -> None:
    before = time.time_ns() // 1_000_000
    ids = new_instance_ids(2000)
    later = new_instance_ids(1)
    assert len(set(ids + later)) == 2001
    # Ordered as generated (they append at the right edge of the instance_id index).
    assert ids == sorted(ids)
    for iid in ids[:200] + later:
        prefix, _, text = iid.rpartition(":")
        assert prefix == "urn:ngsi-ld:attribute:instance"
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= time.time_ns() // 1_000_000  # Unix milliseconds


def test_compiled_refuses_a_column_order_that_does_not_match(bare_db: Database) -> None:
    stmt = insert(AH).values({c: bindparam(c) for c in INSTANCE_COLUMNS})
    reordered = (INSTANCE_COLUMNS[1], INSTANCE_COLUMNS[0], *INSTANCE_COLUMNS[2:])
    with pytest.raises(ValueError, match="expected"):
        bulk.compiled(stmt, bare_db.engine.dialect, reordered)
    sql = bulk.compiled(stmt, bare_db.engine.dialect, INSTANCE_COLUMNS)
    if bare_db.engine.dialect.name == "sqlite":
        assert sql.count("?") == len(INSTANCE_COLUMNS)  # one row per execution
    else:  # every row in one statement, as one JSON document
        assert sql.count("%s") == 1 and "json_to_recordset" in sql


def test_insert_returning_and_among_find_every_row(bare_db: Database) -> None:
    """Many rows in one statement come back with their keys, JSON and NULL columns intact,
    and a batch lookup finds exactly the keys asked for (on both backends)."""
    columns = ("tenant", "entity_id", "types", "scope", "created_at", "modified_at", "deleted_at")
    rows = [
        ("t", f"urn:ngsi-ld:X:{n}", bulk.json_text(["X", "Y"]), bulk.json_text(None), n, n, None)
        for n in range(1200)
    ]
    with bare_db.write() as conn:
        returned = bulk.insert_returning(conn, H, columns, rows, ("hid", "entity_id"))
        assert sorted(e for _, e in returned) == sorted(r[1] for r in rows)
        assert len({hid for hid, _ in returned}) == 1200
        wanted = [f"urn:ngsi-ld:X:{n}" for n in range(0, 1200, 3)] + ["urn:ngsi-ld:X:nope"]
        found = conn.execute(
            select(H.c.entity_id, H.c.types, H.c.deleted_at).where(
                bulk.among(H.c.entity_id, wanted, conn.dialect)
            )
        ).all()
    assert sorted(r.entity_id for r in found) == sorted(wanted[:-1])
    assert all(r.types == ["X", "Y"] and r.deleted_at is None for r in found)


def test_insert_instances_stores_values_and_keeps_the_rollup(bare_db: Database) -> None:
    hour = 3_600_000_000
    with bare_db.write() as conn:
        hid = conn.execute(
            insert(H).returning(H.c.hid),
            {
                "tenant": "bulk",
                "entity_id": "urn:x:1",
                "types": ["T"],
                "created_at": 0,
                "modified_at": 0,
            },
        ).scalar_one()
        rows = [
            (
                hid,
                "p",
                "",
                iid,
                5 * hour + k,
                1,
                1,
                float(k),
                {"type": "Property", "value": float(k), "unitCode": "CEL", "text": '香港 "q"'},
            )
            for k, iid in enumerate(new_instance_ids(3))
        ]
        rows.append(
            (
                hid,
                "p",
                "",
                new_instance_ids(1)[0],
                5 * hour + 9,
                1,
                1,
                None,
                {"type": "Property", "value": "n/a"},
            )
        )
        insert_instances(conn, rows)
        insert_instances(
            conn,
            [
                (
                    hid,
                    "p",
                    "",
                    new_instance_ids(1)[0],
                    5 * hour + 7,
                    1,
                    1,
                    -4.0,
                    {"type": "Property", "value": -4.0},
                )
            ],
        )
    with bare_db.read() as conn:
        stored = conn.execute(
            select(AH.c.instance_id, AH.c.num, AH.c.value)
            .where(AH.c.hid == hid)
            .order_by(AH.c.observed_at)
        ).all()
        rollup = conn.execute(select(HR).where(HR.c.hid == hid)).one()
    assert [r.value for r in stored][:3] == [row[8] for row in rows[:3]]  # JSON round trip
    assert stored[3].value == {"type": "Property", "value": -4.0}
    assert stored[4].num is None and stored[4].value["value"] == "n/a"
    assert all(
        re.fullmatch(r"urn:ngsi-ld:attribute:instance:[0-9a-f-]{36}", r.instance_id) for r in stored
    )
    assert (rollup.n, rollup.n_num, rollup.total, rollup.vmin, rollup.vmax) == (
        5,
        4,
        -1.0,
        -4.0,
        2.0,
    )
    assert rollup.sumsq == pytest.approx(0 + 1 + 4 + 16)
    assert (rollup.first_at, rollup.last_at, rollup.hour) == (5 * hour, 5 * hour + 9, 5 * hour)
