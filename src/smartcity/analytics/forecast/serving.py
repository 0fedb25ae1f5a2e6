"""Serving forecasts: 15, 30 and 60 minutes ahead for every traffic detector in the hub.

The model (``profile_ridge``, see methods.py) is refitted from the hub's history every hour
(by default on the last 28 days of 5-minute averages); forecasts are recomputed from the
latest readings whenever they are older than one step, when someone asks. There is no
background thread: a city where nobody looks costs nothing, and one that is watched gets
forecasts at most one step old. A forecast made at the end of 5-minute period t for period
t + h uses the readings up to the end of t only, exactly as in the evaluation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from smartcity.analytics.forecast.data import Series
from smartcity.analytics.forecast.methods import ProfileRidge
from smartcity.analytics.hubseries import CITY_TZ, Grid, read_grid
from smartcity.hub.temporal.service import TemporalService
from smartcity.hub.timeutil import iso_from_us as iso

SDM = "https://smartdatamodels.org/dataModel.Transportation/"
TRAFFIC = SDM + "TrafficFlowObserved"
# What can be forecast: the attribute's short name -> its IRI (speed, and flow where the
# detectors report it).
ATTRIBUTES = {"averageVehicleSpeed": SDM + "averageVehicleSpeed", "intensity": SDM + "intensity"}
HORIZONS_MIN = (15, 30, 60)
STEP = timedelta(minutes=5)
STEP_US = int(STEP.total_seconds() * 1_000_000)
MINUTE_US = 60_000_000


@dataclass
class Snapshot:
    attribute: str
    made_at: int  # end of the last period used (UTC microseconds)
    fitted_at: int
    history_rows: int
    ids: list[str]
    last_start: int  # start of the last observed period
    observed: np.ndarray  # (rows, N): the recent observed series (period means)
    observed_start: int
    forecasts: dict[int, np.ndarray]  # minutes ahead -> (N,)
    computed: float = field(default_factory=time.monotonic)

    def entity(self, i: int, *, with_series: bool) -> dict[str, Any]:
        column = self.observed[:, i]
        seen = np.flatnonzero(~np.isnan(column))
        latest = int(seen[-1]) if seen.size else None
        out: dict[str, Any] = {
            "id": self.ids[i],
            "observed": None
            if latest is None
            else {
                "start": iso(self.observed_start + latest * STEP_US),
                "value": round(float(column[latest]), 2),
            },
            "forecasts": [
                {
                    "minutes": m,
                    "start": iso(self.last_start + m * MINUTE_US),
                    "value": None if latest is None else round(float(self.forecasts[m][i]), 2),
                }
                for m in HORIZONS_MIN
            ],
        }
        if with_series:
            out["series"] = [
                {"start": iso(self.observed_start + r * STEP_US), "value": round(float(v), 2)}
                for r, v in enumerate(column)
                if not np.isnan(v)
            ]
        return out

    def document(self, *, with_series: bool = False, only: int | None = None) -> dict[str, Any]:
        indexes = range(len(self.ids)) if only is None else [only]
        return {
            "type": TRAFFIC,
            "attribute": self.attribute,
            "method": "profile_ridge",
            "step": "PT5M",
            "madeAt": iso(self.made_at),
            "fittedAt": iso(self.fitted_at),
            "historyPeriods": self.history_rows,
            "horizonsMinutes": list(HORIZONS_MIN),
            "entities": [self.entity(i, with_series=with_series) for i in indexes],
        }


class ForecastService:
    """Fitted models and the latest forecasts, per attribute, for one tenant."""

    def __init__(
        self,
        temporal: TemporalService,
        tenant: str = "",
        *,
        history_days: int = 28,
        refit_s: float = 3600.0,
        refresh_s: float = 60.0,
        observed_hours: int = 24,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.temporal = temporal
        self.tenant = tenant
        self.history_days = history_days
        self.refit_s = refit_s
        self.refresh_s = refresh_s
        self.observed_hours = observed_hours
        self.clock = clock or (lambda: int(time.time() * 1_000_000))
        self._lock = threading.Lock()
        self._models: dict[str, tuple[float, int, list[str], ProfileRidge, int]] = {}
        self._snapshots: dict[str, Snapshot] = {}

    def current(self, attribute: str = "averageVehicleSpeed") -> Snapshot:
        if attribute not in ATTRIBUTES:
            raise KeyError(attribute)
        with self._lock:
            snap = self._snapshots.get(attribute)
            now = self.clock()
            if (
                snap is None
                or time.monotonic() - snap.computed >= self.refresh_s
                or now // STEP_US * STEP_US > snap.made_at
            ):
                snap = self._compute(attribute, now)
                self._snapshots[attribute] = snap
            return snap

    def _grid(self, attribute: str, since: int, until: int) -> Grid:
        return read_grid(
            self.temporal,
            self.tenant,
            TRAFFIC,
            ATTRIBUTES[attribute],
            since_us=since,
            until_us=until,
            step_us=STEP_US,
        )

    def _model(self, attribute: str, now: int) -> tuple[list[str], ProfileRidge, int, int]:
        cached = self._models.get(attribute)
        if cached is not None and time.monotonic() - cached[0] < self.refit_s:
            return cached[2], cached[3], cached[1], cached[4]
        grid = self._grid(attribute, now - self.history_days * 86_400_000_000, now)
        if not grid.ids:
            model = ProfileRidge()
            self._models[attribute] = (time.monotonic(), now, [], model, 0)
            return [], model, now, 0
        # Rows before the first reading of any detector carry nothing: drop them.
        seen = np.flatnonzero((~np.isnan(grid.values)).any(axis=1))
        first = int(seen[0]) if seen.size else grid.values.shape[0] - 1
        series = Series(
            grid.ids,
            grid.values[first:],
            _local(grid.time_of(first)),
            STEP,
        )
        model = ProfileRidge(horizons=tuple(m // 5 for m in HORIZONS_MIN))
        model.fit(series)
        rows = series.values.shape[0]
        self._models[attribute] = (time.monotonic(), now, grid.ids, model, rows)
        return grid.ids, model, now, rows

    def _compute(self, attribute: str, now: int) -> Snapshot:
        ids, model, fitted_at, rows = self._model(attribute, now)
        until = now // STEP_US * STEP_US  # the period in progress is not averaged yet
        since = until - self.observed_hours * 3_600_000_000
        grid = self._grid(attribute, since, until)
        # The model's sensors, in the model's order; new detectors wait for the next refit.
        index = {s: i for i, s in enumerate(grid.ids)}
        values = np.full((grid.values.shape[0], len(ids)), np.nan)
        for j, s in enumerate(ids):
            if s in index:
                values[:, j] = grid.values[:, index[s]]
        series = Series(ids, values, _local(grid.start_us), STEP)
        forecasts: dict[int, np.ndarray] = {m: np.zeros(0) for m in HORIZONS_MIN}
        if ids:
            for minutes in HORIZONS_MIN:
                forecasts[minutes] = model.predict(series, minutes // 5)[-1]
        return Snapshot(
            attribute=attribute,
            made_at=until,
            fitted_at=fitted_at,
            history_rows=rows,
            ids=ids,
            last_start=until - STEP_US,
            observed=values,
            observed_start=grid.start_us,
            forecasts=forecasts,
        )


def _local(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, UTC).astimezone(CITY_TZ).replace(tzinfo=None)


def _tail(series: Series, rows: int) -> Series:
    start = max(0, series.values.shape[0] - rows)
    return Series(
        series.ids, series.values[start:], series.start + start * series.step, series.step
    )
