"""Orchestration: raw files into the sample store, then one Hong Kong day at a time through
5-minute aggregation, health, imputation, performance measures, bottlenecks and journey-time
reliability; every result a Parquet file under ``$SMARTCITY_HOME/analytics/traffic/``:

    samples/date=YYYY-MM-DD/*.parquet      30-second samples (raw files and live payloads)
    journeys/date=YYYY-MM-DD/*.parquet     journey-time readings
    segments/date=YYYY-MM-DD/*.parquet     processed segment speeds (irnAvgSpeed-all.xml)
    <result>/date=YYYY-MM-DD/part.parquet  lane5, station5, health_lanes, health, clean5,
                                           measures, bottleneck_slots, bottlenecks, reliability,
                                           segment_hours
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from smartcity.analytics.engine import DuckDBEngine, Engine
from smartcity.analytics.traffic import aggregate, feed, health, impute, measures
from smartcity.analytics.traffic.config import HKT_OFFSET_S, TrafficConfig
from smartcity.analytics.traffic.locations import Location, Network, read_csv
from smartcity.config import smartcity_home

RESULTS = (
    "lane5",
    "station5",
    "health_lanes",
    "health",
    "clean5",
    "measures",
    "bottleneck_slots",
    "bottlenecks",
    "reliability",
    "segment_hours",
)


def default_root() -> Path:
    return smartcity_home() / "analytics" / "traffic"


def hk_day(ts: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Hong Kong day numbers (days since 1970-01-01) of UTC timestamps."""
    seconds = pc.divide(ts.cast(pa.int64()), 1_000_000)
    return pc.divide(pc.add(seconds, HKT_OFFSET_S), 86400)


def day_of(number: int) -> date:
    return date(1970, 1, 1) + timedelta(days=number)


@dataclass
class Store:
    root: Path = field(default_factory=default_root)

    def dir(self, kind: str, day: date) -> Path:
        return self.root / kind / f"date={day.isoformat()}"

    def days(self, kind: str) -> list[date]:
        base = self.root / kind
        if not base.is_dir():
            return []
        return sorted(
            date.fromisoformat(p.name[5:]) for p in base.glob("date=*") if any(p.glob("*.parquet"))
        )

    def files(self, kind: str, day: date) -> list[Path]:
        return sorted(self.dir(kind, day).glob("*.parquet"))

    def write(self, kind: str, day: date, table: pa.Table) -> Path:
        out = self.dir(kind, day)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "part.parquet"
        tmp = out / ".part.parquet.tmp"
        pq.write_table(table, tmp)
        tmp.replace(path)  # readers never see half a file
        return path

    def read(self, kind: str, day: date) -> pa.Table | None:
        files = self.files(kind, day)
        return pa.concat_tables([pq.read_table(f) for f in files]) if files else None

    def add_parts(self, kind: str, table: pa.Table, times: str, name: str) -> list[date]:
        """Split by Hong Kong day and add as new part files (named by content: idempotent)."""
        if table.num_rows == 0:
            return []
        days = hk_day(table[times])
        written = []
        for number in pc.unique(days).to_pylist():
            part = table.filter(pc.equal(days, number))
            digest = _digest(part)
            out = self.dir(kind, day_of(number))
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{name}-{digest}.parquet"
            if not path.exists():
                pq.write_table(part, path)
            written.append(day_of(number))
        return written

    def compact(
        self, kind: str, day: date, dedupe: Callable[[pa.Table], pa.Table]
    ) -> pa.Table | None:
        """All parts of a day as one deduplicated file."""
        files = self.files(kind, day)
        if not files:
            return None
        table = pa.concat_tables([pq.read_table(f) for f in files])
        if len(files) > 1:
            table = dedupe(table)
            self.write(kind, day, table)
            for f in files:
                if f.name != "part.parquet":
                    f.unlink()
        return table


def _digest(table: pa.Table) -> str:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha1(sink.getvalue().to_pybytes()).hexdigest()[:16]


def ingest_raw(sources: Sequence[str | Path], store: Store) -> tuple[feed.ReadReport, list[date]]:
    report = feed.ReadReport()
    table = feed.read_raw(list(sources), report=report)
    return report, store.add_parts("samples", table, "period_start", "raw")


