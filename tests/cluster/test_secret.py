"""The server secret (CSRF tokens, session cookies, rate-limit keys) of nodes with homes of
their own: on PostgreSQL the database's, seeded from the first node's file if it had one (a
one-node install that grows keeps its tokens); on SQLite (one machine) the home's file."""

from __future__ import annotations

from pathlib import Path

from smartcity.portal.feedback.secret import shared_secret
from smartcity.storage.engine import Database


def test_nodes_with_homes_of_their_own_share_one_secret(db: Database, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    (first / "secret").write_text("s" * 48 + "\n")  # the one node's, before the cluster
    a = shared_secret(db, first)
    b = shared_secret(db, second)
    assert a == "s" * 48
    if db.is_postgres:
        assert b == a
        assert not (second / "secret").exists()  # nothing of its own to keep in step
    else:
        assert b != a and (second / "secret").exists()  # SQLite: one machine, its own file
