"""``smartcity bench hub`` and ``smartcity bench ingest``: benchmarks against real server
processes; ``bench engines``: one analysis on DuckDB and Spark (docs/performance.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)

# Where a benchmark that makes its own data keeps it.
ScratchDatabase = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="PostgreSQL URL (a scratch database is created); default: a temporary SQLite file",
    ),
]

bench_app = typer.Typer(help="Benchmarks against a real server process.", no_args_is_help=True)


@bench_app.command("hub")
def bench_hub(
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="PostgreSQL URL to "
            "benchmark on (a scratch database is created); default: a temporary SQLite file",
        ),
    ] = None,
    scenario: Annotated[
        list[str] | None, typer.Option(help="single, batch, geo, temporal (repeat; default: all)")
    ] = None,
    seconds: Annotated[int, typer.Option(help="Duration of each wrk run")] = 10,
    workers: Annotated[int, typer.Option(help="Server worker processes")] = 2,
    connections: Annotated[int, typer.Option(help="Concurrent connections")] = 32,
    geo_entities: Annotated[int, typer.Option(help="Entities for the geo query")] = 100_000,
    batches: Annotated[int, typer.Option(help="1,000-entity batches to upsert")] = 50,
) -> None:
    """Measure the hub: single-entity ops, batch upsert vs the store, geo and temporal queries."""
    from smartcity.bench import hub
    from smartcity.bench.harness import results_table

    scenarios = scenario or ["single", "batch", "geo", "temporal"]
    with console.status("benchmarking...") as status:
        try:
            results = hub.run(
                database,
                scenarios,
                seconds=seconds,
                workers=workers,
                connections=connections,
                geo_entities=geo_entities,
                batches=batches,
                progress=lambda s: status.update(f"benchmarking: {s}"),
            )
        except RuntimeError as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
    console.print(results_table(results))


@bench_app.command("ingest")
def bench_ingest(
    database: ScratchDatabase = None,
    mqtt_url: Annotated[str, typer.Option("--mqtt", help="Broker")] = "mqtt://127.0.0.1:1883",
    readings: Annotated[int, typer.Option(help="Readings to publish")] = 200_000,
    per_message: Annotated[
        int, typer.Option(help="Readings per MQTT message (1: one reading per message)")
    ] = 1,
    devices: Annotated[int, typer.Option(help="Simulated devices")] = 1_000,
    publishers: Annotated[int, typer.Option(help="Publisher processes")] = 1,
    rate: Annotated[float, typer.Option(help="Readings/s to publish (0: as fast as possible)")] = 0,
    server: Annotated[
        bool, typer.Option("--server", help="Subscribe in a real `smartcity serve` process")
    ] = False,
    processes: Annotated[
        int,
        typer.Option(
            help="Ingesting processes sharing one MQTT v5 shared subscription "
            "(0: the subscriber in this process)",
            min=0,
        ),
    ] = 0,
    writer_only: Annotated[
        bool,
        typer.Option("--writer-only", help="Only the write path: no MQTT (see performance.md)"),
    ] = False,
) -> None:
    """Sustained MQTT readings/s into the hub with history, and publish -> commit latency
    (publish -> browser with --server)."""
    from smartcity.bench import ingest
    from smartcity.bench.harness import results_table

    with console.status("benchmarking...") as status:

        def progress(step: str) -> None:
            status.update(f"benchmarking: {step}")

        try:
            if writer_only:
                results = ingest.run_writer(
                    database, readings=readings, devices=devices, progress=progress
                )
            else:
                results = ingest.run(
                    database,
                    mqtt_url=mqtt_url,
                    readings=readings,
                    devices=devices,
                    publishers=publishers,
                    rate=rate,
                    server=server,
                    per_message=per_message,
                    processes=processes,
                    progress=progress,
                )
        except RuntimeError as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
    console.print(results_table(results))


opendata_bench_app = typer.Typer(help="Benchmarks of the open data portal.", no_args_is_help=True)
bench_app.add_typer(opendata_bench_app, name="opendata")


@opendata_bench_app.command("datastore")
def bench_opendata_datastore(
    database: ScratchDatabase = None,
    rows: Annotated[int, typer.Option(help="Rows in the CSV to load")] = 1_000_000,
    repeat: Annotated[int, typer.Option(help="Searches to time")] = 50,
) -> None:
    """DataStore: CSV load rows/s; datastore_search (filter, sort, 100 rows) beside Datasette
    on the same rows when Datasette is installed."""
    from smartcity.bench import datastore
    from smartcity.bench.harness import results_table

    with console.status("benchmarking...") as status:
        results = datastore.run(
            database,
            rows=rows,
            repeat=repeat,
            progress=lambda s: status.update(f"benchmarking: {s}"),
        )
    console.print(results_table(results))


@opendata_bench_app.command("search")
def bench_opendata_search(
    database: ScratchDatabase = None,
    datasets: Annotated[int, typer.Option(help="Datasets in the catalogue")] = 10_000,
    repeat: Annotated[int, typer.Option(help="Searches to time per query")] = 50,
    keep: Annotated[
        str | None,
        typer.Option(
            "--keep",
            metavar="NAME",
            help="Keep the seeded catalogue under NAME and reuse it on later runs "
            "(a SQLite file in the temporary directory, or a PostgreSQL database "
            "smartcity_bench_keep_NAME); migrations still run on it",
        ),
    ] = None,
) -> None:
    """package_search (words in English and Chinese, a facet filter, the first page; five
    facets each) over N datasets through a real server: p50 and p95 (target p95 ≤ 50 ms)."""
    from smartcity.bench import opendata_search
    from smartcity.bench.harness import results_table

    with console.status("benchmarking...") as status:
        try:
            results = opendata_search.run(
                database,
                datasets=datasets,
                repeat=repeat,
                keep=keep,
                progress=lambda s: status.update(f"benchmarking: {s}"),
            )
        except (RuntimeError, ValueError) as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
    console.print(results_table(results))


@bench_app.command("history")
def bench_history(
    database: Annotated[
        str, typer.Option("--database", help="PostgreSQL URL (a scratch database is created)")
    ],
    month_rows: Annotated[int, typer.Option(help="Readings per month")] = 300_000,
    months: Annotated[int, typer.Option(help="Months of history")] = 12,
) -> None:
    """Temporal queries before and after monthly partitions, bytes per row in PostgreSQL and
    in Parquet, and the time `history retain` takes for one month."""
    import json

    from smartcity.bench import history

    with console.status("benchmarking...") as status:
        try:
            figures = history.run(
                database,
                month_rows=month_rows,
                months=months,
                progress=lambda s: status.update(f"benchmarking: {s}"),
            )
        except RuntimeError as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
    console.print_json(json.dumps(figures))


@bench_app.command("engines")
def bench_engines(
    rows: Annotated[int, typer.Option(help="30-second detector samples to aggregate")] = 1_000_000,
    spark: Annotated[bool, typer.Option(help="Time local Spark too (needs pyspark, Java)")] = True,
    spark_master: Annotated[str, typer.Option(help="Spark master URL")] = "local[2]",
) -> None:
    """Time one 5-minute traffic aggregation, written once, on DuckDB and on Spark."""
    import json

    from smartcity.bench import engines

    with console.status("timing the engines..."):
        try:
            figures = engines.run(rows, spark=spark, spark_master=spark_master)
        except RuntimeError as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
    console.print_json(json.dumps(figures))


@bench_app.command("analytics")
def bench_analytics(
    detectors: Annotated[int, typer.Option(help="Detector stations (a multiple of 20)")] = 800,
    lanes: Annotated[int, typer.Option(help="Lanes per station")] = 3,
    small: Annotated[
        bool, typer.Option("--small", help="40 stations: a run of seconds (tests, a quick look)")
    ] = False,
    threads: Annotated[int | None, typer.Option(help="DuckDB threads (default: all cores)")] = None,
    spark: Annotated[
        bool, typer.Option("--spark", help="The same job on a local Spark too (pyspark, Java)")
    ] = False,
    spark_master: Annotated[
        str, typer.Option(help="Spark's master with --spark (local[N] or spark://host:port)")
    ] = "local[*]",
) -> None:
    """Traffic analytics on a synthetic day (800 x 3 lanes x 2,880 samples): 5-minute
    aggregation, health and performance measures on DuckDB, against a plain GROUP BY; with
    --spark the same on Spark beside it."""
    from smartcity.bench import analytics
    from smartcity.bench.harness import results_table

    with console.status("benchmarking...") as status:
        try:
            results = analytics.run(
                detectors=40 if small else detectors,
                lanes=lanes,
                threads=threads,
                spark=spark,
                spark_master=spark_master,
                progress=lambda s: status.update(f"benchmarking: {s}"),
            )
        except RuntimeError as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
    console.print(results_table(results))
