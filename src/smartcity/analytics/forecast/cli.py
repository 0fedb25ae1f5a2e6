"""``smartcity analytics forecast``: evaluate the forecast method on anyone's data, and
generate realistic multi-week detector data to try it on (docs/analytics.md, Forecasts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True)

forecast_app = typer.Typer(
    help="Short-term speed forecasts: evaluation and synthetic data.", no_args_is_help=True
)


def _horizons(text: str) -> list[int]:
    try:
        values = sorted({int(p) for p in text.split(",") if p.strip()})
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected steps such as 3,6,12") from None
    if not values or values[0] < 1:
        raise typer.BadParameter(f"{text!r}: horizons are whole steps ahead, 1 or more")
    return values


@forecast_app.command("evaluate")
def evaluate_command(
    wide_csv: Annotated[
        Path,
        typer.Option(
            "--wide-csv",
            help="First row: sensor ids; each further row: one time step, one speed per sensor "
            "(any unit; 0 = missing); no time column",
        ),
    ],
    step: Annotated[str, typer.Option(help="Time between rows, e.g. 5min")] = "5min",
    horizons: Annotated[str, typer.Option(help="Steps ahead, comma-separated")] = "3,6,12",
    adjacency: Annotated[
        Path | None,
        typer.Option(help="CSV of road links from,to[,weight] (from = upstream of to)"),
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="Time of the first row (default: a Monday 00:00)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Chronological 70/10/20 split; MAE, RMSE and MAPE per horizon on the test part, for the
    method and the last-value, time-of-day and 12-lag ridge baselines."""
    from smartcity.analytics.forecast.data import (
        InputError,
        parse_start,
        parse_step,
        read_adjacency,
        read_wide_csv,
    )
    from smartcity.analytics.forecast.evaluate import evaluate

    steps = _horizons(horizons)
    try:
        series = read_wide_csv(wide_csv, step=parse_step(step), start=parse_start(start))
        links = read_adjacency(adjacency, series.ids) if adjacency else None
        with err.status(f"fitting and evaluating on {len(series.ids):,} sensors..."):
            result = evaluate(series, steps, links)
    except (InputError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        print(orjson.dumps(result).decode())
        return
    table = Table(
        title=f"MAE per horizon ({len(series.ids)} sensors, test rows {result['split']['test']:,})"
    )
    table.add_column("horizon (steps)")
    table.add_column("profile_ridge", justify="right")
    for name in result["baselines"]:
        table.add_column(name, justify="right")
    table.add_column("ratio to best", justify="right")
    for h in map(str, steps):
        table.add_row(
            h,
            f"{result['horizons'][h]['mae']:.3f}",
            *(f"{b[h]['mae']:.3f}" for b in result["baselines"].values()),
            f"{result['ratio_to_best_baseline'][h]:.3f}",
        )
    console.print(table)


@forecast_app.command("generate")
def generate_command(
    out: Annotated[Path, typer.Option(help="Wide CSV to write")],
    sensors: Annotated[int, typer.Option(min=1, max=5000, help="Detectors")] = 50,
    days: Annotated[int, typer.Option(min=1, max=366, help="Days at 5-minute steps")] = 28,
    seed: Annotated[int, typer.Option(help="Same seed, same data")] = 1,
    adjacency_out: Annotated[
        Path | None, typer.Option(help="Also write the road links as from,to,weight")
    ] = None,
    missing: Annotated[float, typer.Option(min=0.0, max=0.5, help="Share of lost samples")] = 0.02,
) -> None:
    """Realistic detector speeds (km/h, Monday 00:00 onwards): daily and weekly patterns,
    per-detector differences, road-wide fluctuations, incidents with queues spreading
    upstream, and missing samples (0)."""
    from smartcity.analytics.forecast.generate import generate, write_adjacency, write_wide_csv

    history = generate(sensors, days, seed=seed, missing=missing)
    write_wide_csv(history, out)
    if adjacency_out:
        write_adjacency(history, adjacency_out)
    rows, cols = history.values.shape
    console.print(f"wrote {out}: {cols:,} sensors × {rows:,} steps of 5 minutes")
