"""``smartcity``: serve the platform, migrate the database, manage keys and @contexts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from smartcity import __version__
from smartcity.bench.cli import bench_app
from smartcity.cli.analytics import analytics_app, history_app
from smartcity.cli.opendata import opendata_app
from smartcity.commandline import DatabaseOpt, open_database
from smartcity.demo import demo
from smartcity.live.cli import devices_app, ingest_app
from smartcity.live.connect_cli import connect
from smartcity.live.sim_cli import simulate
from smartcity.portal.cli import blueprint_app, users_app

if TYPE_CHECKING:
    from smartcity.storage.engine import Database

app = typer.Typer(
    help="smartcity: a smart city platform around an NGSI-LD city data hub.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys for writes (and private reads).", no_args_is_help=True)
contexts_app = typer.Typer(help="JSON-LD @contexts kept by the hub.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(contexts_app, name="contexts")
app.add_typer(blueprint_app, name="blueprint")
app.add_typer(users_app, name="users")
app.command("connect")(connect)
app.command("simulate")(simulate)
app.command("demo")(demo)
app.add_typer(devices_app, name="devices")
app.add_typer(ingest_app, name="ingest")
app.add_typer(bench_app, name="bench")
app.add_typer(opendata_app, name="opendata")
app.add_typer(history_app, name="history")
app.add_typer(analytics_app, name="analytics")
console = Console()
err = Console(stderr=True)


def _database(url: str | None) -> Database:
    return open_database(url)


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    database: DatabaseOpt = None,
    no_auth: Annotated[
        bool,
        typer.Option("--no-auth", help="Let writes through without a key (local testing only)"),
    ] = False,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    fd: Annotated[
        int | None,
        typer.Option(
            help="Serve on this already-listening socket (a file descriptor handed over by "
            "systemd socket activation or a supervisor) instead of --host/--port"
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    trusted_proxies: Annotated[
        str,
        typer.Option(
            envvar="SMARTCITY_TRUSTED_PROXIES",
            help="Reverse proxies whose X-Forwarded-For/-Proto are believed: addresses or "
            "networks, comma-separated (default: none, so clients cannot choose their address)",
        ),
    ] = "",
    read_database: Annotated[
        list[str] | None,
        typer.Option(
            "--read-database",
            help="A PostgreSQL streaming replica for the reads that tolerate a short lag "
            "(queries, temporal, open data, analytics); repeat for several (default: "
            "$SMARTCITY_READ_DATABASE_URLS, comma-separated; docs/deploy.md)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the API server."""
    import os

    import uvicorn

    from smartcity.config import ReplicaSettings, SessionSettings, parse_trusted_proxies
    from smartcity.storage import migrate
    from smartcity.storage.engine import normalise_url

    if read_database:  # the workers read them from the environment, as the rest
        os.environ["SMARTCITY_READ_DATABASE_URLS"] = ",".join(read_database)
    try:
        proxies = parse_trusted_proxies(trusted_proxies)
        # Read again by each worker; checked here so a mistake is one message, not a
        # traceback per worker.
        SessionSettings.from_env()
        replica_urls = ReplicaSettings.from_env().urls
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None

    db = _database(database)
    if replica_urls and not db.is_postgres:
        err.print("[red]error:[/] read replicas (--read-database) need a PostgreSQL --database")
        raise typer.Exit(2)
    for url in replica_urls:
        if not normalise_url(url).startswith("postgresql"):
            err.print(f"[red]error:[/] a read replica must be a postgresql:// URL, not {url!r}")
            raise typer.Exit(2)
    try:
        migrate.ensure_current(db)
        db.refresh_statistics()  # once per start, before the workers plan any query
    except migrate.SchemaOutOfDate as exc:
        err.print(f"[red]cannot start:[/] {exc}")
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    os.environ["SMARTCITY_DATABASE_URL"] = db.url
    os.environ["SMARTCITY_AUTH"] = "0" if no_auth else "1"
    if no_auth:
        err.print("[bold yellow]WARNING: --no-auth: writes need no key. Local testing only.[/]")
    where = f"socket fd {fd}" if fd is not None else f"http://{host}:{port}"
    console.print(f"smartcity {__version__} on {where} ({db.url.split(':')[0]})")
    if replica_urls:
        console.print(f"reads that tolerate a short lag: {len(replica_urls)} replica(s)")
    uvicorn.run(
        "smartcity.cli.asgi:app",
        host=host,
        port=port,
        fd=fd,
        workers=workers,
        log_level=log_level,
        factory=True,
        access_log=False,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise (and reads
        # FORWARDED_ALLOW_IPS): only the proxies configured here, none by default.
        proxy_headers=bool(proxies),
        forwarded_allow_ips=list(proxies),
    )


@db_app.command("upgrade")
def db_upgrade(database: DatabaseOpt = None) -> None:
    """Create or migrate the schema to the latest version."""
    from smartcity.storage import migrate

    db = _database(database)
    before = migrate.current_revision(db)
    migrate.upgrade(db)
    after = migrate.current_revision(db)
    db.refresh_statistics()  # new tables and indexes get statistics too
    db.dispose()
    if before == after:
        console.print(f"schema already at {after}")
    else:
        console.print(f"schema upgraded {before or '(empty)'} -> {after}")


@db_app.command("current")
def db_current(database: DatabaseOpt = None) -> None:
    """Show the schema revision."""
    from smartcity.storage import migrate

    db = _database(database)
    console.print(f"current {migrate.current_revision(db)}, head {migrate.head_revision(db)}")


@db_app.command("jobs")
def db_jobs(database: DatabaseOpt = None) -> None:
    """Show the periodic jobs of the nodes on this database: which node runs each, when it
    last ran (docs/deploy.md, "Several nodes")."""
    from datetime import UTC, datetime

    from smartcity.storage.leases import lease_rows

    db = _database(database)
    rows = lease_rows(db)
    db.dispose()
    if not rows:
        console.print(
            "no periodic job has run on this database through a lease (SQLite runs them in "
            "the server process; PostgreSQL: no node has started yet)"
        )
        return
    table = Table("job", "held by", "lease", "last run", "by", "runs")
    for r in rows:
        if r.holder is None:
            lease = "free"
        elif r.expires_in_s is not None and r.expires_in_s < 0:
            lease = f"expired {-r.expires_in_s:.0f} s ago"
        else:
            lease = f"{r.expires_in_s:.0f} s left"
        last = (
            datetime.fromtimestamp(r.last_run_at / 1e6, UTC).isoformat(timespec="seconds")
            if r.last_run_at
            else "never"
        )
        table.add_row(r.name, r.holder or "-", lease, last, r.last_holder or "-", str(r.runs))
    console.print(table)


def _keys(database: str | None):  # type: ignore[no-untyped-def]
    from smartcity.security.keys import KeyStore
    from smartcity.storage import migrate

    db = _database(database)
    try:
        migrate.ensure_current(db)
    except migrate.SchemaOutOfDate as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    return KeyStore(db)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what uses the key")],
    scope: Annotated[str, typer.Option(help="read or write")] = "write",
    tenant: Annotated[
        list[str] | None,
        typer.Option(
            help="Tenant the key may use (repeat; default: all). Use '' for the default tenant."
        ),
    ] = None,
    database: DatabaseOpt = None,
) -> None:
    """Create an API key; the token is printed once."""
    if scope not in ("read", "write"):
        err.print("[red]error:[/] --scope must be read or write")
        raise typer.Exit(2)
    key, token = _keys(database).create(name, scope=scope, tenants=tenant or ["*"])
    console.print(f"key {key.key_id} ({scope}, tenants: {tenants_text(key.tenants)})", markup=False)
    console.print("token (shown once; send it as 'Authorization: Bearer <token>'):")
    print(token)


