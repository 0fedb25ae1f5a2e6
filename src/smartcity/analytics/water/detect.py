"""Bursts and rising leaks in a DMA's nightly leakage series (numpy; one value a night).

* **Burst** (a sudden, sustained rise): a one-sided tabular CUSUM (Page, E. S. (1954),
  "Continuous inspection schemes", *Biometrika* 41: 100-115; Montgomery, *Introduction to
  Statistical Quality Control*, ch. 9) on the nights standardised against a robust baseline
  (median and MAD of the first nights), with the usual k = 0.5 σ allowance and h = 5 σ
  decision interval: one night's blip never alarms, a rise of 1 σ alarms within about 10
  nights, a rise of 3 σ within 2 or 3. The change point is where the sum last left zero.
* **Rising leak** (a trend): the Theil-Sen slope (Sen, P. K. (1968), *JASA* 63: 1379-1389)
  with the Mann-Kendall test (Mann 1945; Kendall 1975) over the recent nights: a
  significant upward trend (one-sided p < 0.01) that has added at least 4 σ.

A CUSUM alarm whose rise came mostly in one night-to-night step (at least half of it, and at
least 4 σ) is a burst; one that came little by little is a rising leak. The condition holds
while the latest nights stay above the baseline (by 3 σ): a repaired burst stops alarming.
σ is floored at 3% of the baseline (nightly leakage moves with pressure and temperature by
about that much) so a very quiet baseline does not make every wobble an alarm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

K = 0.5
H = 5.0
MIN_SIGMA_SHARE = 0.03
MK_Z = 2.326  # one-sided 1%
TREND_SIGMAS = 4.0
BURST_SIGMAS = 4.0
HOLD_SIGMAS = 3.0


@dataclass
class Finding:
    kind: str  # "burst", "rising" or "none"
    baseline: float  # m³/h: the baseline nights' median leakage
    sigma: float
    current: float  # m³/h: the latest nights' median
    change_night: int | None = None  # index into the series
    alarm_night: int | None = None
    step: float | None = None  # m³/h: the burst's size
    slope: float | None = None  # m³/h per night (Theil-Sen, recent nights)
    trend_z: float | None = None  # Mann-Kendall


def cusum(z: np.ndarray, k: float = K, h: float = H) -> tuple[int | None, int | None]:
    """(alarm index, change index) of an upper CUSUM on standardised values; (None, None)."""
    s = 0.0
    start = 0
    for i, v in enumerate(z):
        s = max(0.0, s + float(v) - k)
        if s == 0.0:
            start = i + 1
        elif s > h:
            return i, min(start, i)
    return None, None


def theil_sen(y: np.ndarray) -> float:
    n = len(y)
    i, j = np.triu_indices(n, 1)
    return float(np.median((y[j] - y[i]) / (j - i))) if n > 1 else 0.0


def mann_kendall_z(y: np.ndarray) -> float:
    n = len(y)
    if n < 4:
        return 0.0
    i, j = np.triu_indices(n, 1)
    s = float(np.sign(y[j] - y[i]).sum())
    var = n * (n - 1) * (2 * n + 5) / 18
    if s == 0:
        return 0.0
    return (s - math.copysign(1, s)) / math.sqrt(var)


def examine(series: np.ndarray, *, baseline_nights: int = 7, trend_nights: int = 14) -> Finding:
    """What the nightly leakage ``series`` (oldest first) shows."""
    x = np.asarray(series, dtype=float)
    if len(x) < baseline_nights + 2:
        raise ValueError(
            f"{len(x)} nights: burst and trend detection need at least {baseline_nights + 2}"
        )
    base = x[:baseline_nights]
    mu = float(np.median(base))
    mad = float(np.median(np.abs(base - mu))) * 1.4826
    sigma = max(mad, MIN_SIGMA_SHARE * abs(mu), 1e-6)
    current = float(np.median(x[-2:]))
    finding = Finding("none", round(mu, 3), round(sigma, 3), round(current, 3))
    recent = x[-trend_nights:]
    finding.slope = round(theil_sen(recent), 4)
    finding.trend_z = round(mann_kendall_z(recent), 2)
    if current < mu + HOLD_SIGMAS * sigma:
        return finding  # at the baseline now (nothing, or a leak already repaired)
    alarm, change = cusum((x - mu) / sigma)
    if alarm is not None and change is not None:
        finding.alarm_night, finding.change_night = alarm, change
        rise = current - mu
        jumps = np.diff(x[max(change - 1, 0) :])
        biggest = int(np.argmax(jumps)) if len(jumps) else 0
        step = float(jumps[biggest]) if len(jumps) else 0.0
        if step >= max(0.5 * rise, BURST_SIGMAS * sigma):
            finding.kind = "burst"
            finding.change_night = max(change - 1, 0) + biggest + 1
            finding.step = round(step, 3)
            return finding
        finding.kind = "rising"
        return finding
    if finding.trend_z > MK_Z and finding.slope * len(recent) >= TREND_SIGMAS * sigma:
        finding.kind = "rising"
    return finding
