"""Causal building blocks: forward fill, calendar profiles, neighbours.

Everything here computes row t from rows <= t only (profiles are fitted on a training
prefix and then only looked up by calendar position), which is what keeps the evaluation
free of leakage.
"""

from __future__ import annotations

import numpy as np


def ffill(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Last observed value at or before each row, and its age in rows (NaN/inf before any)."""
    t, n = values.shape
    seen = ~np.isnan(values)
    idx = np.where(seen, np.arange(t)[:, None], -1)
    np.maximum.accumulate(idx, axis=0, out=idx)
    filled = np.where(idx >= 0, values[np.clip(idx, 0, None), np.arange(n)[None, :]], np.nan)
    age = np.where(idx >= 0, np.arange(t)[:, None] - idx, np.inf)
    return filled, age


def day_type(weekday: np.ndarray) -> np.ndarray:
    """0 = Monday-Friday, 1 = Saturday, 2 = Sunday (public holidays look like Sundays, but
    the wide CSV carries no calendar; a known holiday list would plug in here)."""
    return np.where(weekday < 5, 0, weekday - 4)


class Profile:
    """Per sensor, the mean by (day type, slot of day), smoothed over neighbouring slots and
    shrunk towards the sensor's all-days time-of-day mean where a day type has few days
    (empirical Bayes with ``prior`` pseudo-observations); the all-days mean itself falls back
    to the sensor's overall mean and then to the global mean."""

    def __init__(
        self,
        values: np.ndarray,
        slot: np.ndarray,
        weekday: np.ndarray,
        slots_per_day: int,
        *,
        by_day_type: bool = True,
        smooth: int = 1,
        prior: float = 4.0,
    ) -> None:
        s = slots_per_day
        seen = ~np.isnan(values)
        x = np.where(seen, values, 0.0)
        kinds = 3 if by_day_type else 1
        key = (day_type(weekday) if by_day_type else np.zeros_like(weekday)) * s + slot
        sums = np.zeros((kinds * s, values.shape[1]))
        counts = np.zeros_like(sums)
        np.add.at(sums, key, x)
        np.add.at(counts, key, seen.astype(np.float64))
        sums = _circular_smooth(sums.reshape(kinds, s, -1), smooth)
        counts = _circular_smooth(counts.reshape(kinds, s, -1), smooth)
        total = seen.sum(axis=0)
        global_mean = float(np.nanmean(values)) if seen.any() else 0.0
        sensor_mean = np.where(total > 0, x.sum(axis=0) / np.maximum(total, 1), global_mean)
        all_sums, all_counts = sums.sum(axis=0), counts.sum(axis=0)
        pooled = (all_sums + 2.0 * sensor_mean) / (all_counts + 2.0)
        self.table = (sums + prior * pooled[None]) / (counts + prior)  # (kinds, S, N)
        self.by_day_type = by_day_type
        self.slots_per_day = s

    def at(self, slot: np.ndarray, weekday: np.ndarray) -> np.ndarray:
        kind = day_type(weekday) if self.by_day_type else np.zeros_like(weekday)
        return self.table[kind, slot]


def _circular_smooth(a: np.ndarray, width: int) -> np.ndarray:
    if width <= 0:
        return a
    out = a.copy()
    for k in range(1, width + 1):
        out += np.roll(a, k, axis=1) + np.roll(a, -k, axis=1)
    return out


def neighbour_matrices(
    n: int, links: list[tuple[int, int, float]] | None, residual: np.ndarray, k: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-normalised (downstream, upstream, correlated) averaging matrices (N, N).

    From the adjacency list (if any): a sensor's downstream neighbours are the ``to`` of its
    links, its upstream ones the ``from``. Always: the ``k`` sensors whose residuals (speed
    minus profile, on the training part) correlate most with a sensor's (above 0.2) - they
    find what a link list misses (the next detectors but one, the other carriageway, a
    parallel road) and stand in for it when there is none. The model learns how much each
    group matters.
    """
    down = np.zeros((n, n))
    up = np.zeros((n, n))
    corr_m = np.zeros((n, n))
    for a, b, w in links or ():
        down[a, b] += w
        up[b, a] += w
    if n > 1:
        z = np.where(np.isnan(residual), 0.0, residual)
        z = z - z.mean(axis=0)
        norm = np.sqrt((z**2).sum(axis=0))
        norm[norm == 0] = 1.0
        corr = (z.T @ z) / np.outer(norm, norm)
        np.fill_diagonal(corr, -np.inf)
        k = min(k, n - 1)
        best = np.argpartition(-corr, k - 1, axis=1)[:, :k]
        for i in range(n):
            for j in best[i]:
                if corr[i, j] > 0.2:
                    corr_m[i, j] = corr[i, j]
    for m in (down, up, corr_m):
        rows = m.sum(axis=1, keepdims=True)
        np.divide(m, rows, out=m, where=rows > 0)
    return down, up, corr_m