def tenants_text(tenants: Sequence[str]) -> str:
    """What a key's tenants are, in words: '*' is every tenant, '' the default one."""
    return ", ".join("all" if t == "*" else "default ('')" if t == "" else t for t in tenants)


@keys_app.command("list")
def keys_list(database: DatabaseOpt = None) -> None:
    """List API keys (never their tokens)."""
    table = Table("id", "name", "scope", "tenants", "revoked")
    for key in _keys(database).list():
        revoked = "yes" if key.revoked_at else ""
        table.add_row(key.key_id, key.name, key.scope, tenants_text(key.tenants), revoked)
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, database: DatabaseOpt = None) -> None:
    """Revoke an API key."""
    if not _keys(database).revoke(key_id):
        err.print(f"[red]error:[/] no active key {key_id}; see `smartcity keys list`")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


@contexts_app.command("add")
def contexts_add(
    url: Annotated[str, typer.Argument(help="The URL clients use for this @context")],
    file: Annotated[Path, typer.Argument(help="The context document (JSON-LD)", exists=True)],
    database: DatabaseOpt = None,
) -> None:
    """Preload an @context so the hub never fetches it (works offline)."""
    from smartcity.hub.contexts import ContextStore
    from smartcity.hub.errors import NgsiError

    db = _database(database)
    try:
        document = json.loads(file.read_text(encoding="utf-8-sig"))
        ContextStore(db).add(url, document)
    except (json.JSONDecodeError, NgsiError) as exc:
        err.print(f"[red]error:[/] {file} is not a usable @context: {exc}")
        raise typer.Exit(1) from None
    console.print(f"preloaded {url}")


@contexts_app.command("list")
def contexts_list(database: DatabaseOpt = None) -> None:
    """List stored @contexts."""
    from sqlalchemy import select

    from smartcity.storage import schema

    db = _database(database)
    table = Table("url", "kind", "bytes")
    with db.read() as conn:
        for row in conn.execute(
            select(schema.jsonld_contexts).order_by(schema.jsonld_contexts.c.url)
        ):
            table.add_row(row.url, row.kind, str(len(row.body)))
    console.print(table)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
