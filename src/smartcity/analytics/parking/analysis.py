"""The parking analyses as plain functions over arrays (the service feeds them the hub's
history): occupancy profiles, the probability of being full, and the alert rule.

- Occupancy is 1 - available / capacity, capacity being the car park's totalSpotNumber or,
  when a feed does not give it, the most spaces ever seen free (a lower bound).
- "Full" is at most ``full_share`` of the spaces free (2% by default, at least 0 spaces): a
  car park with 3 of 500 spaces free is full to a driver looking for one.
- The probability of being full h minutes ahead treats the forecast error as normal with the
  model's recent RMSE for that car park and horizon: P = Φ((full + 0.5 - forecast) / σ).
- "Likely full on arrival" is P ≥ 0.5 at the arrival time; an alert ("aboutToFill") is
  raised for a car park that is not full now but likely full within ``alert_minutes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

FULL_SHARE = 0.02
ALERT_MINUTES = 30
LIKELY = 0.5


def full_threshold(capacity: float, share: float = FULL_SHARE) -> float:
    return math.floor(max(capacity, 0.0) * share)


def p_full(forecast: float, spread: float, capacity: float, share: float = FULL_SHARE) -> float:
    """Probability that at most ``full_threshold`` spaces are free, given the forecast."""
    sigma = max(spread if math.isfinite(spread) else 0.0, 1.0)
    z = (full_threshold(capacity, share) + 0.5 - forecast) / sigma
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


@dataclass(frozen=True)
class Profile:
    """Mean occupancy (0-1) by weekday (0 = Monday) and hour of day, and how many hourly
    means each cell is made of; NaN where there were none."""

    occupancy: np.ndarray  # (7, 24)
    counts: np.ndarray  # (7, 24)


def occupancy_profiles(
    available: np.ndarray, capacity: np.ndarray, start: datetime, step: timedelta
) -> list[Profile]:
    """One profile per column of ``available`` (T, N), row 0 at local time ``start``."""
    rows = available.shape[0]
    stamps = [start + k * step for k in range(rows)]
    weekday = np.array([t.weekday() for t in stamps], dtype=np.int64)
    hour = np.array([t.hour for t in stamps], dtype=np.int64)
    key = weekday * 24 + hour
    out = []
    for j in range(available.shape[1]):
        cap = capacity[j]
        occ = 1.0 - available[:, j] / cap if cap > 0 else np.full(rows, np.nan)
        occ = np.clip(occ, 0.0, 1.0)
        seen = ~np.isnan(occ)
        sums = np.bincount(key[seen], weights=occ[seen], minlength=168)
        counts = np.bincount(key[seen], minlength=168).astype(np.float64)
        with np.errstate(invalid="ignore"):
            mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        out.append(Profile(mean.reshape(7, 24), counts.reshape(7, 24)))
    return out


def capacities(total: list[float | None], history: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Each car park's capacity and where it came from ("totalSpotNumber" or "maxSeen")."""
    caps, sources = [], []
    for j, t in enumerate(total):
        if t is not None and t > 0:
            caps.append(float(t))
            sources.append("totalSpotNumber")
        else:
            column = history[:, j]
            seen = column[~np.isnan(column)]
            caps.append(float(seen.max()) if seen.size else 0.0)
            sources.append("maxSeen")
    return np.asarray(caps), sources
