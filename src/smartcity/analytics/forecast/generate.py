"""Synthetic multi-week detector speeds for the forecast evaluation (wide CSV + adjacency).

Real multi-day detector history is scarce, so this draws one with the structure that makes
traffic forecasting hard and that published work exploits (METR-LA/PEMS-BAY style):

- roads are chains of detectors about a kilometre apart; each detector has its own free-flow
  speed, its own peak strength and a direction (inbound roads peak in the morning, outbound in
  the evening);
- demand follows a daily curve with a weekly one on top (weekday peaks, softer weekends with
  a midday hump), scaled day to day by a road-wide factor (some days are worse than others);
- speed falls non-linearly with demand (free flow until demand nears capacity);
- a slow road-wide fluctuation (spatially correlated) and a detector-level one (AR(1)) plus
  measurement noise of 5-minute averages;
- incidents block a detector: its speed collapses and the queue spreads upstream one detector
  every few minutes (a shockwave), then dissolves after clearance;
- missing samples (0 in the file, as in METR-LA): isolated drops, detector outages of hours,
  and whole time steps lost.

It lives in analytics, not in the live simulator, because it writes history offline in the
evaluation's own file format rather than sending device readings; the live simulator's
traffic model is per-reading and stateless, and cannot produce propagating queues.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STEP_S = 300
DAY_STEPS = 86_400 // STEP_S


@dataclass(frozen=True)
class History:
    ids: list[str]
    values: np.ndarray  # (T, N) speeds in km/h, 0 = missing
    edges: list[tuple[str, str, float]]  # (upstream, downstream, weight)


def _bump(hours: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((hours - centre) / width) ** 2)


def generate(
    sensors: int = 50, days: int = 28, *, seed: int = 1, per_road: int = 10, missing: float = 0.02
) -> History:
    """``sensors`` detectors over ``days`` days at 5-minute steps, starting Monday 00:00."""
    if sensors < 1 or days < 1:
        raise ValueError("need at least one sensor and one day")
    rng = np.random.default_rng(seed)
    steps = days * DAY_STEPS
    roads = [list(range(s, min(s + per_road, sensors))) for s in range(0, sensors, per_road)]
    road_of = np.empty(sensors, dtype=int)
    pos = np.empty(sensors, dtype=int)  # 0 = most upstream
    for r, members in enumerate(roads):
        road_of[members] = r
        pos[members] = np.arange(len(members))
    n_roads = len(roads)
    inbound = rng.random(n_roads) < 0.5

    free = rng.uniform(55, 95, sensors)
    # Detectors nearer the end of an inbound road (the centre) see heavier peaks.
    strength = rng.uniform(0.6, 1.0, sensors) * (0.8 + 0.2 * pos / max(per_road - 1, 1))
    shift = rng.normal(0, 0.25, sensors) + 0.08 * pos  # queue builds upstream a little later

    t = np.arange(steps)
    hours = (t % DAY_STEPS) * 24 / DAY_STEPS
    weekday = (t // DAY_STEPS) % 7
    weekend = weekday >= 5

    # demand (T, N): base + peaks by direction; weekends get a midday hump instead.
    h = hours[:, None] - shift[None, :]
    am = _bump(h, 8.3, 1.0)
    pm = _bump(h, 18.0, 1.2)
    ib = inbound[road_of][None, :]
    peaks = np.where(ib, 1.0 * am + 0.55 * pm, 0.5 * am + 1.0 * pm)
    night = 0.15 + 0.35 * _bump(hours, 14, 5.0)[:, None]
    hump = 0.55 * _bump(h, 14.0, 2.5)
    friday = np.where(weekday == 4, 1.1, 1.0)[:, None]
    demand = night + np.where(weekend[:, None], hump, peaks * friday) * strength[None, :]
    # Day-to-day: a road-wide factor per day (AR across days).
    daily = np.empty((days, n_roads))
    daily[0] = rng.normal(1, 0.08, n_roads)
    for d in range(1, days):
        daily[d] = 1 + 0.4 * (daily[d - 1] - 1) + rng.normal(0, 0.08, n_roads)
    demand = demand * daily[t // DAY_STEPS][:, road_of]
    # Slow road-wide fluctuation (AR(1), ~1 h memory) shared by the detectors of a road.
    road_noise = _ar1(rng, steps, n_roads, phi=0.95, sd=0.05)
    demand = demand + road_noise[:, road_of]
    demand = np.clip(demand, 0.0, 1.4)

    speed = free[None, :] * (1.05 - 0.75 * np.clip(demand, 0, None) ** 3)
    speed += _ar1(rng, steps, sensors, phi=0.8, sd=2.0)  # detector-level, km/h
    speed = _incidents(rng, speed, free, roads, days)
    speed += rng.normal(0, 1.5, speed.shape)  # 5-minute average noise
    speed = np.clip(speed, 3.0, free[None, :] * 1.2)
    speed = np.round(speed, 1)

    # Missing samples: isolated, outages, lost time steps.
    lost = rng.random(speed.shape) < missing
    for _ in range(max(1, sensors * days // 40)):
        i = rng.integers(sensors)
        s0 = rng.integers(steps)
        lost[s0 : s0 + rng.integers(12, 12 * 8), i] = True
    lost[rng.random(steps) < missing / 4, :] = True
    speed[lost] = 0.0

    ids = [f"S{i:04d}" for i in range(sensors)]
    edges = [(ids[a], ids[b], 1.0) for members in roads for a, b in itertools.pairwise(members)]
    return History(ids, speed, edges)


def _ar1(rng: np.random.Generator, steps: int, width: int, *, phi: float, sd: float) -> np.ndarray:
    e = rng.normal(0, sd * np.sqrt(1 - phi**2), (steps, width))
    out = np.empty_like(e)
    out[0] = rng.normal(0, sd, width)
    for k in range(1, steps):
        out[k] = phi * out[k - 1] + e[k]
    return out


def _incidents(
    rng: np.random.Generator,
    speed: np.ndarray,
    free: np.ndarray,
    roads: list[list[int]],
    days: int,
) -> np.ndarray:
    """About one incident per road every two days, mostly in the daytime."""
    steps = speed.shape[0]
    out = speed.copy()
    for members in roads:
        for _ in range(rng.poisson(0.5 * days)):
            day = rng.integers(days)
            start = day * DAY_STEPS + int(rng.uniform(6, 22) * 12)
            duration = int(rng.integers(3, 15))  # 15-75 min blocked
            where = int(rng.integers(len(members)))
            severity = rng.uniform(0.2, 0.5)  # speed falls to this fraction of free flow
            # Queue: upstream detector k is reached k*lag steps after the start and clears
            # k*lag/2 steps after the blockage ends (queues dissolve faster than they grow).
            lag = int(rng.integers(1, 3))
            for k in range(where + 1):
                sensor = members[where - k]
                a = start + k * lag
                b = start + duration + k * lag // 2 + k
                if a >= b or a >= steps:
                    continue
                b = min(b, steps)
                depth = severity + (1 - severity) * min(1.0, 0.25 * k)
                if depth >= 0.95:
                    break
                target = free[sensor] * depth
                out[a:b, sensor] = np.minimum(out[a:b, sensor], target)
                # Recovery ramp over 3 steps.
                for j in range(1, 4):
                    if b + j - 1 < steps:
                        frac = j / 4
                        ramp = target + frac * (speed[b + j - 1, sensor] - target)
                        out[b + j - 1, sensor] = min(out[b + j - 1, sensor], ramp)
    return out


def write_wide_csv(history: History, path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(history.ids)
        for row in history.values:
            w.writerow([f"{v:g}" for v in row])


def write_adjacency(history: History, path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["from", "to", "weight"])
        w.writerows(history.edges)
