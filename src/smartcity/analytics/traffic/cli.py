"""``smartcity analytics traffic ...``: detector health straight from raw feed files, and the
daily run that computes and stores every traffic result."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import typer
from rich.console import Console
from rich.table import Table

traffic_app = typer.Typer(
    help="Traffic analytics after Caltrans PeMS on TD's detector feeds (docs/analytics.md).",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)

RawOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--raw",
        help="rawSpeedVol-all.xml files or directories of archived ones (repeat)",
    ),
]


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        err.print(f"[red]error:[/] --date {text!r} is not a date; give YYYY-MM-DD")
        raise typer.Exit(2) from None


@traffic_app.command("health")
def health_cmd(
    raw: RawOpt = None,
    day: Annotated[str, typer.Option("--date", help="Hong Kong day, YYYY-MM-DD")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    locations: Annotated[
        Path | None,
        typer.Option(help="Detector location CSV: listed detectors silent all day are reported"),
    ] = None,
    min_fraction: Annotated[
        float, typer.Option(help="Insufficient data below this share of expected samples")
    ] = 0.6,
    card_off_samples: Annotated[
        int, typer.Option(help="Card off above this many empty samples")
    ] = 1200,
    high_val_samples: Annotated[
        int, typer.Option(help="High values above this many samples")
    ] = 200,
    intermittent_samples: Annotated[
        int, typer.Option(help="Intermittent above this many occupancy-without-volume samples")
    ] = 50,
    constant_entropy_bits: Annotated[
        float, typer.Option(help="Constant below this occupancy entropy (bits)")
    ] = 1.0,
) -> None:
    """One day's PeMS detector health (05:00-22:00 Hong Kong time) from raw feed files."""
    from smartcity.analytics.engine import DuckDBEngine
    from smartcity.analytics.traffic import feed, health
    from smartcity.analytics.traffic.config import HealthConfig
    from smartcity.analytics.traffic.locations import read_csv

    if not raw:
        err.print("[red]error:[/] give the raw feed files: --raw FILE_OR_DIR (repeatable)")
        raise typer.Exit(2)
    if not day:
        err.print("[red]error:[/] give the day: --date YYYY-MM-DD")
        raise typer.Exit(2)
    the_day = _day(day)
    cfg = replace(
        HealthConfig(),
        min_fraction=min_fraction,
        card_off_samples=card_off_samples,
        high_val_samples=high_val_samples,
        intermittent_samples=intermittent_samples,
        constant_entropy_bits=constant_entropy_bits,
    )
    try:
        samples = _read_with_progress(list(raw), quiet=as_json)
        known = [loc.detector_id for loc in read_csv(locations)] if locations else None
    except (feed.FeedError, ValueError, OSError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    engine = DuckDBEngine()
    try:
        engine.register_arrow("samples", samples)
        number = health.day_number(the_day)
        lanes = health.lane_health(engine, cfg, "samples", number)
    finally:
        engine.close()
    report = health.health_report(lanes, cfg, number, known)
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True))
        return
    table = Table("detector", "status", "samples", "expected", "lanes")
    for detector, entry in report["detectors"].items():
        table.add_row(
            detector,
            entry["status"],
            str(entry["samples"]),
            str(entry["expected"]),
            str(len(entry["lanes"])),
        )
    console.print(table)
    if not report["detectors"]:
        err.print(f"[yellow]no samples on {the_day} (Hong Kong time) in the files given[/]")


def _read_with_progress(raw: list[Path], *, quiet: bool) -> pa.Table:
    """Read raw files with a progress bar on stderr (none with --json: stdout stays JSON)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from smartcity.analytics.traffic import feed

    if quiet:
        return feed.read_raw(raw)
    with Progress(
        "reading raw files", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
    ) as progress:
        task = progress.add_task("read", total=None)
        return feed.read_raw(
            raw, on_file=lambda done, total: progress.update(task, completed=done, total=total)
        )


@traffic_app.command("run")
def run_cmd(
    raw: RawOpt = None,
    day: Annotated[str | None, typer.Option("--date", help="Hong Kong day, YYYY-MM-DD")] = None,
    since: Annotated[
        str | None, typer.Option(help="Every stored day from this time (ISO 8601)")
    ] = None,
    journey_times: Annotated[
        list[Path] | None,
        typer.Option("--journey-times", help="journeytime.xml files or directories (repeat)"),
    ] = None,
    segments: Annotated[
        list[Path] | None,
        typer.Option("--segments", help="irnAvgSpeed-all.xml files or directories (repeat)"),
    ] = None,
    locations: Annotated[
        Path | None, typer.Option(help="Detector location CSV (kept for later runs)")
    ] = None,
    delay_threshold: Annotated[
        list[float] | None,
        typer.Option(
            "--delay-threshold", help="Delay threshold speed, km/h (repeat; default 40, 60)"
        ),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(help="Where results go (default $SMARTCITY_HOME/analytics/traffic)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Compute and store 5-minute values, health, imputation, performance measures,
    bottlenecks and journey-time reliability (Parquet, served at /api/v1/analytics/traffic)."""
    from smartcity.analytics.traffic import feed, pipeline
    from smartcity.analytics.traffic.config import MeasuresConfig, TrafficConfig

    the_day = _day(day) if day else None
    start: datetime | None = None
    if since:
        try:
            start = datetime.fromisoformat(since)
        except ValueError:
            err.print(f"[red]error:[/] --since {since!r} is not an ISO 8601 time")
            raise typer.Exit(2) from None
    cfg = TrafficConfig()
    if delay_threshold:
        cfg = replace(
            cfg, measures=replace(MeasuresConfig(), delay_thresholds_kmh=tuple(delay_threshold))
        )
    store = pipeline.Store(home) if home else pipeline.Store()
    try:
        with console.status("analysing...") as status:
            summary = pipeline.run(
                store=store,
                day=the_day,
                since=start,
                raw=raw or [],
                journeys=journey_times or [],
                segments=segments or [],
                locations_csv=locations,
                config=cfg,
                progress=lambda s: status.update(s),
            )
    except (feed.FeedError, ValueError, FileNotFoundError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
        return
    if not summary["days"]:
        err.print("[yellow]nothing to analyse: no samples stored; give --raw FILE_OR_DIR[/]")
        return
    table = Table("day", "samples", "detectors", "measures rows", "bottlenecks")
    for d, counts in summary["days"].items():
        table.add_row(
            d,
            str(counts.get("samples", 0)),
            str(counts.get("health", 0)),
            str(counts.get("measures", 0)),
            str(counts.get("bottlenecks", 0)),
        )
    console.print(table)
    console.print(f"results under {store.root}")
