"""Schema migrations with Alembic, driven from code so the CLI needs no alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from smartcity.storage.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaOutOfDate(RuntimeError):
    pass


def _config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    cfg.attributes["database"] = db
    return cfg


def head_revision(db: Database) -> str | None:
    return ScriptDirectory.from_config(_config(db)).get_current_head()


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database, revision: str = "head") -> None:
    command.upgrade(_config(db), revision)


def ensure_current(db: Database) -> None:
    """Raise SchemaOutOfDate, naming the command to run, unless the schema is at head."""
    current, head = current_revision(db), head_revision(db)
    if current != head:
        state = "has no schema yet" if current is None else f"is at revision {current}"
        raise SchemaOutOfDate(
            f"The database {state}; this version needs {head}. "
            f"Run: smartcity db upgrade --database '{db.url}'"
        )
