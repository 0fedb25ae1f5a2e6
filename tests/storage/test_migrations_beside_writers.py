"""A migration runs beside the database's other writers without failing or being failed:
``smartcity db upgrade`` may run while a server still writes (its leases, an ingest), and
tests step a shared database down and back up between writes. A migration takes the writer
before it reads the schema version (storage/migrations/env.py), as ``Database.write`` does: a
migration that read first and wrote later failed at once with "database is locked" whenever
another connection committed in between (SQLite cannot move a reader's snapshot into a
write), leaving the database a revision behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic import command

from smartcity.storage import migrate
from smartcity.storage.engine import Database

# Writes a lease row, one transaction each, until its stdin closes.
WRITER = """
import sys, threading, time
from smartcity.storage.engine import Database
db = Database(sys.argv[1])
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
print("writing", flush=True)
n = 0
while not stop.is_set():
    n += 1
    with db.write() as conn:
        conn.exec_driver_sql(
            "INSERT INTO cluster_leases (name, expires_at, runs) VALUES ('job', ?, 0) "
            "ON CONFLICT (name) DO UPDATE SET expires_at = excluded.expires_at",
            (n,),
        )
print(n, flush=True)
"""


def test_stepping_down_and_up_beside_a_busy_writer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    db = Database(url)
    migrate.upgrade(db)
    head = migrate.current_revision(db)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None and writer.stdin is not None
    try:
        assert writer.stdout.readline().strip() == "writing"
        for _ in range(8):
            command.downgrade(migrate._config(db), "0029")
            migrate.upgrade(db)
            assert migrate.current_revision(db) == head
        writer.stdin.close()
        assert writer.wait(timeout=60) == 0
        assert int(writer.stdout.read()) > 0  # it wrote, and none of its writes failed
    finally:
        writer.kill()
        writer.wait()
    db.dispose()
