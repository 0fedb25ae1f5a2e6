"""``smartcity analytics crowds run`` and ``smartcity analytics water run``: assess from the
hub's history, write the alerts into the hub (raised, updated, cleared), print the state.

``crowds_app`` and ``water_app`` are Typer sub-apps; ``smartcity.cli`` mounts them under an
``analytics`` group (beside the other analyses'). ``--every N`` repeats the run every N seconds
until Ctrl-C, which is how alerts clear themselves on a server: the run that finds the
condition over sets their ``validTo``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated

import pyarrow as pa
import typer
from rich.console import Console
from rich.table import Table

from smartcity.analytics.alerts import Outcome
from smartcity.commandline import DatabaseOpt, open_database

console = Console()
err = Console(stderr=True)

crowds_app = typer.Typer(
    help="Crowds at venues: density, Fruin LOS, egress, alerts.", no_args_is_help=True
)
water_app = typer.Typer(help="Water leakage in district metered areas.", no_args_is_help=True)

AtOpt = Annotated[
    str | None,
    typer.Option(
        help="Assess at this time, ISO 8601 (Hong Kong time without an offset); default: now"
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON")]
AlertsOpt = Annotated[
    bool,
    typer.Option(
        "--alerts/--no-alerts", help="Write the alerts into the hub (--no-alerts: only print)"
    ),
]
ReadingsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--readings",
        help="Read the readings from these Parquet files (columns entity_id, attr, t, value) "
        "instead of the hub's history; alerts still go to the hub",
    ),
]
EveryOpt = Annotated[
    float | None, typer.Option(min=5, help="Run again every this many seconds, until Ctrl-C")
]


def _at(text: str | None) -> int:
    from smartcity.analytics.api import BadQuery, parse_at

    try:
        return parse_at(text)
    except BadQuery as exc:
        raise typer.BadParameter(str(exc).replace("at=", "--at ")) from None


def _repeat(every: float | None, once: Callable[[], None]) -> None:
    while True:
        once()
        if every is None:
            return
        try:
            time.sleep(every)
        except KeyboardInterrupt:
            return


def _outcome_line(outcome: Outcome | None) -> str:
    if outcome is None:
        return "alerts not written (--no-alerts)"
    return (
        f"alerts: {len(outcome.raised)} raised, {len(outcome.updated)} updated, "
        f"{len(outcome.unchanged)} still active, {len(outcome.cleared)} cleared"
    )


@crowds_app.command("run")
def crowds_run(
    venue: Annotated[str, typer.Option(help="A shipped venue's id or a venue JSON file")] = (
        "kai-tak-sports-park"
    ),
    at: AtOpt = None,
    window: Annotated[
        int, typer.Option(min=10, max=3600, help="Seconds of readings averaged")
    ] = 180,
    write_alerts: AlertsOpt = True,
    as_json: JsonOpt = False,
    every: EveryOpt = None,
    readings_from: ReadingsOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Assess a venue's crowd now (or --at): density, flow, Fruin LOS per zone, egress time."""
    from smartcity.analytics.crowds import analysis
    from smartcity.analytics.crowds.venue import load_venue
    from smartcity.analytics.history import from_hub
    from smartcity.config import Settings
    from smartcity.hub.runtime import open_hub

    try:
        spec = load_venue(venue)
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    db = open_database(database, current=True)
    with open_hub(Settings(database_url=db.url), db) as hub:

        def once() -> None:
            at_us = _at(at)
            outcome: Outcome | None = None
            readings = _parquet(readings_from)
            if write_alerts:
                status, outcome = analysis.run(hub, spec, at_us, window_s=window, readings=readings)
            else:
                if readings is None:
                    sensors = [s for z in spec.zones for s in z.sensors]
                    readings = from_hub(
                        hub.temporal,
                        "CrowdFlowObserved",
                        analysis.ATTRS,
                        at_us - window * 1_000_000,
                        at_us + 1,
                        ids=sensors,
                    )
                status = analysis.assess(spec, readings, at_us, window_s=window)
            if as_json:
                console.print_json(json.dumps(status.to_json()))
                return
            table = Table(title=f"{status.name} at {status.at}")
            for col in ("zone", "people", "people/m²", "flow p/m/min", "LOS", "alert"):
                table.add_column(col)
            for z in status.zones:
                table.add_row(
                    z.name,
                    _num(z.people, 0),
                    _num(z.density, 2),
                    _num(z.flow, 0),
                    z.los or "no data",
                    "" if z.level == "none" else z.level,
                )
            console.print(table)
            console.print(
                f"egress: {status.people_inside:,.0f} people inside leave in "
                f"{status.egress_min:.1f} min; a full house ({spec.capacity:,}) in "
                f"{status.design_egress_min:.1f} min (Green Guide target "
                f"{status.egress_target_min:g} min)"
            )
            console.print(_outcome_line(outcome))

        _repeat(every, once)


@water_app.command("run")
def water_run(
    at: AtOpt = None,
    nights: Annotated[int, typer.Option(min=9, max=90, help="Nights examined")] = 21,
    write_alerts: AlertsOpt = True,
    as_json: JsonOpt = False,
    every: EveryOpt = None,
    readings_from: ReadingsOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Rank the DMAs by night leakage and find bursts and rising leaks."""
    from smartcity.analytics.water import analysis
    from smartcity.config import Settings
    from smartcity.hub.runtime import open_hub

    db = open_database(database, current=True)
    with open_hub(Settings(database_url=db.url), db) as hub:

        def once() -> None:
            at_us = _at(at)
            outcome: Outcome | None = None
            readings = _parquet(readings_from)
            with console.status("reading the night flows..."):
                if write_alerts:
                    status, outcome = analysis.run(hub, at_us, nights=nights, readings=readings)
                else:
                    start = analysis.window_start(at_us, nights)
                    if readings is None:
                        readings = analysis.night_readings(hub.temporal, at_us, nights)
                    status = analysis.assess(analysis.within(readings, start, at_us), at_us)
            if as_json:
                console.print_json(json.dumps(status.to_json()))
                return
            if not status.dmas:
                err.print(
                    "no DMA has enough nights of inflow in the hub's history "
                    f"(WaterConsumptionObserved inflow, {nights} nights before {status.at}); "
                    "run the simulator or connect the DMA meters first"
                )
            table = Table(title=f"DMAs by night leakage, {status.at}")
            for col in ("rank", "DMA", "leakage m³/h", "baseline", "finding", "since"):
                table.add_column(col)
            for s in status.dmas:
                table.add_row(
                    str(s.rank),
                    s.dma.rsplit(":", 1)[-1],
                    f"{s.leakage:.1f}",
                    f"{s.baseline:.1f}",
                    "" if s.finding == "none" else s.finding,
                    s.since or "",
                )
            console.print(table)
            for dma, why in status.skipped.items():
                err.print(f"[yellow]skipped[/] {dma}: {why}")
            console.print(_outcome_line(outcome))

        _repeat(every, once)


def _parquet(paths: list[str] | None) -> pa.Table | None:
    if not paths:
        return None
    from smartcity.analytics.history import from_parquet

    try:
        return from_parquet(paths)
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


def _num(value: float | None, places: int) -> str:
    return "" if value is None else f"{value:,.{places}f}"
