"""UserService on both backends: argon2 hashing and rehash, roles, login rate limiting."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from smartcity.portal import tables as t
from smartcity.portal.users.service import (
    LoginThrottled,
    UserError,
    UserExists,
    UserNotFound,
    UserService,
)
from smartcity.storage.engine import Database

# Cheap argon2 parameters: the defaults cost ~1 s per hash on the test machine.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PW = "correct horse battery"


@pytest.fixture
def users(db: Database) -> UserService:
    return UserService(db, hasher=FAST, max_failures=3, window_seconds=60)


def _hash(db: Database, username: str) -> str:
    with db.read() as conn:
        return str(
            conn.execute(
                select(t.users.c.password_hash).where(t.users.c.username == username)
            ).scalar_one()
        )


def test_create_stores_argon2id_and_authenticates(db: Database, users: UserService) -> None:
    user = users.create("Editor.TD", PW, "editor", "TD", "Chan Tai Man")
    assert (user.username, user.role, user.department, user.name) == (
        "editor.td",
        "editor",
        "TD",
        "Chan Tai Man",
    )
    stored = _hash(db, "editor.td")
    assert stored.startswith("$argon2id$") and PW not in stored
    assert users.authenticate("EDITOR.TD", PW) == user
    assert users.authenticate("editor.td", PW + "x") is None
    assert users.get(user.id) == user and users.get(user.id + 100) is None
    assert [u.username for u in users.list()] == ["editor.td"]


def test_validation(users: UserService) -> None:
    users.create("admin", PW, "admin")
    with pytest.raises(UserExists):
        users.create("ADMIN", PW, "admin")
    with pytest.raises(UserError, match="role"):
        users.create("root", PW, "superuser")
    with pytest.raises(UserError, match="department"):
        users.create("ed", PW, "editor")
    with pytest.raises(UserError, match="at least"):
        users.create("shorty", "short", "moderator")
    with pytest.raises(UserError, match="username"):
        users.create("bad name!", PW, "moderator")
    with pytest.raises(UserError, match="department"):
        users.create("ed2", PW, "editor", "not a code")
    assert users.create("mod", PW, "moderator").department is None


def test_rehash_when_parameters_change(db: Database, users: UserService) -> None:
    users.create("ada", PW, "admin")
    old = _hash(db, "ada")
    assert "t=1" in old
    stronger = UserService(db, hasher=PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    assert stronger.authenticate("ada", PW) is not None
    new = _hash(db, "ada")
    assert new != old and "t=2" in new and "m=2048" in new
    assert users.authenticate("ada", PW) is not None  # still verifies under any parameters
    # A wrong password never triggers a rehash.
    before = _hash(db, "ada")
    assert stronger.authenticate("ada", "wrong password!") is None
    assert _hash(db, "ada") == before


def test_login_rate_limit_holds_across_service_instances(db: Database, users: UserService) -> None:
    users.create("ada", PW, "admin")
    for _ in range(3):
        assert users.authenticate("ada", "wrong password!") is None
    assert users.failures("ada") == 3
    # Another process (a fresh service on the same database) sees the same count.
    other = UserService(db, hasher=FAST, max_failures=3, window_seconds=60)
    with pytest.raises(LoginThrottled, match="try again") as info:
        other.authenticate("ada", PW)  # even the right password is refused while throttled
    assert 1 <= info.value.retry_after <= 61
    # Once the failures age out of the window, logging in works and resets the count.
    with db.write() as conn:
        conn.execute(update(t.login_failures).values(at=t.login_failures.c.at - 61_000_000))
    assert other.authenticate("ada", PW) is not None
    assert users.failures("ada") == 0


def test_unknown_users_are_throttled_too(users: UserService) -> None:
    for _ in range(3):
        assert users.authenticate("nobody", PW) is None
    with pytest.raises(LoginThrottled):
        users.authenticate("NOBODY", PW)


def test_deactivate_and_set_password(users: UserService) -> None:
    user = users.create("ada", PW, "admin")
    users.set_password(user.id, "a brand new passphrase")
    assert users.authenticate("ada", PW) is None
    assert users.authenticate("ada", "a brand new passphrase") is not None
    users.deactivate(user.id)
    assert users.authenticate("ada", "a brand new passphrase") is None
    deactivated = users.get(user.id)
    assert deactivated is not None and not deactivated.active
    with pytest.raises(UserNotFound):
        users.deactivate(user.id + 100)
    with pytest.raises(UserError):
        users.set_password(user.id, "short")
