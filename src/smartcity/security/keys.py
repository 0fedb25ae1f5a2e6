"""API keys: random bearer tokens, stored as SHA-256 digests, scoped to tenants and read/write.

Why SHA-256 and not argon2: a key is 256 random bits, so it cannot be guessed from its digest
and needs no slow hash; argon2 on every request would cap the hub at a few dozen requests per
second. (Portal passwords, which people choose, are hashed with argon2.)
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from smartcity.storage import replicas, schema
from smartcity.storage.engine import Database

K = schema.api_keys
SCOPES = ("read", "write")
CACHE_SECONDS = 5.0  # a revoked key stops working within this time in every process


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scope: str
    tenants: tuple[str, ...]
    created_at: int
    revoked_at: int | None = None

    def allows(self, tenant: str, scope: str) -> bool:
        if self.revoked_at is not None:
            return False
        if scope == "write" and self.scope != "write":
            return False
        return "*" in self.tenants or tenant in self.tenants


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _row_to_key(row: Any) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        name=row.name,
        scope=row.scope,
        tenants=tuple(row.tenants),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class KeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}

    def create(
        self, name: str, *, scope: str = "write", tenants: list[str] | None = None
    ) -> tuple[ApiKey, str]:
        """Create a key; returns it and the token, which is shown once and never stored."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
        key_id = secrets.token_hex(6)
        token = f"sc_{key_id}_{secrets.token_urlsafe(32)}"
        now = time.time_ns() // 1000
        key = ApiKey(key_id, name, scope, tuple(tenants or ["*"]), now)
        with self.db.write() as conn:
            conn.execute(
                insert(K).values(
                    key_id=key_id,
                    name=name,
                    digest=_digest(token),
                    scope=scope,
                    tenants=list(key.tenants),
                    created_at=now,
                )
            )
        return key, token

    def list(self) -> list[ApiKey]:
        with self.db.read() as conn:
            return [_row_to_key(r) for r in conn.execute(select(K).order_by(K.c.created_at))]

    def revoke(self, key_id: str) -> bool:
        with self.db.write() as conn:
            result = conn.execute(
                update(K)
                .where(K.c.key_id == key_id, K.c.revoked_at.is_(None))
                .values(revoked_at=time.time_ns() // 1000)
            )
        self._cache.clear()
        return bool(result.rowcount)

    def verify(self, token: str) -> ApiKey | None:
        digest = _digest(token)
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        # On the primary even in a request whose reads may lag (storage/replicas.py): a key
        # created a second ago must work at once, and a miss is cached like a hit.
        with replicas.primary_only(), self.db.read() as conn:
            row = conn.execute(select(K).where(K.c.digest == digest)).first()
        key = _row_to_key(row) if row is not None and row.revoked_at is None else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now, key)
        return key
