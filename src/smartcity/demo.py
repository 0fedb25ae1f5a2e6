"""``smartcity demo``: the whole platform with a simulated city, in one process, one command.

Startup, in order: the embedded database (SQLite under $SMARTCITY_HOME) is migrated; the
blueprint is loaded (idempotent); the app is built, with MQTT ingestion when a broker answers
on 127.0.0.1:1883; the simulated city's entities and devices are registered in process; a
write API key for trying the API is created (kept in $SMARTCITY_HOME/demo-api-key); uvicorn
starts on 127.0.0.1 only; once it serves, the simulator sends readings over MQTT (or over HTTP
to the server's readings endpoint without a broker), with each device's own secret.

Authentication stays on: the simulated devices use their secrets and the demo's own key,
exactly as real clients would, and nothing listens beyond the loopback interface.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import threading
import time
import webbrowser
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console

console = Console()
err = Console(stderr=True)
HOST = "127.0.0.1"
BROKER = ("127.0.0.1", 1883)
KEY_FILE = "demo-api-key"
HISTORY_FILE = "demo-history"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _broker_reachable(timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(BROKER, timeout=timeout):
            return True
    except OSError:
        return False


def _demo_key(db: Any, home: Path) -> Path:
    """A write key for trying the API, created once and kept in a 0600 file."""
    from smartcity.security.keys import KeyStore

    path = home / KEY_FILE
    store = KeyStore(db)
    if path.exists() and store.verify(path.read_text(encoding="utf-8").strip()) is not None:
        return path
    _, token = store.create("smartcity demo", scope="write", tenants=["*"])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    return path


def _simulated_past(home: Path, fleet: list[Any], seed: int, hub: Any) -> None:
    """The last 25 hours of the simulated city in the hub's history, once per demo database:
    the dashboard's trends and "vs 1 h / 24 h ago" have a past from the first page load."""
    from smartcity.hub.timeutil import now_us
    from smartcity.live.simulator.backfill import backfill
    from smartcity.live.simulator.models import CityModel

    marker = home / HISTORY_FILE
    if marker.exists():  # later runs: their own readings are the history
        return
    with console.status("writing the simulated city's last 24 hours...") as status:
        backfill(
            fleet,
            CityModel(seed),
            hub.temporal,
            end_us=now_us(),
            progress=lambda done, total: status.update(
                f"writing the simulated city's last 24 hours: {done:,}/{total:,} devices"
            ),
        )
    marker.write_text("the simulated history was written\n", encoding="utf-8")


def _simulated_present(fleet: list[Any], seed: int, ingest: Any, hub: Any) -> None:
    """Every device's current reading before the site answers: the first page and the
    README's first query show figures, not entities waiting for their first reading."""
    from smartcity.hub.timeutil import now_us
    from smartcity.live.simulator.backfill import present
    from smartcity.live.simulator.models import CityModel

    with console.status("taking the simulated city's first readings..."):
        present(fleet, CityModel(seed), ingest.registry, hub.entities, now_us=now_us())


class _Server(uvicorn.Server):
    """uvicorn, telling the simulator to stop first on Ctrl-C / SIGTERM (and not re-raising
    the signal afterwards, so the demo exits with status 0)."""

    def __init__(self, config: uvicorn.Config, on_exit: threading.Event) -> None:
        super().__init__(config)
        self.on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.on_exit.set()
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


