"""Imputation of bad detectors' 5-minute values, after PeMS (Chen, Kwon, Skabardonis and
Varaiya, TRB 2003): a detector that is not ``good`` on a day has its values replaced by
estimates from linear relations fitted on history in which it and a neighbour were both good.

For each value (volume, occupancy, speed) and 5-minute slot, the first level that gives an
estimate is used, and named in ``method``:

1. ``adjacent``: the stations next to it along the road (same road and direction), each
   giving ``a + b * neighbour``, averaged;
2. ``wider``: the same with stations up to ``wider_hops`` positions away;
3. ``profile``: the detector's own mean at that time of day over its good history.

With none of them (no good history yet), the measured values stay, ``method`` "unimputed".

Fitting is a least-squares line per (detector, neighbour) pair: numpy, not SQL.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from smartcity.analytics.traffic.aggregate import SLOT_S, day_bounds
from smartcity.analytics.traffic.config import ImputeConfig
from smartcity.analytics.traffic.locations import Network

VALUES = ("volume", "occupancy", "speed")
PER_DAY = 86400 // SLOT_S


def impute_day(
    station5: pa.Table,
    health: pa.Table,
    network: Network,
    day: int,
    config: ImputeConfig | None = None,
) -> pa.Table:
    """``station5`` (detector_id, t5, volume, occupancy, speed) over the history and ``day``,
    ``health`` (detector_id, dayn, status) -> the day's values with bad detectors imputed:
    (detector_id, t5, period_start, volume, occupancy, speed, imputed, method)."""
    cfg = config or ImputeConfig()
    first_day = day - cfg.history_days
    origin, _ = day_bounds(first_day)
    ndays = day - first_day + 1
    detectors = sorted(set(network.by_id) | set(station5["detector_id"].to_pylist()))
    index = {d: i for i, d in enumerate(detectors)}
    nslots = ndays * PER_DAY

    ids = np.array([index[d] for d in station5["detector_id"].to_pylist()], dtype=np.int64)
    slot = (station5["t5"].to_numpy() - origin) // SLOT_S
    inside = (slot >= 0) & (slot < nslots)
    grids: dict[str, np.ndarray] = {}
    for name in VALUES:
        grid = np.full((len(detectors), nslots), np.nan)
        col = station5[name].to_numpy(zero_copy_only=False).astype(float)
        grid[ids[inside], slot[inside]] = col[inside]
        grids[name] = grid

    good_day = np.zeros((len(detectors), ndays), dtype=bool)
    for row in health.to_pylist():
        d, k = row["detector_id"], row["dayn"] - first_day
        if d in index and 0 <= k < ndays:
            good_day[index[d], k] = row["status"] == "good"
    good = np.repeat(good_day, PER_DAY, axis=1)
    history = np.zeros(nslots, dtype=bool)
    history[: (ndays - 1) * PER_DAY] = True
    target = slice((ndays - 1) * PER_DAY, nslots)

    out_values = {name: grids[name][:, target].copy() for name in VALUES}
    method = np.full((len(detectors), PER_DAY), "observed", dtype=object)
    imputed = np.zeros((len(detectors), PER_DAY), dtype=bool)
    for d in detectors:
        b = index[d]
        if good_day[b, -1]:
            continue
        adjacent = [n for n in network.neighbours(d, 1) if n in index]
        wider = [
            n for n in network.neighbours(d, cfg.wider_hops) if n in index and n not in adjacent
        ]
        slot_method = np.full(PER_DAY, "", dtype=object)
        for name in VALUES:
            grid = grids[name]
            estimate = np.full(PER_DAY, np.nan)
            used = np.full(PER_DAY, "", dtype=object)
            for level, candidates in (("adjacent", adjacent), ("wider", wider)):
                preds = []
                for n in candidates:
                    j = index[n]
                    if not good_day[j, -1]:
                        continue
                    mask = history & good[b] & good[j] & np.isfinite(grid[b]) & np.isfinite(grid[j])
                    if mask.sum() < cfg.min_points or np.ptp(grid[j][mask]) == 0:
                        continue
                    slope, intercept = np.polyfit(grid[j][mask], grid[b][mask], 1)
                    preds.append(intercept + slope * grid[j][target])
                if preds:
                    stack = np.vstack(preds)
                    have = np.isfinite(stack).any(axis=0)
                    fill = np.isnan(estimate) & have
                    with np.errstate(all="ignore"):
                        mean = np.nanmean(np.where(np.isfinite(stack), stack, np.nan), axis=0)
                    estimate[fill] = mean[fill]
                    used[fill] = level
            # The detector's own time-of-day profile over its good days.
            hist_days = grid[b][: (ndays - 1) * PER_DAY].reshape(ndays - 1, PER_DAY)
            hist_good = good_day[b, :-1][:, None] & np.isfinite(hist_days)
            counts = hist_good.sum(axis=0)
            with np.errstate(all="ignore"):
                profile = np.where(
                    counts > 0, np.where(hist_good, hist_days, 0).sum(axis=0) / counts, np.nan
                )
            fill = np.isnan(estimate) & np.isfinite(profile)
            estimate[fill] = profile[fill]
            used[fill] = "profile"
            if name == "speed":
                estimate = np.where(estimate > 0, estimate, np.nan)
            else:
                estimate = np.clip(estimate, 0, None)
            # Nothing to estimate from (no history yet): keep what the detector measured,
            # flagged by its health status and method "unimputed".
            observed = grid[b][target]
            estimate = np.where(np.isnan(estimate) & (used == ""), observed, estimate)
            out_values[name][b] = estimate
            if name == "volume":
                slot_method = used
        method[b] = np.where(slot_method == "", "unimputed", slot_method)
        imputed[b] = slot_method != ""

    start, _ = day_bounds(day)
    t5 = start + np.arange(PER_DAY, dtype=np.int64) * SLOT_S
    keep = np.isfinite(out_values["volume"]) | np.isfinite(out_values["speed"])
    rows_d, rows_s = np.nonzero(keep)
    return pa.table(
        {
            "detector_id": pa.array([detectors[i] for i in rows_d], pa.string()),
            "t5": pa.array(t5[rows_s], pa.int64()),
            "period_start": pa.array(t5[rows_s] * 1_000_000, pa.int64()).cast(
                pa.timestamp("us", tz="UTC")
            ),
            **{
                name: pa.array(out_values[name][rows_d, rows_s], pa.float64(), from_pandas=True)
                for name in VALUES
            },
            "imputed": pa.array(imputed[rows_d, rows_s], pa.bool_()),
            "method": pa.array(method[rows_d, rows_s].astype(str), pa.string()),
        }
    )
