"""PostgreSQL reads on the event loop (storage/loop_reads.py): each loop's own connection, which
a server restart or failover may kill while it idles. A read that finds it dead is answered on
a new one; a database that cannot be reached is an outage (503), not a bug (500)."""

from __future__ import annotations

import asyncio
import time

import pytest
from tests.asyncrun import run

from smartcity.storage.engine import Database, database_unavailable
from smartcity.storage.loop_reads import LOOP_READS_APPLICATION

COUNT = "SELECT count(*) FROM pg_stat_activity WHERE application_name = ? AND datname = ?"


@pytest.fixture
def pg(bare_db: Database) -> Database:
    if not bare_db.is_postgres:
        pytest.skip("the loop's own connections are PostgreSQL's")
    return bare_db


def _loop_connections(db: Database) -> int:
    row = db.fetch_one(COUNT, (LOOP_READS_APPLICATION, db.engine.url.database))
    assert row is not None
    return int(row[0])


def test_a_read_after_the_connection_was_killed_is_answered(pg: Database) -> None:
    async def reads() -> list[list[tuple[object, ...]]]:
        first = await pg.fetch_all_async("SELECT ?::int + 1", (1,))
        # What a restart or a failover does to an idle connection.
        with pg.write() as conn:
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND datname = current_database()",
                (LOOP_READS_APPLICATION,),
            )
        second = await pg.fetch_all_async("SELECT ?::int + 1", (2,))
        return [first, second]

    assert run(reads()) == [[(2,)], [(3,)]]


def test_a_loop_reads_on_one_connection_which_dispose_closes(pg: Database) -> None:
    async def many() -> None:
        answers = await asyncio.gather(
            *(pg.fetch_all_async("SELECT ?::int", (n,)) for n in range(20))
        )
        assert answers == [[(n,)] for n in range(20)]
        assert _loop_connections(pg) == 1  # twenty reads at once, one connection
        pg.dispose()
        deadline = time.monotonic() + 5  # (a backend leaves pg_stat_activity as it exits)
        while _loop_connections(pg) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _loop_connections(pg) == 0
        assert await pg.fetch_all_async("SELECT 1", ()) == [(1,)]  # and a new one after

    run(many())


def test_an_unreachable_database_is_an_outage(pg: Database) -> None:
    url = pg.engine.url.set(port=1).render_as_string(hide_password=False)
    down = Database(url, connect_timeout=2)
    try:
        with pytest.raises(Exception) as caught:
            run(down.fetch_all_async("SELECT 1", ()))
        assert database_unavailable(caught.value), repr(caught.value)
    finally:
        down.dispose()
