"""``smartcity simulate``: a simulated city sending live readings like real devices."""

from __future__ import annotations

import os
import re
import signal
import threading
from datetime import datetime
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from smartcity.live.simulator.models import HKT, SCENARIOS, CityModel, first_event
from smartcity.live.simulator.places import MAX_DEVICES, MIN_DEVICES, build_fleet
from smartcity.live.simulator.provision import (
    ApiRegistrar,
    LocalRegistrar,
    ProvisionError,
    Registrar,
    State,
    prepare,
    reporting_interval,
)
from smartcity.live.simulator.publishers import HttpPublisher, MqttPublisher, Publisher
from smartcity.live.simulator.runner import Progress, Schedule, run

console = Console()
err = Console(stderr=True)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Without --start a fast clock replays the past week, ending around now.
REPLAY_DAYS = 7


def parse_duration(text: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise typer.BadParameter(f"{text!r}: expected a duration such as 90s, 10m, 2h or 1d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_start(text: str) -> int:
    """ISO 8601 (a time without an offset is Hong Kong time) -> epoch microseconds."""
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: expected an ISO 8601 time such as 2026-11-23T07:00 (Hong Kong time) "
            "or 2026-11-22T23:00Z"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=HKT)
    return int(dt.timestamp() * 1_000_000) // 1000 * 1000


def status_line(p: Progress, publisher: Publisher, devices: int) -> Text:
    rate = p.produced / p.elapsed_s if p.elapsed_s > 0 else 0.0
    sim = datetime.fromtimestamp(p.simulated_us / 1e6, HKT).strftime("%Y-%m-%d %H:%M:%S")
    text = Text()
    text.append("● " if p.finished is None else "■ ", style="green" if not p.failed else "yellow")
    text.append(f"{p.produced:,} readings", style="bold")
    text.append(f" · {rate:,.1f}/s · {devices:,} devices · sim {sim} HKT")
    text.append(f" · acked {p.acked:,}")
    text.append(f" · failed {p.failed:,}", style="red" if p.failed else "")
    text.append(f" · pending {p.pending:,} · {publisher.description}")
    if p.finished:
        text.append(f" · {p.finished}")
    return text


def _local_registrar(database: str | None) -> Registrar:
    from smartcity.config import Settings, resolve_database_url
    from smartcity.hub.runtime import build_hub
    from smartcity.live.devices.service import DEFAULT_TOPIC_PATTERN, DeviceRegistry
    from smartcity.storage import migrate
    from smartcity.storage.engine import Database

    db = Database(resolve_database_url(database))
    try:
        migrate.ensure_current(db)
    except migrate.SchemaOutOfDate as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    hub = build_hub(Settings(database_url=db.url), db)
    pattern = os.environ.get("SMARTCITY_MQTT_TOPIC_PATTERN", DEFAULT_TOPIC_PATTERN)
    registry = DeviceRegistry(db, hub.entities, hub.contexts, topic_pattern=pattern)
    return LocalRegistrar(registry, hub.entities, hub.contexts)


def simulate(
    devices: Annotated[
        int,
        typer.Option(min=MIN_DEVICES, max=MAX_DEVICES, help="How many devices the city has"),
    ] = 1000,
    rate: Annotated[float, typer.Option(min=0.1, help="Readings per second, in total")] = 100.0,
    seed: Annotated[int, typer.Option(help="Same seed, same city and same readings")] = 1,
    via: Annotated[str, typer.Option(help="mqtt or http: how devices send")] = "mqtt",
    mqtt: Annotated[
        str | None,
        typer.Option(help="Broker (default $SMARTCITY_MQTT_URL, else mqtt://127.0.0.1:1883)"),
    ] = None,
    hub: Annotated[
        str | None,
        typer.Option(
            help="A running platform, e.g. http://127.0.0.1:8000: register devices through "
            "its API (needs --key) and, with --via http, send readings to it. Without it, "
            "devices are registered in process in the configured database"
        ),
    ] = None,
    key: Annotated[
        str | None, typer.Option(help="Write API key for --hub ($SMARTCITY_KEY)")
    ] = None,
    database: Annotated[
        str | None, typer.Option(help="Database for in-process registration (no --hub)")
    ] = None,
    duration: Annotated[
        str | None, typer.Option(help="Stop after this long, e.g. 90s, 10m, 2h (default: Ctrl-C)")
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            help="Simulated start time, ISO 8601 (Hong Kong time without an offset). Default: "
            "now; with --speed > 1, a week ago"
        ),
    ] = None,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Simulated seconds per real second")
    ] = 1.0,
    scenario: Annotated[
        str | None,
        typer.Option(
            help="Start with a scenario: egress (an event at Kai Tak Sports Park ends 5 "
            "minutes in: the crowd leaves through the stations and footbridges)"
        ),
    ] = None,
    register: Annotated[
        bool,
        typer.Option(
            "--register/--no-register",
            help="Register devices and their entities first (--no-register: reuse the saved "
            "registrations only)",
        ),
    ] = True,
) -> None:
    """Simulate a city's devices sending live data through MQTT or HTTP, like real ones."""
    if via not in ("mqtt", "http"):
        raise typer.BadParameter("--via must be mqtt or http")
    if scenario is not None and scenario not in SCENARIOS:
        raise typer.BadParameter(f"--scenario must be one of: {', '.join(SCENARIOS)}")
    if via == "http" and not hub:
        err.print("[red]error:[/] --via http sends to a running platform: give --hub URL")
        raise typer.Exit(2)
    seconds = parse_duration(duration) if duration else None
    now = int(datetime.now(HKT).timestamp() * 1000) * 1000
    if start is not None:
        start_us = parse_start(start)
    else:
        start_us = now - REPLAY_DAYS * 86_400_000_000 if speed > 1 else now
    key = key or os.environ.get("SMARTCITY_KEY")
    mqtt_url = mqtt or os.environ.get("SMARTCITY_MQTT_URL") or "mqtt://127.0.0.1:1883"

    with console.status("building the city..."):
        fleet = build_fleet(devices, seed)
    registrar: Registrar = ApiRegistrar(hub, key) if hub else _local_registrar(database)
    state = State(hub.rstrip("/") if hub else _target(database))
    try:
        with console.status("registering devices...") as status:
            credentials = prepare(
                fleet,
                registrar,
                state,
                interval_s=reporting_interval(devices, rate),
                register=register,
                progress=lambda stage, done, total: status.update(
                    f"registering {stage}: {done:,}/{total:,}"
                ),
            )
    except ProvisionError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"{len(fleet):,} devices ready (registrations kept in {state.path})")

    publisher: Publisher
    if via == "mqtt":
        mqtt_publisher = MqttPublisher(mqtt_url)
        try:
            mqtt_publisher.connect()
        except ConnectionError as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        publisher = mqtt_publisher
        if not hub:
            console.print(
                "readings go to the broker: a platform subscribed to it on the same database "
                "ingests them (smartcity serve with SMARTCITY_MQTT_URL, or smartcity ingest mqtt)"
            )
    else:
        assert hub is not None
        publisher = HttpPublisher(hub)

    model = CityModel(seed, first_event_us=first_event(start_us, scenario))
    schedule = Schedule(fleet, seed, rate, speed, start_us)
    stop = threading.Event()

    def interrupt(_sig: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, interrupt)
    previous_term = signal.signal(signal.SIGTERM, interrupt)
    try:
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            final = run(
                schedule,
                model,
                credentials,
                publisher,
                stop=stop,
                duration_s=seconds,
                on_progress=lambda p: live.update(status_line(p, publisher, len(fleet))),
            )
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
        publisher.close()
    if not console.is_terminal:
        console.print()  # Live leaves its last line unterminated when not on a terminal
    stats = publisher.stats
    if stats.outcomes:
        console.print("outcomes: " + ", ".join(f"{k} {v:,}" for k, v in stats.outcomes.items()))
    if stats.failed:
        err.print("[yellow]failed:[/] " + ", ".join(f"{k} {v:,}" for k, v in stats.failed.items()))
    console.print(f"done: {final.produced:,} readings, {final.finished}")


def _target(database: str | None) -> str:
    from smartcity.config import resolve_database_url

    return resolve_database_url(database)