def demo(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 8000,
    home: Annotated[
        Path | None, typer.Option(help="Where the data lives (default: $SMARTCITY_HOME)")
    ] = None,
    devices: Annotated[int, typer.Option(min=100, max=100_000, help="Simulated devices")] = 300,
    rate: Annotated[float, typer.Option(min=0.1, help="Readings per second")] = 50.0,
    seed: Annotated[int, typer.Option(help="The simulated city's seed")] = 1,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser")] = False,
    via: Annotated[
        str,
        typer.Option(
            help="auto (MQTT if a broker answers on 127.0.0.1:1883, else HTTP), mqtt, http"
        ),
    ] = "auto",
) -> None:
    """Start everything (database, portal, API, dashboard, simulated live city) in one process."""
    from smartcity.hub.contexts import CITY_CONTEXT_PATH
    from smartcity.live.simulator.models import CityModel
    from smartcity.live.simulator.places import build_fleet
    from smartcity.live.simulator.provision import (
        LocalRegistrar,
        ProvisionError,
        State,
        prepare,
        reporting_interval,
    )

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    home = (home or Path(os.environ.get("SMARTCITY_HOME", ".smartcity"))).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["SMARTCITY_HOME"] = str(home)
    if os.environ.get("SMARTCITY_DATABASE_URL"):
        console.print(
            "[yellow]note:[/] the demo uses its own SQLite database; "
            "SMARTCITY_DATABASE_URL is ignored"
        )
    db_url = f"sqlite:///{home / 'smartcity.db'}"
    os.environ["SMARTCITY_DATABASE_URL"] = db_url
    if not _port_free(port):
        err.print(f"[red]error:[/] port {port} on {HOST} is in use; try --port {port + 1}")
        raise typer.Exit(1)

    from smartcity.storage import migrate
    from smartcity.storage.engine import Database

    with console.status("preparing the database...") as status:
        db = Database(db_url)
        migrate.upgrade(db)
        status.update("loading the blueprint...")
        from smartcity.portal.blueprint.dataset import load_blueprint
        from smartcity.portal.measures.loader import load

        load(db, load_blueprint())
        key_file = _demo_key(db, home)
        db.dispose()

    if via not in ("auto", "mqtt", "http"):
        raise typer.BadParameter("--via must be auto, mqtt or http")
    broker = via != "http" and _broker_reachable()
    if via == "mqtt" and not broker:
        err.print(f"[red]error:[/] no MQTT broker answers on {BROKER[0]}:{BROKER[1]}")
        raise typer.Exit(1)
    if broker:
        os.environ["SMARTCITY_MQTT_URL"] = f"mqtt://{BROKER[0]}:{BROKER[1]}"
        # One persistent MQTT session per demo database, apart from any other platform's.
        digest = hashlib.sha256(db_url.encode()).hexdigest()[:10]
        os.environ.setdefault("SMARTCITY_MQTT_CLIENT_ID", f"smartcity-demo-{digest}")
    else:
        os.environ.pop("SMARTCITY_MQTT_URL", None)

    # The demo's analyses raise their alerts (crowds, parking, water) as Alert entities.
    os.environ.setdefault("SMARTCITY_ANALYTICS_ALERTS", "60")
    from smartcity.app import create_app
    from smartcity.config import Settings

    app = create_app(Settings.from_env(auth_required=True))
    ingest, hub = app.state.ingest, app.state.hub
    fleet = build_fleet(devices, seed)
    try:
        with console.status("registering the simulated city's devices...") as status:
            credentials = prepare(
                fleet,
                LocalRegistrar(ingest.registry, hub.entities, hub.contexts),
                State(db_url),
                interval_s=reporting_interval(devices, rate),
                progress=lambda stage, done, total: status.update(
                    f"registering {stage}: {done:,}/{total:,}"
                ),
            )
    except ProvisionError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    _simulated_past(home, fleet, seed, hub)
    _simulated_present(fleet, seed, ingest, hub)

    stop = threading.Event()
    server = _Server(
        uvicorn.Config(app, host=HOST, port=port, log_level="warning", access_log=False), stop
    )
    base = f"http://{HOST}:{port}"
    state: dict[str, Any] = {}

    def simulate() -> None:
        from smartcity.live.simulator.publishers import HttpPublisher, MqttPublisher, Publisher
        from smartcity.live.simulator.runner import Schedule, run

        while not server.started and not stop.is_set():
            time.sleep(0.05)
        if stop.is_set():
            return
        publisher: Publisher
        if broker and ingest.mqtt is not None and ingest.mqtt.wait_connected(10):
            mqtt = MqttPublisher(os.environ["SMARTCITY_MQTT_URL"])
            try:
                mqtt.connect()
                publisher = mqtt
            except ConnectionError:
                publisher = HttpPublisher(base)
        else:
            publisher = HttpPublisher(base)
        state["publisher"] = publisher
        start_us = int(time.time() * 1000) * 1000
        console.print(
            f"live data: {len(fleet):,} simulated devices, {rate:g} readings/s "
            f"via {publisher.description}"
        )
        try:
            run(
                Schedule(fleet, seed, rate, 1.0, start_us),
                CityModel(seed, first_event_us=start_us + 30 * 60 * 1_000_000),
                credentials,
                publisher,
                stop=stop,
            )
        finally:
            publisher.close()

    thread = threading.Thread(target=simulate, name="simulator", daemon=True)
    thread.start()

    def announce() -> None:
        while not server.started and not stop.is_set():
            time.sleep(0.05)
        if stop.is_set():
            return
        # soft_wrap: a URL is never broken over two lines, however narrow the terminal.
        lines = [
            f"\n[bold green]smartcity demo is running[/] (data in {home})",
            f"  site       {base}/en/   ({base}/tc/, {base}/sc/)",
            f"  dashboard  {base}/en/dashboard",
            f"  API docs   {base}/docs",
            f"  entities   {base}/ngsi-ld/v1/types",
            # Short names (?type=OffStreetParking) need this @context in a Link header (README).
            f"  @context   {base}{CITY_CONTEXT_PATH}",
            f"  write key  in {key_file} (send as 'Authorization: Bearer <key>')",
            "Press Ctrl-C to stop.\n",
        ]
        for line in lines:
            console.print(line, soft_wrap=True)
        if not no_browser:
            webbrowser.open(f"{base}/en/dashboard")

    threading.Thread(target=announce, name="announce", daemon=True).start()
    server.run()
    stop.set()
    thread.join(15)
    publisher = state.get("publisher")
    sent = publisher.stats.sent if publisher is not None else 0
    console.print(f"stopped; {sent:,} simulated readings sent")
