"""``smartcity analytics water run``: leakage in the DMAs (analytics/water/analysis.py)."""

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
    outcome_line,
    parquet,
    parse_when,
    repeat,
)
from smartcity.commandline import DatabaseOpt, open_database

water_app = typer.Typer(help="Water leakage in district metered areas.", no_args_is_help=True)


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
            at_us = parse_when(at)
            outcome: Outcome | None = None
            readings = parquet(readings_from)
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
            console.print(outcome_line(outcome))

        repeat(every, once)
