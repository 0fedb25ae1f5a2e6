"""Synthetic detector data shaped like TD's raw feed (for tests and ``smartcity bench
analytics``): stations along roads, 30-second samples per lane, a daily profile with morning
and evening peaks, a recurrent bottleneck, and faults injected on request.

Volumes are Poisson around a road-wide profile (so neighbours correlate, as real ones do);
occupancy follows from volume and speed with a 5.5 m effective vehicle length, in whole
percents as TD reports it; the speed is missing when no vehicle passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from smartcity.analytics.traffic.aggregate import day_bounds
from smartcity.analytics.traffic.health import day_number
from smartcity.analytics.traffic.locations import Location

LANES = ("Fast Lane", "Middle Lane", "Slow Lane")
FAULTS = ("insufficient_data", "card_off", "high_val", "intermittent", "constant")


@dataclass
class Layout:
    roads: int = 2
    per_road: int = 5
    lanes: int = 3
    spacing_km: float = 0.5
    # Station index along each road just downstream of which traffic queues in the peaks
    bottleneck_at: int | None = 3
    district_of_road: dict[int, str] = field(default_factory=dict)

    def detector(self, road: int, i: int) -> str:
        return f"SYN{road:02d}{i + 1:02d}"

    def locations(self) -> list[Location]:
        return [
            Location(
                detector_id=self.detector(r, i),
                road=f"Road {r}",
                district=self.district_of_road.get(r, f"District {r % 3}"),
                direction="Eastbound",
                chainage_km=i * self.spacing_km,
                free_flow_kmh=80.0,
            )
            for r in range(self.roads)
            for i in range(self.per_road)
        ]


def _profile(seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean vehicles per lane per 30 s and a congestion weight (0..1) by time of day."""
    h = seconds / 3600.0
    am = np.exp(-(((h - 8.5) / 1.0) ** 2))
    pm = np.exp(-(((h - 18.0) / 1.2) ** 2))
    base = 1.0 + 3.5 * np.clip(np.sin(np.pi * (h - 4.0) / 20.0), 0, None)
    flow = base + 5.0 * am + 4.0 * pm
    return flow, np.maximum(am, pm)


def generate(
    day: date,
    layout: Layout | None = None,
    *,
    faults: dict[str, str] | None = None,
    seed: int = 1,
    period_s: int = 30,
    roads: range | None = None,
) -> pa.Table:
    """One Hong Kong day of 30-second samples (SAMPLE_SCHEMA), faults by detector id;
    ``roads`` limits it to some roads (to generate a large layout a part at a time)."""
    lay = layout or Layout()
    which = roads if roads is not None else range(lay.roads)
    rng = np.random.default_rng([seed, day_number(day), which.start])
    start, _ = day_bounds(day_number(day))
    n = 86400 // period_s
    sod = np.arange(n) * period_s  # seconds of the Hong Kong day
    flow, jam = _profile(sod.astype(float))
    day_factor = 1.0 + 0.1 * rng.standard_normal()
    first = which.start * lay.per_road
    dets, lanes = len(which) * lay.per_road, lay.lanes
    det_index = np.repeat(np.arange(first, first + dets), lanes * n)
    lane_index = np.tile(np.repeat(np.arange(lanes), n), dets)
    slot = np.tile(np.arange(n), dets * lanes)
    pos = det_index % lay.per_road
    all_dets = lay.roads * lay.per_road
    scale = 0.8 + 0.4 * np.random.default_rng(seed).random(all_dets)  # each station's share
    lane_share = np.array([0.8, 1.0, 1.1, 0.9, 1.0])[:lanes]
    mean = flow[slot] * day_factor * scale[det_index] * lane_share[lane_index]
    volume = rng.poisson(mean).astype(np.int32)
    free = 80.0 - 6.0 * lane_index + rng.normal(0, 3, len(slot))
    speed = free * (1 - 0.25 * jam[slot])
    if lay.bottleneck_at is not None:  # the queue upstream of the bottleneck
        queued = (pos < lay.bottleneck_at) & (pos >= lay.bottleneck_at - 2)
        speed = np.where(queued, speed * (1 - 0.7 * jam[slot]), speed)
    speed = np.clip(speed, 5, 120)
    occupancy = np.clip(np.round(volume * 5.5 / (speed / 3.6) / period_s * 100), 0, 100)
    valid = np.ones(len(slot), dtype=bool)
    keep = np.ones(len(slot), dtype=bool)
    for detector, fault in (faults or {}).items():
        d = next(
            (
                i
                for i in range(all_dets)
                if lay.detector(i // lay.per_road, i % lay.per_road) == detector
            ),
            None,
        )
        if d is None:
            raise ValueError(f"no detector {detector} in the layout")
        m = det_index == d
        if fault == "insufficient_data":
            keep &= ~(m & (rng.random(len(slot)) < 0.55))
        elif fault == "card_off":
            volume[m], occupancy[m] = 0, 0
        elif fault == "high_val":
            hv = m & (slot % 4 == 0)
            occupancy[hv] = 70 + rng.integers(0, 25, hv.sum())
        elif fault == "intermittent":
            iv = m & (slot % 10 == 0)
            volume[iv] = 0
            occupancy[iv] = np.maximum(occupancy[iv], 3)
        elif fault == "constant":
            occupancy[m] = 7
            volume[m] = np.maximum(volume[m], 1)
        else:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
    names = np.array(
        [lay.detector(i // lay.per_road, i % lay.per_road) for i in range(all_dets)], dtype=object
    )
    lane_names = np.array((*LANES, "Middle Lane 2", "Middle Lane 3")[:lanes], dtype=object)
    t_us = (start + slot.astype(np.int64) * period_s) * 1_000_000
    has_speed = volume > 0
    return pa.table(
        {
            "detector_id": pa.DictionaryArray.from_arrays(
                det_index[keep].astype(np.int32), names.tolist()
            ).cast(pa.string()),
            "lane": pa.DictionaryArray.from_arrays(
                lane_index[keep].astype(np.int32), lane_names.tolist()
            ).cast(pa.string()),
            "period_start": pa.array(t_us[keep]).cast(pa.timestamp("us", tz="UTC")),
            "speed": pa.array(np.round(speed, 0)[keep], mask=~has_speed[keep]),
            "volume": pa.array(volume[keep], pa.int32()),
            "occupancy": pa.array(occupancy[keep].astype(float)),
            "valid": pa.array(valid[keep]),
        }
    )


def write_day(day: date, layout: Layout, path: str | Path, *, seed: int = 1) -> int:
    """A day of the layout to one Parquet file, a road at a time (bounded memory)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    from smartcity.analytics.traffic.feed import SAMPLE_SCHEMA

    with pq.ParquetWriter(out, SAMPLE_SCHEMA) as writer:
        for road in range(layout.roads):
            part = generate(day, layout, seed=seed, roads=range(road, road + 1))
            writer.write_table(part.cast(SAMPLE_SCHEMA))
            rows += part.num_rows
    return rows
