"""Fixtures shared by every test: one database per backend, emptied between tests.

Every test that takes ``db`` (or ``client``) runs once on SQLite and, when
``SMARTCITY_TEST_POSTGRES_URL`` is set, once more on PostgreSQL: one suite, two backends.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from smartcity.app import create_app
from smartcity.config import Settings
from smartcity.hub.query.qsql import register_sqlite_functions
from smartcity.live.ingest.runtime import IngestConfig
from smartcity.storage import migrate, schema
from smartcity.storage.engine import Database, normalise_url

PG_URL = os.environ.get("SMARTCITY_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
SHARED = Path(__file__).resolve().parents[1].parent / "shared"

# Feature modules declare their tables on the shared metadata; import them so that the
# per-test cleanup below empties their tables too.
for _module in (
    "smartcity.portal.tables",
    "smartcity.portal.feedback.tables",
    "smartcity.live.tables",
    "smartcity.opendata.catalogue.tables",
    "smartcity.opendata.search.tables",
    "smartcity.opendata.archive.tables",
):
    with contextlib.suppress(ModuleNotFoundError):
        importlib.import_module(_module)


def _pg_database(name: str) -> str:
    assert PG_URL
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    base = PG_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def _drop_pg_database(name: str) -> None:
    assert PG_URL
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "smartcity.db"
        url = f"sqlite:///{path}"
        db = Database(url)
        migrate.upgrade(db)
        db.dispose()
        yield url
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"smartcity_test_{worker}_{uuid.uuid4().hex[:6]}"
    url = _pg_database(name)
    db = Database(url)
    with db.write() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
    migrate.upgrade(db)
    db.dispose()
    yield url
    _drop_pg_database(name)


@pytest.fixture(scope="module", params=BACKENDS)
def bare_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """An empty database holding the current tables (created from the metadata, without
    migrations), shared by a module: for tests of the SQL compilers."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path_factory.mktemp('bare') / 'bare.db'}")
        db.prepare_connection(register_sqlite_functions)  # as EntityService does
        schema.metadata.create_all(db.engine)
        yield db
        db.dispose()
        return
    name = f"smartcity_bare_{uuid.uuid4().hex[:10]}"
    db = Database(_pg_database(name))
    try:
        schema.metadata.create_all(db.engine)
        yield db
    finally:
        db.dispose()
        _drop_pg_database(name)


@functools.cache
def _head() -> str | None:
    """The migrations' head revision (read from the scripts; the database is not opened)."""
    database = Database("sqlite://")
    try:
        return migrate.head_revision(database)
    finally:
        database.dispose()


def _at_head(database: Database) -> None:
    """Bring the worker's shared database back to the head revision if a test left it
    behind (a test that steps down and fails before stepping up again): that test fails
    once, rather than every later test of the worker with a missing table."""
    with database.read() as conn:
        current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if current != _head():
        migrate.upgrade(database)


def _empty(database: Database) -> None:
    with database.write() as conn:
        for table in reversed(schema.metadata.sorted_tables):  # children first
            conn.execute(table.delete())


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    _at_head(database)
    # Empty before as well as after: tests that run servers on ``database_url`` itself (module
    # fixtures with real processes) leave their data behind, and a test must start clean.
    _empty(database)
    yield database
    _at_head(database)
    _empty(database)
    database.dispose()


@pytest.fixture
def settings(db: Database) -> Settings:
    return Settings(database_url=db.url, auth_required=False)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def mqtt_config() -> IngestConfig:
    """Ingestion settings for the test broker (SMARTCITY_TEST_MQTT_URL), on a topic prefix
    and a client id of their own, so that tests running side by side never share messages."""
    url = os.environ.get("SMARTCITY_TEST_MQTT_URL")
    if not url:
        pytest.skip("SMARTCITY_TEST_MQTT_URL not set (e.g. mqtt://127.0.0.1:1883)")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    return IngestConfig(
        mqtt_url=url,
        topic_pattern=prefix + "/{tenant}/devices/{device_id}/readings",
        client_id=f"smartcity-test-{prefix}",
        silence_check_s=3600,
    )
