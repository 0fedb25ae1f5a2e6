"""Runtime settings: where the data lives and the limits every endpoint enforces.

Every command resolves the database the same way: an explicit ``--database URL``, else
``SMARTCITY_DATABASE_URL``, else a SQLite file under ``$SMARTCITY_HOME`` (default ``./.smartcity``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def smartcity_home() -> Path:
    return Path(os.environ.get("SMARTCITY_HOME", ".smartcity")).expanduser()


def resolve_database_url(explicit: str | None = None) -> str:
    if explicit:
        return explicit
    env = os.environ.get("SMARTCITY_DATABASE_URL")
    if env:
        return env
    home = smartcity_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(home / 'smartcity.db').resolve()}"


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Limits:
    """Request limits; each breach is answered with a 400/413 ProblemDetails naming the limit."""

    max_body_bytes: int = 8 * 1024 * 1024
    max_json_depth: int = 32
    max_page_limit: int = 1000
    default_page_limit: int = 20
    max_q_length: int = 4096
    max_geometry_points: int = 10_000
    max_batch_entities: int = 5_000
    max_context_bytes: int = 512 * 1024
    context_fetch_timeout: float = 3.0


@dataclass
class Settings:
    database_url: str
    auth_required: bool = True
    # Tenants whose reads need a key; "*" makes every tenant private.
    private_read_tenants: frozenset[str] = frozenset()
    # SSRF protection: refuse notification endpoints / @context URLs on loopback and private
    # networks. Off by default because a city's receivers usually live on its own network.
    forbid_private_targets: bool = False
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_env(cls, database_url: str | None = None, *, auth_required: bool = True) -> Settings:
        private = os.environ.get("SMARTCITY_PRIVATE_READ_TENANTS", "")
        return cls(
            database_url=resolve_database_url(database_url),
            auth_required=auth_required,
            private_read_tenants=frozenset(t.strip() for t in private.split(",") if t.strip()),
            forbid_private_targets=_env_bool("SMARTCITY_FORBID_PRIVATE_TARGETS", False),
        )
