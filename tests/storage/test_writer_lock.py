"""SQLite's one writer is handed between processes by a file lock (storage/writer_lock.py): a
process inside a write holds ``<database>-writer.lock``, and a write from another process waits
on it rather than in SQLite's sleeping busy handler, for at most ``WAIT_S``."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from smartcity.storage import writer_lock
from smartcity.storage.engine import Database

# A child process that writes ``count`` rows through Database.write, one transaction each; with
# ``hold`` it instead opens one write, says so, and keeps it until its stdin closes.
CHILD = """
import sys
from smartcity.storage.engine import Database
db = Database(sys.argv[1])
if sys.argv[2] == "hold":
    with db.write() as conn:
        conn.exec_driver_sql("INSERT INTO counted (who) VALUES ('holder')")
        print("inside", flush=True)
        sys.stdin.read()
else:
    for _ in range(int(sys.argv[3])):
        with db.write() as conn:
            conn.exec_driver_sql("INSERT INTO counted (who) VALUES (?)", (sys.argv[2],))
"""


@pytest.fixture
def sqlite_file(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    db = Database(url)
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE counted (who TEXT NOT NULL)")
    db.dispose()
    return url


def _free(lock_file: str) -> bool:
    """Whether another process could take the lock now."""
    fd = os.open(lock_file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # (closing releases what was taken)
    return True


@contextmanager
def _holder(sqlite_file: str) -> Iterator[subprocess.Popen[str]]:
    """A process inside a write of ``sqlite_file`` until its stdin is closed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", CHILD, sqlite_file, "hold"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "inside"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def _let_go(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0


def test_a_process_inside_a_write_holds_the_lock_until_it_commits(
    sqlite_file: str, tmp_path: Path
) -> None:
    lock_file = str(tmp_path / "locked.db") + "-writer.lock"
    with _holder(sqlite_file) as holder:
        assert not _free(lock_file)
        # This process's write waits for the other's commit, then goes ahead.
        db = Database(sqlite_file)
        done = threading.Event()

        def write() -> None:
            with db.write() as conn:
                conn.exec_driver_sql("INSERT INTO counted (who) VALUES ('waiter')")
            done.set()

        waiter = threading.Thread(target=write)
        waiter.start()
        assert not done.wait(0.3)  # still waiting for the holder
        _let_go(holder)
        waiter.join(timeout=30)
        assert done.is_set()
        assert _free(lock_file)
        with db.read() as conn:
            rows = [r[0] for r in conn.exec_driver_sql("SELECT who FROM counted ORDER BY rowid")]
        assert rows == ["holder", "waiter"]
        db.dispose()


def test_writers_in_two_processes_lose_nothing(sqlite_file: str) -> None:
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, sqlite_file, who, "150"])
        for who in ("a", "b")
    ]
    assert [child.wait(timeout=120) for child in children] == [0, 0]
    db = Database(sqlite_file)
    with db.read() as conn:
        counted = conn.exec_driver_sql("SELECT who, count(*) FROM counted GROUP BY who")
        counts = dict(counted.all())
    assert counts == {"a": 150, "b": 150}
    db.dispose()


def test_every_database_of_one_file_shares_its_lock(sqlite_file: str, tmp_path: Path) -> None:
    path = str(tmp_path / "locked.db")
    assert writer_lock.for_path(path) is writer_lock.for_path(str(tmp_path / "." / "locked.db"))
    first, second = Database(sqlite_file), Database(sqlite_file)

    def write(db: Database, who: str) -> None:
        for _ in range(40):
            with db.write() as conn:
                conn.exec_driver_sql("INSERT INTO counted (who) VALUES (?)", (who,))

    threads = [
        threading.Thread(target=write, args=(db, f"{n}"))
        for n, db in enumerate([first, second, first, second])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with first.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM counted").scalar() == 160
    first.dispose()
    second.dispose()


def test_a_write_gives_up_on_a_process_that_never_lets_go(
    sqlite_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process stuck inside a write (a hung disk, a debugger) fails the others' writes after
    ``WAIT_S`` with SQLite's own "database is locked", as its busy handler would: it does not
    hang them."""
    monkeypatch.setattr(writer_lock, "WAIT_S", 0.5)
    db = Database(sqlite_file)
    with _holder(sqlite_file) as holder:
        with (
            pytest.raises(OperationalError, match="database is locked"),
            db.write() as conn,
        ):
            conn.exec_driver_sql("INSERT INTO counted (who) VALUES ('waiter')")
        _let_go(holder)
    with db.write() as conn:  # and writes again once it has gone
        conn.exec_driver_sql("INSERT INTO counted (who) VALUES ('after')")
    with db.read() as conn:
        rows = [r[0] for r in conn.exec_driver_sql("SELECT who FROM counted ORDER BY rowid")]
    assert rows == ["holder", "after"]
    db.dispose()
