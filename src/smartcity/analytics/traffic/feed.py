"""Read the Transport Department's traffic feeds into Arrow tables (and Parquet).

* ``rawSpeedVol-all.xml`` (strategic/major road detectors) and its smart-lamppost variant (the
  same ``<date><periods><period><detectors><detector><lanes><lane>`` shape, other detector
  ids): one row per detector lane and 30-second period (:data:`SAMPLE_SCHEMA`).
* ``irnAvgSpeed-all.xml``: one row per road network segment and time (:data:`SEGMENT_SCHEMA`).
* ``journeytime.xml``: one row per indicator location, destination and capture time
  (:data:`JOURNEY_SCHEMA`).

Each reader takes a file, a directory of archived files (read in name order), or raw bytes
(the live path: :func:`samples_from_bytes` is what a connector calls with the payload it
fetched). The XML is read streaming (``iterparse``), so a day of archived files never sits in
memory as a tree.

The raw feed's quirks, handled here:

* files overlap (each carries two periods and is fetched more often than it changes): rows
  are deduplicated on (period, detector, lane), a valid reading winning over an invalid one,
  then the later file over the earlier;
* with a volume of 0 the speed field holds a placeholder (the road's speed limit), not a
  measurement: the speed is left missing;
* the 00:00 period carries the previous day's ``<date>`` (it comes in a file with the 23:59:30
  period, dated by that one): a period whose start time is earlier than the one before it in
  the file is moved to the next day, and so is every period after it; with ``fetched_at``
  known (the live path), the date that puts the period nearest to it is taken instead;
* periods go missing: nothing is invented here; :attr:`ReadReport.missing_periods` counts
  the 30-second periods absent between the first and last period read, and the health and
  5-minute analyses account for absent samples.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HKT = timezone(timedelta(hours=8), "HKT")
PERIOD_S = 30

SAMPLE_SCHEMA = pa.schema(
    [
        ("detector_id", pa.string()),
        ("lane", pa.string()),
        ("period_start", pa.timestamp("us", tz="UTC")),
        ("speed", pa.float64()),  # km/h; missing when volume is 0 (the feed's placeholder)
        ("volume", pa.int32()),  # vehicles in the 30 s
        ("occupancy", pa.float64()),  # percent of the 30 s
        ("valid", pa.bool_()),
    ]
)
SEGMENT_SCHEMA = pa.schema(
    [
        ("segment_id", pa.string()),
        ("observed_at", pa.timestamp("us", tz="UTC")),
        ("speed", pa.float64()),
        ("valid", pa.bool_()),
    ]
)
JOURNEY_SCHEMA = pa.schema(
    [
        ("location_id", pa.string()),
        ("destination_id", pa.string()),
        ("captured_at", pa.timestamp("us", tz="UTC")),
        ("minutes", pa.float64()),
        ("colour", pa.int8()),
    ]
)


class FeedError(ValueError):
    """A file that is not the expected feed (the message says which file and why)."""


@dataclass
class ReadReport:
    files: int = 0
    periods: int = 0
    rows: int = 0
    duplicates: int = 0
    invalid: int = 0
    speed_placeholders: int = 0
    midnight_fixed: int = 0
    missing_periods: int = 0
    problems: list[str] = field(default_factory=list)


Source = str | Path | bytes


def expand(sources: Iterable[str | Path], pattern: str = "*.xml") -> list[Path]:
    """Files and directories (read recursively, in name order) -> the files to read."""
    out: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob(pattern) if p.is_file()))
        elif path.is_file():
            out.append(path)
        else:
            raise FeedError(f"{path}: no such file or directory")
    return out


ROOT_TAG = re.compile(rb"<([A-Za-z_][\w.:-]*)")


def _events(
    source: Source, what: str, root_suffix: str | None = None
) -> Iterator[tuple[str, ET.Element]]:
    """``end`` events of the document (only those: half the Python work of start+end)."""
    stream: BinaryIO
    if isinstance(source, bytes):
        head, name = source[:4096], what
    else:
        with open(source, "rb") as f:
            head, name = f.read(4096), str(source)
    # No DTDs: entity expansion is how an XML payload turns into a memory bomb.
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise FeedError(f"{name}: document type declarations are not accepted")
    if root_suffix is not None:
        body = re.sub(rb"<\?.*?\?>|<!--.*?-->", b"", head, flags=re.S)
        match = ROOT_TAG.search(body)
        root = _local(match.group(1).decode(errors="replace")) if match else ""
        if match and not root.endswith(root_suffix):
            raise FeedError(f"{name}: expected <raw_{root_suffix}>, got <{root}>; is it {what}?")
    stream = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    try:
        yield from ET.iterparse(stream, events=("end",))
    except ET.ParseError as exc:
        raise FeedError(f"{name} is not well-formed XML ({exc}); is it {what}?") from None
    finally:
        stream.close()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _number(text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        return None


class _Columns:
    """Column lists, turned into Arrow every ``BATCH`` rows: a day of archived files is
    millions of lane readings, and Python objects for all of them would not fit."""

    BATCH = 250_000

    def __init__(self) -> None:
        self.batches: list[pa.Table] = []
        self._clear()

    def _clear(self) -> None:
        self.detector: list[str] = []
        self.lane: list[str] = []
        self.start: list[datetime] = []
        self.speed: list[float | None] = []
        self.volume: list[int | None] = []
        self.occupancy: list[float | None] = []
        self.valid: list[bool] = []
        self.seq: list[int] = []

    def maybe_flush(self) -> None:
        if len(self.seq) >= self.BATCH:
            self.batches.append(self._batch())
            self._clear()

    def table(self) -> pa.Table:
        if self.seq or not self.batches:
            self.batches.append(self._batch())
            self._clear()
        return pa.concat_tables(self.batches)

    def _batch(self) -> pa.Table:
        return pa.table(
            {
                "detector_id": pa.array(self.detector, pa.string()),
                "lane": pa.array(self.lane, pa.string()),
                "period_start": pa.array(self.start, pa.timestamp("us", tz="UTC")),
                "speed": pa.array(self.speed, pa.float64()),
                "volume": pa.array(self.volume, pa.int32()),
                "occupancy": pa.array(self.occupancy, pa.float64()),
                "valid": pa.array(self.valid, pa.bool_()),
                "_seq": pa.array(self.seq, pa.int32()),
            }
        )


def _period_day(day: date, start: time, previous: time | None, fetched_at: datetime | None) -> date:
    if fetched_at is not None:
        candidates = [day, day + timedelta(days=1)]
        return min(
            candidates,
            key=lambda d: abs(datetime.combine(d, start, tzinfo=HKT) - fetched_at),
        )
    if previous is not None and start < previous:
        return day + timedelta(days=1)  # the file wrapped past midnight: the 00:00 period
    return day


def _read_raw_one(
    source: Source, seq: int, cols: _Columns, report: ReadReport, fetched_at: datetime | None
) -> None:
    day: date | None = None
    previous: time | None = None
    shift = False  # once a file wraps past midnight, later periods are the next day too
    period_day: date | None = None
    start_utc: datetime | None = None
    detector_id = ""
    name = "the raw detector feed" if isinstance(source, bytes) else str(source)
    for _event, el in _events(
        source, "the raw detector feed (rawSpeedVol-all.xml)", "speed_volume_list"
    ):
        tag = el.tag if "}" not in el.tag else _local(el.tag)
        if tag == "date" and day is None:
            try:
                day = date.fromisoformat((el.text or "").strip())
            except ValueError:
                raise FeedError(f"{name}: unreadable <date> {el.text!r}") from None
        elif tag == "period_from":
            if day is None:
                raise FeedError(f"{name}: a period before the file's <date>")
            try:
                start = time.fromisoformat((el.text or "").strip())
            except ValueError:
                report.problems.append(f"{name}: unreadable period_from {el.text!r}")
                start_utc = None
                continue
            d = _period_day(day, start, previous, fetched_at)
            if shift and fetched_at is None:
                d = max(d, day + timedelta(days=1))
            if d != day:
                report.midnight_fixed += 1
                shift = True
            period_day = d
            previous = start
            start_utc = datetime.combine(d, start, tzinfo=HKT).astimezone(UTC)
            report.periods += 1
        elif tag == "detector_id":
            detector_id = (el.text or "").strip()
        elif tag == "lane" and start_utc is not None and period_day is not None:
            values = {
                (c.tag if "}" not in c.tag else _local(c.tag)): (c.text or "").strip() for c in el
            }
            volume = _number(values.get("volume"))
            speed = _number(values.get("speed"))
            occupancy = _number(values.get("occupancy"))
            valid = values.get("valid", "").upper() == "Y"
            if volume is not None and volume <= 0:
                if speed is not None:
                    report.speed_placeholders += 1
                speed = None
            if speed is not None and speed < 0:
                speed = None
            if occupancy is not None and not 0 <= occupancy <= 100:
                occupancy = None
            if volume is not None and volume < 0:
                volume = None
            cols.detector.append(detector_id)
            cols.lane.append(values.get("lane_id") or "?")
            cols.start.append(start_utc)
            cols.speed.append(speed)
            cols.volume.append(None if volume is None else int(volume))
            cols.occupancy.append(occupancy)
            cols.valid.append(valid)
            cols.seq.append(seq)
            report.invalid += not valid
            el.clear()
            cols.maybe_flush()
        elif tag == "detector":
            el.clear()
    if day is None:
        raise FeedError(f"{name}: no <date>; is this rawSpeedVol-all.xml?")


def read_raw(
    sources: Sequence[Source] | Source,
    *,
    fetched_at: datetime | None = None,
    report: ReadReport | None = None,
    on_file: Callable[[int, int], None] | None = None,
) -> pa.Table:
    """The 30-second samples in these files/directories/payloads, deduplicated;
    ``on_file(done, total)`` after each file (for a progress bar)."""
    items: list[Source] = [sources] if isinstance(sources, bytes | str | Path) else list(sources)
    files: list[Source] = []
    for item in items:
        files.extend([item] if isinstance(item, bytes) else expand([item]))
    report = report if report is not None else ReadReport()
    cols = _Columns()
    for seq, source in enumerate(files):
        _read_raw_one(source, seq, cols, report, fetched_at)
        report.files += 1
        if on_file is not None:
            on_file(seq + 1, len(files))
    read = cols.table()
    table = dedupe(read)
    report.duplicates += read.num_rows - table.num_rows
    report.rows = table.num_rows
    report.missing_periods = missing_periods(table)
    return table


def samples_from_bytes(raw: bytes, *, fetched_at: datetime | None = None) -> pa.Table:
    """The live path: one fetched ``rawSpeedVol-all.xml`` payload -> samples."""
    return read_raw([raw], fetched_at=fetched_at)


def dedupe(table: pa.Table) -> pa.Table:
    """One row per (detector, lane, period): valid beats invalid, then the later file."""
    if table.num_rows == 0:
        return table.drop_columns(["_seq"]) if "_seq" in table.column_names else table
    if "_seq" not in table.column_names:
        table = table.append_column("_seq", pa.array(np.zeros(table.num_rows, np.int32)))
    order = pc.sort_indices(
        table,
        sort_keys=[
            ("detector_id", "ascending"),
            ("lane", "ascending"),
            ("period_start", "ascending"),
            ("valid", "descending"),
            ("_seq", "descending"),
        ],
    )
    t = table.take(order)
    det = t["detector_id"].to_numpy(zero_copy_only=False)
    lane = t["lane"].to_numpy(zero_copy_only=False)
    start = t["period_start"].cast(pa.int64()).to_numpy()
    keep = np.ones(t.num_rows, dtype=bool)
    keep[1:] = (det[1:] != det[:-1]) | (lane[1:] != lane[:-1]) | (start[1:] != start[:-1])
    return t.filter(pa.array(keep)).drop_columns(["_seq"])


def missing_periods(table: pa.Table) -> int:
    """30-second periods absent between the first and the last period of the table."""
    if table.num_rows == 0:
        return 0
    starts = pc.unique(table["period_start"]).cast(pa.int64()).to_numpy() // 1_000_000
    span = int(starts.max() - starts.min()) // PERIOD_S + 1
    return span - len(starts)


def write_parquet(table: pa.Table, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    return out


# --- processed segment speeds and journey times -------------------------------------------


def read_segments(sources: Sequence[Source] | Source) -> pa.Table:
    """``irnAvgSpeed-all.xml`` files -> (segment_id, observed_at, speed, valid), deduplicated."""
    items = [sources] if isinstance(sources, bytes | str | Path) else list(sources)
    rows: dict[tuple[str, datetime], tuple[float | None, bool]] = {}
    for item in items:
        for source in [item] if isinstance(item, bytes) else expand([item]):
            day: date | None = None
            at: datetime | None = None
            for event, el in _events(source, "irnAvgSpeed-all.xml"):
                if event != "end":
                    continue
                tag = _local(el.tag)
                if tag == "date":
                    day = date.fromisoformat((el.text or "").strip())
                elif tag == "time" and day is not None:
                    clock = time.fromisoformat((el.text or "").strip())
                    at = datetime.combine(day, clock, tzinfo=HKT).astimezone(UTC)
                elif tag == "segment":
                    if at is None:
                        raise FeedError(f"{source!s:.80}: a segment before <date>/<time>")
                    values = {_local(c.tag): (c.text or "").strip() for c in el}
                    segment = values.get("segment_id")
                    if segment:
                        valid = values.get("valid", "").upper() == "Y"
                        rows[(segment, at)] = (_number(values.get("speed")), valid)
                    el.clear()
    return pa.table(
        {
            "segment_id": [k[0] for k in rows],
            "observed_at": pa.array([k[1] for k in rows], pa.timestamp("us", tz="UTC")),
            "speed": pa.array([v[0] for v in rows.values()], pa.float64()),
            "valid": pa.array([v[1] for v in rows.values()], pa.bool_()),
        },
        schema=SEGMENT_SCHEMA,
    )


def read_journey_times(sources: Sequence[Source] | Source) -> pa.Table:
    """``journeytime.xml`` files -> one row per (location, destination, capture time).

    Only type-1 records carry minutes; the others (messages) keep a missing ``minutes``."""
    items = [sources] if isinstance(sources, bytes | str | Path) else list(sources)
    rows: dict[tuple[str, str, datetime], tuple[float | None, int | None]] = {}
    for item in items:
        for source in [item] if isinstance(item, bytes) else expand([item]):
            for event, el in _events(source, "journeytime.xml"):
                if event != "end" or _local(el.tag) != "jtis_journey_time":
                    continue
                v = {_local(c.tag): (c.text or "").strip() for c in el}
                el.clear()
                loc, dest = v.get("LOCATION_ID"), v.get("DESTINATION_ID")
                try:
                    captured = datetime.fromisoformat(v.get("CAPTURE_DATE", ""))
                except ValueError:
                    continue
                if not loc or not dest:
                    continue
                if captured.tzinfo is None:
                    captured = captured.replace(tzinfo=HKT)
                minutes = _number(v.get("JOURNEY_DATA"))
                if v.get("JOURNEY_TYPE") != "1" or minutes is None or minutes < 0:
                    minutes = None
                colour = _number(v.get("COLOUR_ID"))
                rows[(loc, dest, captured.astimezone(UTC))] = (
                    minutes,
                    None if colour is None else int(colour),
                )
    return pa.table(
        {
            "location_id": [k[0] for k in rows],
            "destination_id": [k[1] for k in rows],
            "captured_at": pa.array([k[2] for k in rows], pa.timestamp("us", tz="UTC")),
            "minutes": pa.array([v[0] for v in rows.values()], pa.float64()),
            "colour": pa.array([v[1] for v in rows.values()], pa.int8()),
        },
        schema=JOURNEY_SCHEMA,
    )