def record_live(raw: bytes, fetched_at: datetime | None = None, root: Path | None = None) -> int:
    """For a connector: keep one fetched ``rawSpeedVol-all.xml`` payload for the analyses."""
    table = feed.samples_from_bytes(raw, fetched_at=fetched_at)
    Store(root or default_root()).add_parts("samples", table, "period_start", "live")
    return table.num_rows


def ingest_journeys(sources: Sequence[str | Path], store: Store) -> list[date]:
    return store.add_parts("journeys", feed.read_journey_times(list(sources)), "captured_at", "jt")


def ingest_segments(sources: Sequence[str | Path], store: Store) -> list[date]:
    return store.add_parts("segments", feed.read_segments(list(sources)), "observed_at", "irn")


def _dedupe_segments(table: pa.Table) -> pa.Table:
    return (
        table.group_by(["segment_id", "observed_at"])
        .aggregate([("speed", "max"), ("valid", "max")])
        .rename_columns(["segment_id", "observed_at", "speed", "valid"])
    )


def _dedupe_journeys(table: pa.Table) -> pa.Table:
    return (
        table.group_by(["location_id", "destination_id", "captured_at"])
        .aggregate([("minutes", "max"), ("colour", "max")])
        .rename_columns(["location_id", "destination_id", "captured_at", "minutes", "colour"])
    )


@dataclass
class DayResult:
    day: date
    samples: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def _detectors(
    day: date,
    samples: pa.Table,
    store: Store,
    eng: Engine,
    cfg: TrafficConfig,
    locations: list[Location] | None,
    result: DayResult,
) -> None:
    """5-minute values, health, imputation, measures and bottlenecks for one day."""
    result.samples = samples.num_rows
    number = health.day_number(day)
    eng.register_arrow("samples", samples)
    start, end = aggregate.day_bounds(number)
    lane5 = aggregate.lane_5min(eng, "samples")
    eng.register_arrow("lane5", lane5)
    station5 = aggregate.station_5min(eng, "lane5")
    lanes_health = health.lane_health(eng, cfg.health, "samples", number)
    stations_health = health.station_health(lanes_health, cfg.health)
    network = Network.for_detectors(station5["detector_id"].to_pylist(), locations, cfg.measures)
    known = [d for d in network.by_id if d not in set(stations_health["detector_id"].to_pylist())]
    if known:  # listed but silent all day: insufficient data
        stations_health = pa.concat_tables(
            [
                stations_health,
                pa.table(
                    {
                        "detector_id": pa.array(known, pa.string()),
                        "dayn": pa.array([number] * len(known), pa.int64()),
                        "status": pa.array(["insufficient_data"] * len(known), pa.string()),
                        "samples": pa.array([0] * len(known), pa.int64()),
                        "expected": pa.array(
                            [cfg.health.expected_samples] * len(known), pa.int64()
                        ),
                        "lanes": pa.array([0] * len(known), pa.int64()),
                    }
                ),
            ]
        )
    for kind, table in (
        ("lane5", lane5),
        ("station5", station5),
        ("health_lanes", lanes_health),
        ("health", stations_health),
    ):
        store.write(kind, day, table)
        result.counts[kind] = table.num_rows

    # Imputation: the day plus the good history before it.
    hist5, hist_health = [station5], [stations_health]
    for back in range(1, cfg.impute.history_days + 1):
        d = day - timedelta(days=back)
        s5, h = store.read("station5", d), store.read("health", d)
        if s5 is not None and h is not None:
            hist5.append(s5.select(["detector_id", "t5", "volume", "occupancy", "speed"]))
            hist_health.append(h.select(["detector_id", "dayn", "status"]))
    station_cols = ["detector_id", "t5", "volume", "occupancy", "speed"]
    clean = impute.impute_day(
        pa.concat_tables([t.select(station_cols) for t in hist5]),
        pa.concat_tables([t.select(["detector_id", "dayn", "status"]) for t in hist_health]),
        network,
        number,
        cfg.impute,
    )
    clean = clean.filter(pc.and_(pc.greater_equal(clean["t5"], start), pc.less(clean["t5"], end)))
    store.write("clean5", day, clean)
    result.counts["clean5"] = clean.num_rows

    eng.register_arrow("clean5", clean)
    eng.register_arrow("locations", network.table())
    eng.register_arrow("pairs", network.pairs())
    perf = measures.measures(eng, cfg.measures)
    store.write("measures", day, perf)
    slots, daily = measures.bottlenecks(eng, cfg.bottleneck)
    store.write("bottleneck_slots", day, slots)
    store.write("bottlenecks", day, daily)
    result.counts.update(measures=perf.num_rows, bottlenecks=daily.num_rows)


