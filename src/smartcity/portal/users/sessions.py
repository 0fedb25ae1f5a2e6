"""Signed-in sessions as server-side records (``portal_sessions``), so they can be revoked.

The browser holds a random key (inside the site's signed session cookie); the table holds its
SHA-256, the user, and the times of sign-in and of the last request. Each request that claims
a session reads its row joined with the user (one indexed read): no row, an inactive user, or
a session older than ``lifetime`` or idle longer than ``idle`` means not signed in. Signing
out deletes the row; ``UserService.set_password`` and ``deactivate`` delete every row of the
user (``end_all``), so every copy of the cookie is worthless at once.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, delete, insert, or_, select, update

from smartcity.config import SessionSettings
from smartcity.portal import tables as t
from smartcity.portal.users.model import User
from smartcity.portal.users.service import end_all_sessions, row_to_user
from smartcity.storage.engine import Database

S = t.sessions.c
# ``seen_at`` is written at most this often: the idle time-out needs no more precision, and
# reading a page should not cost a write.
TOUCH_EVERY_US = 60 * 1_000_000
KEY_LENGTHS = (32, 128)  # token_urlsafe(32) is 43 characters


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Lookup:
    """What a session key is worth now: the user, or why not (``expired``: it timed out, so
    the site can say so; ``none``: no such session, signed out, revoked or deactivated)."""

    user: User | None
    ended: Literal["", "expired", "none"] = ""


class SessionStore:
    def __init__(
        self,
        db: Database,
        settings: SessionSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.settings = settings or SessionSettings()
        self.clock = clock

    def _now_us(self) -> int:
        return int(self.clock() * 1_000_000)

    def start(self, user_id: int) -> str:
        """A new session for ``user_id``; returns the key for the cookie (shown once)."""
        key = secrets.token_urlsafe(32)
        now = self._now_us()
        with self.db.write() as conn:
            conn.execute(
                insert(t.sessions).values(
                    key_digest=key_digest(key), user_id=user_id, created_at=now, seen_at=now
                )
            )
            # Sign-in is rare and writes anyway: drop sessions that can no longer be used.
            conn.execute(delete(t.sessions).where(self._dead(now)))
        return key

    def lookup(self, key: object) -> Lookup:
        if not isinstance(key, str) or not KEY_LENGTHS[0] <= len(key) <= KEY_LENGTHS[1]:
            return Lookup(None, "none")
        digest = key_digest(key)
        now = self._now_us()
        with self.db.read() as conn:
            row = conn.execute(
                select(t.users, S.created_at.label("s_created"), S.seen_at.label("s_seen"))
                .join(t.sessions, S.user_id == t.users.c.id)
                .where(S.key_digest == digest)
            ).first()
        if row is None:
            return Lookup(None, "none")
        s = self.settings
        expired = now - row.s_created > s.lifetime * 1_000_000 or (
            now - row.s_seen > s.idle * 1_000_000
        )
        if expired or not row.active:
            self.end(key)
            return Lookup(None, "expired" if expired and row.active else "none")
        if now - row.s_seen > TOUCH_EVERY_US:
            with self.db.write() as conn:
                conn.execute(update(t.sessions).where(S.key_digest == digest).values(seen_at=now))
        return Lookup(row_to_user(row))

    def end(self, key: object) -> None:
        """Sign out: this session's row goes, so every copy of its cookie stops working."""
        if isinstance(key, str):
            with self.db.write() as conn:
                conn.execute(delete(t.sessions).where(S.key_digest == key_digest(key)))

    def end_all(self, user_id: int) -> None:
        """Sign out everywhere (what a password change and deactivation do too)."""
        with self.db.write() as conn:
            end_all_sessions(conn, user_id)

    def count(self, user_id: int) -> int:
        with self.db.read() as conn:
            return len(conn.execute(select(S.key_digest).where(S.user_id == user_id)).all())

    def _dead(self, now: int) -> ColumnElement[bool]:
        s = self.settings
        return or_(
            S.created_at < now - s.lifetime * 1_000_000,
            S.seen_at < now - s.idle * 1_000_000,
        )
