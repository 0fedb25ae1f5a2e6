"""``smartcity connect NAME --from FILE|URL``: run a Hong Kong open-data connector once or on
a schedule, into the configured database (in process) or into a running hub (``--hub``).

On a schedule into a PostgreSQL database, the runs are a cluster job (storage/leases.py): the
same command started on every node (a systemd unit per host, say) polls the feed once per
period between them, and another node's process takes over when one dies."""

from __future__ import annotations

import hashlib
import logging
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from smartcity.live.connectors import REGISTRY, Connector, ConnectorError, ConnectorResult, get
from smartcity.live.connectors.sink import (
    HubSink,
    LocalSink,
    Sink,
    SinkError,
    WriteSummary,
    deliver,
)

console = Console()
err = Console(stderr=True)
MAX_BYTES = 32 * 1024 * 1024
_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


class FetchError(Exception):
    pass


def parse_every(text: str) -> float:
    """'60s', '5m', '1h' or a number of seconds."""
    match = _EVERY.match(text)
    if not match or float(match.group(1)) <= 0:
        raise typer.BadParameter(f"{text!r}: use a duration such as 60s, 5m or 1h")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]


def fetch(source: str, *, timeout: float = 20.0, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of a file or an http(s) URL, refusing anything larger than ``max_bytes``."""
    if source.startswith(("http://", "https://")):
        try:
            with httpx.stream("GET", source, timeout=timeout, follow_redirects=True) as response:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(f"{source} is larger than {max_bytes} bytes")
                    chunks.append(chunk)
                body = b"".join(chunks)
        except httpx.HTTPError as exc:
            raise FetchError(f"cannot fetch {source} ({type(exc).__name__}: {exc})") from None
        if response.status_code >= 400:
            excerpt = body[:200].decode(errors="replace")
            raise FetchError(f"{source} answered HTTP {response.status_code}: {excerpt}")
        return body
    path = Path(source)
    if not path.is_file():
        raise FetchError(f"{source}: no such file (give a file path or an http(s) URL)")
    if path.stat().st_size > max_bytes:
        raise FetchError(f"{source} is larger than {max_bytes} bytes")
    return path.read_bytes()


def collect(connector: Connector, sources: list[str]) -> ConnectorResult:
    """Parse every input before writing anything: one unusable input stops the whole run."""
    merged = connector.result()
    for source in sources:
        raw = fetch(source)
        try:
            merged.merge(connector.parse(raw, fetched_at=datetime.now(UTC), source=source))
        except ConnectorError as exc:
            raise ConnectorError(f"{source}: {exc}") from None
    return merged


def report(name: str, result: ConnectorResult, summary: WriteSummary, seconds: float) -> None:
    console.print(
        f"[bold]{name}[/]: {result.records} records read, {len(result.entities)} entities, "
        f"[green]{summary.written} written[/] ({summary.created} new) in {seconds:.1f} s"
    )
    reasons: list[tuple[str, str, int]] = []
    for kind, counter in (
        ("skipped", result.skipped),
        ("not written", summary.unchanged),
        ("error", summary.errors),
        ("warning", result.warnings),
    ):
        reasons += [(kind, reason, n) for reason, n in Counter(counter).most_common()]
    if reasons:
        table = Table("", "reason", "count")
        for kind, reason, n in reasons:
            table.add_row(kind, reason, str(n))
        console.print(table)


def _local_sink(database: str | None, tenant: str) -> LocalSink:
    from smartcity.config import Settings
    from smartcity.hub.runtime import build_hub
    from smartcity.storage import migrate
    from smartcity.storage.engine import Database

    settings = Settings.from_env(database)
    try:
        db = Database(settings.database_url)
        migrate.ensure_current(db)
    except (ValueError, migrate.SchemaOutOfDate) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    # build_hub wires the subscription matcher, so notifications are owed for these writes.
    return LocalSink(build_hub(settings, db).entities, tenant)


def connect(
    name: Annotated[str, typer.Argument(help=f"Connector: {', '.join(REGISTRY)}")],
    sources: Annotated[
        list[str],
        typer.Option(
            "--from",
            help="File or http(s) URL (repeat for connectors that combine inputs, e.g. car "
            "park basic info + vacancy)",
        ),
    ],
    database: Annotated[
        str | None,
        typer.Option(help="Database URL (default: $SMARTCITY_DATABASE_URL, else SQLite)"),
    ] = None,
    hub: Annotated[
        str | None, typer.Option(help="Write to a running hub at this URL instead")
    ] = None,
    key: Annotated[
        str | None, typer.Option(help="Write key for --hub", envvar="SMARTCITY_KEY")
    ] = None,
    every: Annotated[
        str | None, typer.Option(help="Run on a schedule, e.g. 60s, 5m (default: once)")
    ] = None,
    tenant: Annotated[str, typer.Option(help="NGSI-LD tenant")] = "",
    option: Annotated[
        list[str] | None,
        typer.Option(help="Connector option key=value (e.g. stop=26AC2D471648CA0C for kmb-eta)"),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log every skipped record")
    ] = False,
) -> None:
    """Bring a Hong Kong open-data feed into the hub as Smart Data Models entities."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING)
    options = dict(o.split("=", 1) for o in option or [] if "=" in o)
    if any("=" not in o for o in option or []):
        err.print("[red]error:[/] --option takes key=value")
        raise typer.Exit(2)
    try:
        connector = get(name, **options)
    except ConnectorError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    period = parse_every(every) if every else None
    if hub and database:
        err.print("[red]error:[/] give either --hub or --database, not both")
        raise typer.Exit(2)
    sink: Sink = HubSink(hub, key, tenant) if hub else _local_sink(database, tenant)

    def run_once() -> bool:
        """One run; False when it failed (the error is printed)."""
        started = time.monotonic()
        try:
            with console.status(f"{name}: reading {len(sources)} input(s)..."):
                result = collect(connector, sources)
            with console.status(f"{name}: writing {len(result.entities)} entities..."):
                summary = deliver(result, sink)
            report(name, result, summary, time.monotonic() - started)
        except (FetchError, ConnectorError) as exc:
            err.print(f"[red]error:[/] {exc}. Nothing was written from this run.")
            return False
        except SinkError as exc:
            err.print(f"[red]error:[/] {exc}. The run stopped; rerun it: nothing is written twice.")
            return False
        return True

    if period is None:
        if not run_once():
            raise typer.Exit(1)
        return
    if isinstance(sink, LocalSink) and sink.service.db.is_postgres:
        _every_in_cluster(sink, name, sources, options, tenant, period, run_once)
        return
    while True:
        started = time.monotonic()
        run_once()
        try:
            time.sleep(max(0.0, period - (time.monotonic() - started)))
        except KeyboardInterrupt:
            console.print("stopped")
            return


def _every_in_cluster(
    sink: LocalSink,
    name: str,
    sources: list[str],
    options: dict[str, str],
    tenant: str,
    period: float,
    run_once: Callable[[], bool],
) -> None:
    """Run as a cluster job until Ctrl-C or SIGTERM: of the processes running this same
    command (same connector, inputs, options and tenant) on one database, one polls."""
    from smartcity.config import ClusterSettings
    from smartcity.storage.leases import Scheduler

    what = repr((name, sorted(sources), sorted(options.items()), tenant)).encode()
    job = f"connector.{name}.{hashlib.sha256(what).hexdigest()[:12]}"
    scheduler = Scheduler(sink.service.db, lease_s=ClusterSettings.from_env().job_lease)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    scheduler.every(job, period, run_once)
    console.print(
        f"{name}: every {period:g} s, run by one of the processes polling it on this database "
        f"(job {job}); Ctrl-C stops"
    )
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    scheduler.close()  # gives the job to another process at once
    console.print("stopped")
