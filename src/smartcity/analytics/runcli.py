"""What the crowd and water commands share (``smartcity analytics crowds|water run``): the
options, the time parser, ``--every`` repetition and ``--readings`` Parquet.

Each run assesses from the hub's history (or Parquet), writes the alerts into the hub (raised,
updated, cleared) and prints the state. ``--every N`` repeats the run every N seconds until
Ctrl-C, which is how alerts clear themselves on a server: the run that finds the condition
over sets their ``validTo``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

import pyarrow as pa
import typer
from rich.console import Console

from smartcity.analytics.alerts import Outcome

console = Console()
err = Console(stderr=True)
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


def parse_when(text: str | None) -> int:
    from smartcity.analytics.api import BadQuery, parse_at

    try:
        return parse_at(text)
    except BadQuery as exc:
        raise typer.BadParameter(str(exc).replace("at=", "--at ")) from None


def repeat(every: float | None, once: Callable[[], None]) -> None:
    while True:
        once()
        if every is None:
            return
        try:
            time.sleep(every)
        except KeyboardInterrupt:
            return


def outcome_line(outcome: Outcome | None) -> str:
    if outcome is None:
        return "alerts not written (--no-alerts)"
    return (
        f"alerts: {len(outcome.raised)} raised, {len(outcome.updated)} updated, "
        f"{len(outcome.unchanged)} still active, {len(outcome.cleared)} cleared"
    )


def parquet(paths: list[str] | None) -> pa.Table | None:
    if not paths:
        return None
    from smartcity.analytics.readings import from_parquet

    try:
        return from_parquet(paths)
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


def num(value: float | None, places: int) -> str:
    return "" if value is None else f"{value:,.{places}f}"
