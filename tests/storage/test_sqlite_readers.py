"""SQLite reads through the driver run on a connection each thread keeps (storage/engine.py,
``Database.fetch_all``): it sees every commit at once and has every connection's set-up."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from smartcity.storage.engine import Database


def test_a_thread_keeps_its_reader_and_sees_every_commit(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'readers.db'}")
    try:
        with db.write() as conn:
            conn.exec_driver_sql("CREATE TABLE t (v INTEGER)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert db.fetch_one("SELECT v FROM t", ()) == (1,)
        mine = db._sqlite_reader()
        with db.write() as conn:
            conn.exec_driver_sql("UPDATE t SET v = 2")
        assert db.fetch_one("SELECT v FROM t", ()) == (2,)  # no snapshot held from before
        assert db._sqlite_reader() is mine

        seen: list[Any] = []

        def read() -> None:
            seen.extend([db._sqlite_reader(), db.fetch_one("SELECT v FROM t", ())])

        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
        assert seen[0] is not mine and seen[1] == (2,)

        # Set-up added later (the hub's q functions are) reaches the kept readers too.
        db.prepare_connection(lambda conn: conn.create_function("seven", 0, lambda: 7))
        assert db.fetch_one("SELECT seven()", ()) == (7,)
    finally:
        db.dispose()
    # Disposed: the kept connections are closed, and a read after opens a new one.
    assert db.fetch_one("SELECT v FROM t", ()) == (2,)
    db.dispose()
