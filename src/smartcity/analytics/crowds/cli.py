"""``smartcity analytics crowds run``: a venue's crowd (analytics/crowds/analysis.py)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from smartcity.analytics.alerts import Outcome
from smartcity.analytics.runcli import (
    AlertsOpt,
    AtOpt,
    EveryOpt,
    JsonOpt,
    ReadingsOpt,
    console,
    err,
    num,
    outcome_line,
    parquet,
    parse_when,
    repeat,
)
from smartcity.commandline import DatabaseOpt, open_database

crowds_app = typer.Typer(
    help="Crowds at venues: density, Fruin LOS, egress, alerts.", no_args_is_help=True
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
    from smartcity.analytics.readings import from_hub
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
            at_us = parse_when(at)
            outcome: Outcome | None = None
            readings = parquet(readings_from)
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
                    num(z.people, 0),
                    num(z.density, 2),
                    num(z.flow, 0),
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
            console.print(outcome_line(outcome))

        repeat(every, once)
