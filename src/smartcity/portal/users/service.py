"""Accounts: create, authenticate (argon2id, rehash on new parameters), rate-limit logins.

Failed logins are rows in ``portal_login_failures``, so the limit holds across worker
processes and restarts. Unknown usernames cost one argon2 verification too (against a dummy
hash) and count as failures, so neither timing nor the limit tells which usernames exist.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import unicodedata
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, delete, func, insert, select, update

from smartcity.portal import tables as t
from smartcity.portal.users.model import ROLES, User
from smartcity.storage.engine import Database

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
DEPARTMENT_RE = re.compile(r"^[A-Za-z&]{2,12}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 hashes any length; cap it so a huge body is not a DoS


class UserError(ValueError):
    """Invalid input to the user service (bad username, weak password, unknown role...)."""


class UserExists(UserError):
    pass


class UserNotFound(LookupError):
    pass


class LoginThrottled(Exception):
    """Too many failed logins for this username; ``retry_after`` is in seconds."""

    def __init__(self, username: str, retry_after: int) -> None:
        super().__init__(
            f"too many failed logins for {username!r}; try again in {retry_after} seconds"
        )
        self.username = username
        self.retry_after = retry_after


def _now_us() -> int:
    return time.time_ns() // 1000


def normalise_username(username: str) -> str:
    return unicodedata.normalize("NFKC", username).strip().casefold()


def row_to_user(row: Any) -> User:
    return User(
        id=row.id,
        username=row.username,
        role=row.role,
        department=row.department,
        display_name=row.display_name,
        active=row.active,
        created_at=dt.datetime.fromtimestamp(row.created_at / 1e6, dt.UTC),
    )


def end_all_sessions(conn: Connection, user_id: int) -> None:
    """Delete every signed-in session of the user (portal_sessions; see sessions.py)."""
    conn.execute(delete(t.sessions).where(t.sessions.c.user_id == user_id))


class UserService:
    def __init__(
        self,
        db: Database,
        *,
        hasher: PasswordHasher | None = None,
        max_failures: int = 5,
        window_seconds: int = 900,
    ) -> None:
        self.db = db
        self.hasher = hasher or PasswordHasher()  # argon2id, RFC 9106 low-memory profile
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._dummy_hash: str | None = None

    # -- accounts -----------------------------------------------------------------------------

    def create(
        self,
        username: str,
        password: str,
        role: str,
        department: str | None = None,
        display_name: str | None = None,
    ) -> User:
        name = normalise_username(username)
        if not USERNAME_RE.match(name):
            raise UserError(
                "username must be 2-64 characters: letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        if role not in ROLES:
            raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if department is not None and not DEPARTMENT_RE.match(department):
            raise UserError(f"department must be an organisation code like TD, not {department!r}")
        if role == "editor" and not department:
            raise UserError("an editor needs a department (the organisation code, e.g. TD)")
        self._check_password(password)
        now = _now_us()
        with self.db.write() as conn:
            if conn.execute(select(t.users.c.id).where(t.users.c.username == name)).first():
                raise UserExists(f"user {name!r} already exists")
            user_id = conn.execute(
                insert(t.users)
                .values(
                    username=name,
                    password_hash=self.hasher.hash(password),
                    role=role,
                    department=department,
                    display_name=(display_name or "").strip() or None,
                    active=True,
                    created_at=now,
                    updated_at=now,
                )
                .returning(t.users.c.id)
            ).scalar_one()
        user = self.get(user_id)
        assert user is not None
        return user

    def get(self, user_id: int) -> User | None:
        with self.db.read() as conn:
            row = conn.execute(select(t.users).where(t.users.c.id == user_id)).first()
        return row_to_user(row) if row is not None else None

    def get_by_username(self, username: str) -> User | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(t.users).where(t.users.c.username == normalise_username(username))
            ).first()
        return row_to_user(row) if row is not None else None

    def list(self) -> list[User]:
        with self.db.read() as conn:
            rows = conn.execute(select(t.users).order_by(t.users.c.username)).all()
        return [row_to_user(r) for r in rows]

    def set_password(self, user_id: int, password: str) -> None:
        """A new password; every session of the account ends (whoever knew the old password
        may have signed in with it). A site page that changes one's own password would start
        a new session for the user afterwards."""
        self._check_password(password)
        self._update_ending_sessions(user_id, password_hash=self.hasher.hash(password))

    def deactivate(self, user_id: int) -> None:
        """The account can no longer log in, and its sessions end now; its audit entries keep
        its name."""
        self._update_ending_sessions(user_id, active=False)

    def _update_ending_sessions(self, user_id: int, **values: Any) -> None:
        with self.db.write() as conn:
            result = conn.execute(
                update(t.users)
                .where(t.users.c.id == user_id)
                .values(updated_at=_now_us(), **values)
            )
            if not result.rowcount:
                raise UserNotFound(f"no user with id {user_id}")
            # Same transaction: the change and the end of the sessions happen together.
            end_all_sessions(conn, user_id)

    def _check_password(self, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise UserError(f"the password must have at least {MIN_PASSWORD} characters")
        if len(password) > MAX_PASSWORD:
            raise UserError(f"the password must have at most {MAX_PASSWORD} characters")

    # -- login --------------------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> User | None:
        """The active user with this password, else None. Raises LoginThrottled after
        ``max_failures`` failures for the username within ``window_seconds``."""
        name = normalise_username(username)[:255]
        self._check_throttle(name)
        with self.db.read() as conn:
            row = conn.execute(select(t.users).where(t.users.c.username == name)).first()
        if row is None or not row.active or len(password) > MAX_PASSWORD:
            # Spend the same time as a real check so response times do not reveal the user.
            self._verify(self._dummy(), password)
            self._record_failure(name)
            return None
        if not self._verify(row.password_hash, password):
            self._record_failure(name)
            return None
        with self.db.write() as conn:
            conn.execute(delete(t.login_failures).where(t.login_failures.c.username == name))
            if self.hasher.check_needs_rehash(row.password_hash):
                conn.execute(
                    update(t.users)
                    .where(t.users.c.id == row.id)
                    .values(password_hash=self.hasher.hash(password), updated_at=_now_us())
                )
        return row_to_user(row)

    def failures(self, username: str) -> int:
        """Failed logins for the username within the window."""
        since = _now_us() - self.window_seconds * 1_000_000
        name = normalise_username(username)[:255]
        with self.db.read() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(t.login_failures)
                    .where(t.login_failures.c.username == name, t.login_failures.c.at > since)
                ).scalar_one()
            )

    def _check_throttle(self, name: str) -> None:
        since = _now_us() - self.window_seconds * 1_000_000
        with self.db.read() as conn:
            count, oldest = conn.execute(
                select(func.count(), func.min(t.login_failures.c.at)).where(
                    t.login_failures.c.username == name, t.login_failures.c.at > since
                )
            ).one()
        if count >= self.max_failures:
            # Once the oldest counted failure leaves the window, one more attempt is allowed.
            retry = max(1, int((oldest - since) / 1_000_000) + 1)
            raise LoginThrottled(name, retry)

    def _record_failure(self, name: str) -> None:
        now = _now_us()
        with self.db.write() as conn:
            conn.execute(insert(t.login_failures).values(username=name, at=now))
            conn.execute(
                delete(t.login_failures).where(
                    t.login_failures.c.at <= now - self.window_seconds * 1_000_000
                )
            )

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash("not a real password, never matches")
        return self._dummy_hash
