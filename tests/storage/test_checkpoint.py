"""SQLite's log is checkpointed by the database's own thread, not inside writers' commits."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sqlalchemy import insert, select

from smartcity.storage import schema
from smartcity.storage.checkpoint import BACKSTOP_PAGES
from smartcity.storage.engine import Database

H = schema.history_entities


def test_writes_are_checkpointed_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    db = Database(f"sqlite:///{path}")
    schema.metadata.create_all(db.engine)
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == BACKSTOP_PAGES
    for k in range(50):
        with db.write() as conn:
            conn.execute(
                insert(H),
                [
                    {
                        "tenant": "t",
                        "entity_id": f"urn:x:{k}:{i}",
                        "types": ["T"],
                        "created_at": 0,
                        "modified_at": 0,
                    }
                    for i in range(100)
                ],
            )
    checkpointer = db._checkpointer
    assert checkpointer is not None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with sqlite3.connect(path) as raw:  # (busy, frames in the log, frames copied back)
            _, frames, copied = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if checkpointer.checkpoints and frames == copied:
            break
        time.sleep(0.05)
    assert checkpointer.checkpoints >= 1
    db.dispose()
    assert checkpointer._thread is not None and not checkpointer._thread.is_alive()
    # Everything written is in the database file.
    check = Database(f"sqlite:///{path}")
    with check.read() as conn:
        assert len(conn.execute(select(H.c.hid)).all()) == 5000
    check.dispose()


def test_no_checkpointer_for_postgresql_or_memory() -> None:
    assert Database("sqlite://")._checkpointer is None
    assert Database("postgresql://postgres@127.0.0.1:1/none")._checkpointer is None
