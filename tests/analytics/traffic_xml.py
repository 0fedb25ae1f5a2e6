"""Write samples back out as TD raw feed XML (for tests that start from files)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

HKT = timezone(timedelta(hours=8))


def lane_xml(lane: str, speed: Any, occ: Any, vol: Any, valid: str = "Y") -> str:
    return (
        f"<lane><lane_id>{lane}</lane_id><speed>{speed}</speed><occupancy>{occ}</occupancy>"
        f"<volume>{vol}</volume><s.d.>0</s.d.><valid>{valid}</valid></lane>"
    )


def feed_xml(
    day: str,
    periods: list[tuple[str, str, dict[str, list[str]]]],
    root: str = "raw_speed_volume_list",
) -> str:
    """periods: (from, to, {detector_id: [lane xml, ...]})."""
    body = "".join(
        f"<period><period_from>{f}</period_from><period_to>{t}</period_to><detectors>"
        + "".join(
            f"<detector><detector_id>{d}</detector_id><direction>North East</direction>"
            f"<lanes>{''.join(lanes)}</lanes></detector>"
            for d, lanes in dets.items()
        )
        + "</detectors></period>"
        for f, t, dets in periods
    )
    head = '<?xml version="1.0" encoding="utf-8"?>'
    return f"{head}<{root}><date>{day}</date><periods>{body}</periods></{root}>"


def samples_to_xml(table: pa.Table, path: Path) -> Path:
    """TD-shaped archive: one file per 30 seconds holding that period and the one before it
    (so consecutive files overlap), dated as TD dates them: the Hong Kong day, except that a
    period starting at 00:00:00 carries the previous day's date."""
    by_period: dict[datetime, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for row in table.to_pylist():
        speed = row["speed"] if row["speed"] is not None else 70  # the placeholder
        by_period[row["period_start"]][row["detector_id"]].append(
            lane_xml(
                row["lane"],
                int(speed),
                int(row["occupancy"]),
                row["volume"],
                "Y" if row["valid"] else "N",
            )
        )
    path.mkdir(parents=True, exist_ok=True)
    starts = sorted(by_period)
    for prev, start in zip([None, *starts], starts, strict=False):
        periods = []
        for p in (prev, start):
            if p is None:
                continue
            local = p.astimezone(HKT)
            end = local + timedelta(seconds=30)
            periods.append((local.strftime("%H:%M:%S"), end.strftime("%H:%M:%S"), by_period[p]))
        local = start.astimezone(HKT)
        dated: date = local.date()
        if local.strftime("%H:%M:%S") == "00:00:00" and prev is not None:
            dated -= timedelta(days=1)
        name = local.strftime("rawSpeedVol-%Y%m%d-%H%M%S.xml")
        (path / name).write_text(feed_xml(dated.isoformat(), periods))
    return path


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
