"""Migration 0013 on both backends: votes cast before it keep counting, and their browser
stays the first filter; it downgrades cleanly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from tests.conftest import BACKENDS, _drop_pg_database, _pg_database

from smartcity.storage import migrate
from smartcity.storage.engine import Database


@pytest.fixture(params=BACKENDS)
def fresh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path_factory.mktemp('m0013') / 'm.db'}")
        yield db
        db.dispose()
        return
    name = f"smartcity_m0013_{uuid.uuid4().hex[:8]}"
    db = Database(_pg_database(name))
    with db.write() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
    try:
        yield db
    finally:
        db.dispose()
        _drop_pg_database(name)


def test_votes_from_before_keep_counting(fresh: Database) -> None:
    migrate.upgrade(fresh, "0010")
    with fresh.write() as conn:
        conn.execute(
            text(
                "INSERT INTO feedback_comments (id, target_kind, target_id, depth, text, stance,"
                " language, status, official, vote_count, created_at, modified_at) VALUES"
                " (1, 'measure', 'mobility-01', 0, 'old', 'neutral', 'en', 'published', false,"
                " 1, 1, 1)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO feedback_votes (comment_id, voter_digest, created_at)"
                " VALUES (1, :d, 1)"
            ),
            {"d": "b" * 64},
        )
    migrate.upgrade(fresh)
    with fresh.read() as conn:
        row = conn.execute(text("SELECT voter_digest, browser_digest FROM feedback_votes")).one()
    assert row == ("b" * 64, "b" * 64)
    # That browser cannot vote again on the comment, whoever it claims to be now.
    with pytest.raises(IntegrityError), fresh.write() as conn:
        conn.execute(
            text(
                "INSERT INTO feedback_votes (comment_id, voter_digest, browser_digest, created_at)"
                " VALUES (1, :p, :b, 2)"
            ),
            {"p": "p" * 64, "b": "b" * 64},
        )
    command.downgrade(migrate._config(fresh), "0010")
    assert migrate.current_revision(fresh) == "0010"
    with fresh.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM feedback_votes")).scalar_one() == 1
