"""``smartcity history ...`` (the hub's history as Parquet) and ``smartcity analytics ...``
(analyses; each one adds its own sub-group here: ``analytics_app.add_typer(...)``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from smartcity.commandline import DatabaseOpt, open_database
from smartcity.config import smartcity_home

history_app = typer.Typer(help="The hub's history, exported for analytics.", no_args_is_help=True)
analytics_app = typer.Typer(
    help="City analytics over the exported history (DuckDB by default, or Spark).",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)


def default_history_dir() -> Path:
    return smartcity_home() / "analytics" / "history"


HistoryDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--history",
        help="The exported history (default: $SMARTCITY_HOME/analytics/history)",
        show_default=False,
    ),
]
EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="duckdb (in process) or spark (local, or the cluster $SMARTCITY_SPARK_MASTER "
        "names); default $SMARTCITY_ANALYTICS_ENGINE, else duckdb",
        show_default=False,
    ),
]


def parse_since(text: str) -> int:
    """An ISO 8601 time or date (UTC when it has no offset) as microseconds since the epoch."""
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a time: use e.g. 2026-03-01 or 2026-03-01T08:00:00+08:00"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1_000_000)


@history_app.command("export")
def history_export(
    since: Annotated[
        str | None,
        typer.Option(help="Only instances observed at or after this time (ISO 8601)"),
    ] = None,
    types: Annotated[
        str | None,
        typer.Option(help="Only entities of these types, comma-separated (short names or IRIs)"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder (default: $SMARTCITY_HOME/analytics/history)"),
    ] = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows read and written at a time")] = (
        50_000
    ),
    settle: Annotated[
        float | None,
        typer.Option(
            help="Leave rows accepted less than this many seconds ago for the next run "
            "(default: 120 on PostgreSQL, 0 on SQLite)",
            show_default=False,
        ),
    ] = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Delete what was exported and export it all again")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
    database: DatabaseOpt = None,
) -> None:
    """Write the history as Parquet, by entity type and (Hong Kong) date; only what is new."""
    from smartcity.analytics.history import ExportError, export_history

    since_us = parse_since(since) if since else None
    wanted = [t.strip() for t in types.split(",") if t.strip()] if types else None
    target = (out or default_history_dir()).expanduser()
    db = open_database(database, current=True)
    try:
        with Progress(
            TextColumn("[bold]history export"),
            BarColumn(),
            TextColumn("{task.fields[rows]:,} rows"),
            TimeElapsedColumn(),
            console=err,
            transient=as_json,
        ) as bar:
            task = bar.add_task("export", total=None, rows=0)

            def progress(done: int, total: int, rows: int) -> None:
                bar.update(task, completed=done, total=total, rows=rows)

            result = export_history(
                db,
                target,
                since_us=since_us,
                types=wanted,
                chunk_rows=chunk_rows,
                settle_s=settle,
                rebuild=rebuild,
                progress=progress,
            )
    except ExportError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    summary = {
        "out": str(target),
        "rows": result.rows,
        "files": result.files,
        "partitions": len(result.partitions),
        "watermark": result.watermark,
        "held_back": result.held_back,
    }
    if as_json:
        console.print_json(json.dumps(summary))
        return
    if result.rows == 0:
        console.print(f"Nothing new: {target} is up to date.")
    else:
        console.print(
            f"Wrote {result.rows:,} rows in {result.files} files "
            f"({len(result.partitions)} type/date partitions) to {target}."
        )
    if result.held_back:
        console.print("Rows accepted in the last --settle seconds are left for the next run.")


def parse_keep(text: str) -> int:
    """A retention window: 400d, 13w, 36h (days, weeks, hours), in microseconds."""
    raw = text.strip().lower()
    units = {"d": 86_400, "w": 7 * 86_400, "h": 3_600}
    if len(raw) < 2 or raw[-1] not in units or not raw[:-1].isdigit() or int(raw[:-1]) < 1:
        raise typer.BadParameter(f"{text!r}: give days, weeks or hours, e.g. 400d, 57w")
    return int(raw[:-1]) * units[raw[-1]] * 1_000_000


@history_app.command("retain")
def history_retain(
    keep: Annotated[
        str, typer.Option(help="Keep this much history in the database, e.g. 400d (days, w, h)")
    ],
    archive: Annotated[
        Path,
        typer.Option(help="Folder for the archived months (Parquet, the export's layout)"),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the months that would go, change nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
    database: DatabaseOpt = None,
) -> None:
    """Move every whole month older than --keep out of the database into Parquet (checked
    before anything is removed); temporal queries over those months then answer 410."""
    from smartcity.analytics.retain import RetainError, retain

    keep_us = parse_keep(keep)
    db = open_database(database, current=True)
    try:
        with Progress(
            TextColumn("[bold]history retain {task.fields[month]}"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,} rows"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=dry_run,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(month: str, done: int, total: int) -> None:
                if month not in tasks:
                    tasks[month] = bar.add_task(month, total=total, month=month)
                bar.update(tasks[month], completed=done, total=max(total, done))

            result = retain(db, archive, keep_us=keep_us, dry_run=dry_run, progress=progress)
    except RetainError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    if as_json:
        summary = {
            "archive": str(archive),
            "keep_from": result.keep_from,
            "dry_run": dry_run,
            "months": [
                {"month": p.label, "batch": p.batch, "rows": p.rows} for p in result.planned
            ],
            "archived": [vars(d) for d in result.archived],
            "finished": result.finished,
        }
        console.print_json(json.dumps(summary))
        return
    if dry_run:
        if not result.planned:
            console.print(f"Nothing to archive: the history starts in {result.keep_from} or later.")
            return
        title = f"Would archive (keeping {result.keep_from} on)"
        table = Table("month", "batch", "rows", title=title)
        for p in result.planned:
            table.add_row(p.label, str(p.batch), f"{p.rows:,}")
        console.print(table)
        return
    for month in result.finished:
        console.print(f"Finished {month}: removed what an interrupted run had archived.")
    if not result.archived:
        console.print(f"Nothing to archive: the database holds {result.keep_from} on.")
        return
    table = Table("month", "batch", "rows", "files", "bytes", title=f"Archived to {archive}")
    for d in result.archived:
        table.add_row(d.month, str(d.batch), f"{d.rows:,}", str(d.files), f"{d.bytes:,}")
    console.print(table)


@analytics_app.command("sql")
def analytics_sql(
    query: Annotated[str, typer.Argument(help="SQL in DuckDB's dialect over the table history")],
    history: HistoryDirOpt = None,
    engine: EngineOpt = None,
    limit: Annotated[int, typer.Option(help="Rows to print at most")] = 50,
) -> None:
    """Ask the exported history a question in SQL (the table is called ``history``)."""
    from smartcity.analytics.engine import open_engine

    folder = (history or default_history_dir()).expanduser()
    if not any(folder.glob("type=*/date=*/part-*.parquet")):
        err.print(f"[red]error:[/] no exported history in {folder}: run `smartcity history export`")
        raise typer.Exit(1)
    try:
        runner = open_engine(engine)
    except (ValueError, RuntimeError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    try:
        runner.register_parquet("history", folder)
        result = runner.query(query)
    except Exception as exc:  # the engine's own message says what was wrong in the SQL
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    finally:
        runner.close()
    table = Table(*result.column_names)
    for row in result.slice(0, limit).to_pylist():
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)
    if result.num_rows > limit:
        console.print(f"({result.num_rows:,} rows; {limit} shown)")
