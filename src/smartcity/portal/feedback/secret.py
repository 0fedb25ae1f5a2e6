"""The server secret: keys the hashes of voter tokens and addresses, and signs CSRF tokens.

Read from ``SMARTCITY_SECRET`` (settings); else, on PostgreSQL, from the database
(``cluster_settings``), so that every node of a cluster, each with a home of its own on its own
host, signs and checks with the same one (``shared_secret``); else (SQLite, one machine) from
``$SMARTCITY_HOME/secret``, created once, mode 0600. Every process of one installation must
share it, otherwise a CSRF token minted by one node is refused by another, and a vote or a rate
limit counted by one is not recognised by another.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from smartcity.config import smartcity_home
from smartcity.storage.engine import Database
from smartcity.storage.schema import cluster_settings

SECRET_NAME = "server-secret"


def load_or_create_secret(home: Path | None = None) -> str:
    path = (home or smartcity_home()) / "secret"
    try:
        value = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        value = ""
    if value:
        return value
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write a private temporary file, then link it into place: link() fails if another process
    # got there first, so concurrent first starts all end up with the same secret.
    tmp = path.with_name(f".secret.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text(encoding="ascii").strip()


def shared_secret(db: Database, home: Path | None = None) -> str:
    """The cluster's secret on PostgreSQL, created by the first node that needs it (from its
    home's file if it has one: a one-node install that grows keeps its tokens valid);
    SQLite: the home's file (``load_or_create_secret``)."""
    if not db.is_postgres:
        return load_or_create_secret(home)
    C = cluster_settings.c
    with db.read() as conn:
        stored = conn.execute(select(C.value).where(C.name == SECRET_NAME)).scalar()
    if stored:
        return str(stored)
    path = (home or smartcity_home()) / "secret"
    try:
        seed = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        seed = ""
    with db.write() as conn:
        # Of several nodes starting at once, the first insert wins and all read it back.
        conn.execute(
            postgresql.insert(cluster_settings)
            .values(
                name=SECRET_NAME,
                value=seed or secrets.token_urlsafe(48),
                created_at=time.time_ns() // 1000,
            )
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return str(conn.execute(select(C.value).where(C.name == SECRET_NAME)).scalar_one())


class Keyed:
    """HMAC-SHA256 under the server secret, one purpose label per kind of value."""

    def __init__(self, secret: str) -> None:
        if len(secret) < 16:
            raise ValueError("the server secret must be at least 16 characters")
        self._key = secret.encode()

    def digest(self, purpose: str, value: str) -> str:
        msg = f"{purpose}\x00{value}".encode("utf-8", "surrogatepass")
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def sign(self, message: str) -> str:
        return self.digest("sign", message)