def run_day(
    day: date,
    store: Store,
    *,
    config: TrafficConfig | None = None,
    locations: list[Location] | None = None,
    engine: Engine | None = None,
) -> DayResult:
    cfg = config or TrafficConfig()
    own = engine is None
    eng: Engine = engine or DuckDBEngine()
    result = DayResult(day)
    try:
        samples = store.compact("samples", day, feed.dedupe)
        if samples is not None:
            _detectors(day, samples, store, eng, cfg, locations, result)

        segments = store.compact("segments", day, _dedupe_segments)
        if segments is not None:
            eng.register_arrow("segments", segments)
            hours = eng.query(measures.segment_hours_sql(cfg.measures) + " ORDER BY segment_id, t")
            store.write("segment_hours", day, hours)
            result.counts["segment_hours"] = hours.num_rows

        journeys = store.compact("journeys", day, _dedupe_journeys)
        if journeys is not None:
            eng.register_arrow("journeys", journeys)
            rel = measures.reliability(eng, "journeys")
            store.write("reliability", day, rel)
            result.counts["reliability"] = rel.num_rows
        if not result.counts:
            raise FileNotFoundError(
                f"nothing stored for {day}: give --raw (or --segments, --journey-times) first"
            )
        return result
    finally:
        if own:
            eng.close()


def days_to_run(store: Store, day: date | None, since: datetime | None) -> list[date]:
    available = sorted(
        set(store.days("samples")) | set(store.days("segments")) | set(store.days("journeys"))
    )
    if day is not None:
        return [day]
    if since is not None:
        # A naive time is Hong Kong time; the store's days are Hong Kong days.
        first = since.astimezone(feed.HKT).date() if since.tzinfo else since.date()
        return [d for d in available if d >= first]
    done = set(store.days("health")) | set(store.days("segment_hours"))
    todo = [d for d in available if d not in done]
    if available and available[-1] not in todo:
        todo.append(available[-1])  # the latest day may have grown
    return todo


def run(
    *,
    store: Store | None = None,
    day: date | None = None,
    since: datetime | None = None,
    raw: Sequence[str | Path] = (),
    journeys: Sequence[str | Path] = (),
    segments: Sequence[str | Path] = (),
    locations_csv: str | Path | None = None,
    config: TrafficConfig | None = None,
    progress: Callable[[str], None] = lambda _s: None,
) -> dict[str, Any]:
    st = store or Store()
    summary: dict[str, Any] = {"days": {}}
    if raw:
        progress("reading raw detector files")
        report, _ = ingest_raw(raw, st)
        summary["ingested"] = {
            "files": report.files,
            "rows": report.rows,
            "duplicates": report.duplicates,
            "invalid": report.invalid,
            "speed_placeholders": report.speed_placeholders,
            "midnight_fixed": report.midnight_fixed,
            "missing_periods": report.missing_periods,
        }
    if journeys:
        progress("reading journey times")
        ingest_journeys(journeys, st)
    if segments:
        progress("reading segment speeds")
        ingest_segments(segments, st)
    locs: list[Location] | None = None
    saved = st.root / "locations.csv"
    if locations_csv is not None:
        locs = read_csv(locations_csv)
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_bytes(Path(locations_csv).read_bytes())
    elif saved.exists():
        locs = read_csv(saved)
    by_day: dict[str, dict[str, int]] = defaultdict(dict)
    for d in days_to_run(st, day, since):
        progress(f"analysing {d}")
        res = run_day(d, st, config=config, locations=locs)
        by_day[d.isoformat()] = {"samples": res.samples, **res.counts}
    summary["days"] = dict(by_day)
    return summary
