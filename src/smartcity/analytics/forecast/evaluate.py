"""The evaluation protocol: chronological 70/10/20 split, masked MAE/RMSE/MAPE per horizon.

- Rows are split in time order: the first 70% train, the next 10% validate, the last 20%
  test. Methods are fitted on the first 80% only (they may hold part of it out to tune, as
  ours does with the validation share), so nothing of the test part reaches a fitted model.
- For each horizon h (in steps), every test row s with an observed value is a target, and
  the forecast for it is the one made at row s - h from rows <= s - h only.
- Targets that are 0 (missing) are masked out of all three metrics, as in the METR-LA and
  PEMS-BAY benchmarks. MAPE is in percent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from smartcity.analytics.forecast.data import Series
from smartcity.analytics.forecast.methods import (
    LastValue,
    Method,
    ProfileRidge,
    RidgeLags,
    TimeOfDay,
)

TRAIN, VALIDATION = 0.7, 0.1


@dataclass(frozen=True)
class Split:
    train_end: int
    validation_end: int
    total: int


def split(rows: int) -> Split:
    train_end = round(rows * TRAIN)
    validation_end = round(rows * (TRAIN + VALIDATION))
    return Split(train_end, validation_end, rows)


def fitting_part(series: Series, s: Split) -> Series:
    return Series(series.ids, series.values[: s.validation_end], series.start, series.step)


def metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    ok = ~np.isnan(truth) & (truth != 0) & ~np.isnan(pred)
    err = pred[ok] - truth[ok]
    if err.size == 0:
        return {"mae": float("nan"), "rmse": float("nan"), "mape": float("nan"), "count": 0}
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "mape": float((np.abs(err) / np.abs(truth[ok])).mean() * 100),
        "count": int(err.size),
    }


def _rounded(m: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}


def forecasts_on_test_part(method: Method, series: Series, horizon: int, s: Split) -> np.ndarray:
    """Forecasts for the test rows (validation_end..end), made ``horizon`` rows earlier."""
    pred = method.predict(series, horizon)  # row t: forecast for t + h from rows <= t
    return pred[s.validation_end - horizon : s.total - horizon]


def methods(
    links: list[tuple[int, int, float]] | None, horizons: tuple[int, ...] = ()
) -> dict[str, Method]:
    return {
        "profile_ridge": ProfileRidge(links=links, horizons=horizons),
        "last_value": LastValue(),
        "time_of_day": TimeOfDay(),
        "ridge_12_lags": RidgeLags(),
    }


def evaluate(
    series: Series, horizons: list[int], links: list[tuple[int, int, float]] | None = None
) -> dict[str, Any]:
    s = split(series.values.shape[0])
    if s.total - s.validation_end <= max(horizons) or s.train_end < 2 * series.slots_per_day:
        raise ValueError(
            f"{s.total} rows are too few: the evaluation needs at least two days of training "
            "rows (70%) and a test part (20%) longer than the largest horizon"
        )
    truth = series.values[s.validation_end :]
    history = fitting_part(series, s)
    results: dict[str, dict[str, dict[str, float]]] = {}
    seconds: dict[str, float] = {}
    cpu_seconds: dict[str, float] = {}
    for name, method in methods(links, tuple(horizons)).items():
        started, cpu = time.perf_counter(), time.process_time()
        method.fit(history)
        results[name] = {
            str(h): _rounded(metrics(forecasts_on_test_part(method, series, h, s), truth))
            for h in horizons
        }
        seconds[name] = round(time.perf_counter() - started, 3)
        cpu_seconds[name] = round(time.process_time() - cpu, 3)
    ours = results.pop("profile_ridge")
    best = {str(h): min(results[b][str(h)]["mae"] for b in results) for h in horizons}
    return {
        "method": "profile_ridge",
        "horizons": ours,
        "baselines": results,
        "ratio_to_best_baseline": {
            h: round(ours[h]["mae"] / best[h], 4) if best[h] else None for h in ours
        },
        "split": {
            "train": s.train_end,
            "validation": s.validation_end - s.train_end,
            "test": s.total - s.validation_end,
        },
        "sensors": len(series.ids),
        "seconds": seconds,  # wall clock, fitting and forecasting every horizon
        "cpu_seconds": cpu_seconds,
    }
