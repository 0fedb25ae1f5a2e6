"""A real PostgreSQL streaming replica of the test server, for the read-replica tests.

``pg_basebackup -R`` copies the running primary (``SMARTCITY_TEST_POSTGRES_URL``'s server) into
a temporary directory and writes the standby settings; a second ``postgres`` then runs on it,
on a free loopback port, streaming from the primary. PostgreSQL refuses to run as root, so as
root the server runs as the ``postgres`` user (owner of the directory, mode 0700, as it
requires). The primary must allow replication connections from 127.0.0.1 (scripts/services
adds the line to pg_hba.conf).

The replica streams through a replication slot of its own: without one the primary recycles
WAL the replica has not received yet (the test server is shared, and busy), and a replica
stopped for a moment can never resume. A slot keeps WAL on the primary until dropped, so
``destroy`` drops it, and ``create`` drops the slots of test processes that died without.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import create_engine, text

from smartcity.storage.engine import normalise_url

BIN = Path(os.environ.get("SMARTCITY_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SLOT_PREFIX = "smartcity_test_replica_"


def unavailable(primary_url: str | None) -> str | None:
    """Why no replica can be made here (a reason to skip), or None."""
    if not primary_url:
        return "needs SMARTCITY_TEST_POSTGRES_URL"
    for tool in ("pg_basebackup", "pg_ctl", "postgres"):
        if not (BIN / tool).exists():
            return f"needs PostgreSQL's {tool} in {BIN} (SMARTCITY_TEST_PG_BIN)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "needs runuser to run postgres as the postgres user"
    return None


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class StreamingReplica:
    def __init__(self, primary_url: str, port: int) -> None:
        parts = urlsplit(primary_url)
        self.primary_host = parts.hostname or "127.0.0.1"
        self.primary_port = parts.port or 5432
        self.user = parts.username or "postgres"
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="smartcity-replica-"))
        self.data = self.root / "data"
        self.running = False
        self.primary_url = primary_url
        self.slot = f"{SLOT_PREFIX}{os.getpid()}_{port}"

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _primary(self, statement: str) -> None:
        engine = create_engine(normalise_url(self.primary_url), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(statement))
        finally:
            engine.dispose()

    def _drop_abandoned_slots(self) -> None:
        """Slots of earlier test processes that are gone (killed before ``destroy``)."""
        engine = create_engine(normalise_url(self.primary_url), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                names = conn.execute(
                    text(
                        "SELECT slot_name FROM pg_replication_slots "
                        "WHERE NOT active AND slot_name LIKE :prefix"
                    ),
                    {"prefix": SLOT_PREFIX + "%"},
                ).scalars()
                for name in list(names):
                    pid = name[len(SLOT_PREFIX) :].split("_")[0]
                    if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                        conn.execute(text("SELECT pg_drop_replication_slot(:n)"), {"n": name})
        finally:
            engine.dispose()

    def create(self) -> None:
        self._drop_abandoned_slots()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)
        self._run(
            BIN / "pg_basebackup",
            "-h",
            self.primary_host,
            "-p",
            str(self.primary_port),
            "-U",
            self.user,
            "-D",
            str(self.data),
            "-R",  # standby.signal + primary_conninfo: it streams from the primary
            "-C",  # ... through a slot of its own (see above)
            "-S",
            self.slot,
            "-X",
            "stream",
            "-c",
            "fast",
        )
        # Debian keeps postgresql.conf and pg_hba.conf outside the data directory, so the copy
        # has none: the replica's own, on its own port and socket directory.
        (self.data / "postgresql.conf").write_text(
            f"port = {self.port}\n"
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.root}'\n"
            "hot_standby = on\n"
            "shared_buffers = 16MB\n"
            "fsync = off\n"
        )
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        )
        (self.data / "pg_ident.conf").write_text("")
        if os.geteuid() == 0:
            for name in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf"):
                shutil.chown(self.data / name, "postgres", "postgres")
        self.start()

    def start(self) -> None:
        self._run(
            BIN / "pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "60",
            "start",
        )  # fmt: skip
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        self._run(BIN / "pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-m", mode, "stop")
        self.running = False

    def sql(self, statement: str, database: str = "postgres") -> object:
        engine = create_engine(normalise_url(self.url(database)), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                return conn.execute(text(statement)).scalar()
        finally:
            engine.dispose()

    def pause_replay(self) -> None:
        self.sql("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.sql("SELECT pg_wal_replay_resume()")

    def wait_replayed(self, primary_url: str, timeout: float = 180) -> None:
        """Until the replica has replayed everything the primary had written when asked."""
        engine = create_engine(normalise_url(primary_url), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            target = conn.execute(text("SELECT pg_current_wal_lsn()::text")).scalar()
        engine.dispose()
        deadline = time.monotonic() + timeout
        while True:
            done = self.sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")
            if done:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the replica did not replay up to {target} in {timeout} s")
            time.sleep(0.05)

    def destroy(self) -> None:
        if self.running:
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")
        for _ in range(40):  # the primary's walsender lets go of the slot a moment after
            try:
                self._primary(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                    f"WHERE slot_name = '{self.slot}'"
                )
                break
            except Exception:
                time.sleep(0.25)
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, *args: object) -> None:
        done = subprocess.run(
            _as_postgres([str(a) for a in args]), capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            log = self.root / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise subprocess.CalledProcessError(
                done.returncode, args, done.stdout, done.stderr + "\n" + tail
            )
