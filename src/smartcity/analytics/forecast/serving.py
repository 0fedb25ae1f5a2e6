"""Serving forecasts: 15, 30 and 60 minutes ahead for every traffic detector in the hub.

The model (``profile_ridge``, see methods.py) is refitted from the hub's history every hour
(by default on the last 28 days of 5-minute averages); forecasts are recomputed from the
latest readings whenever they are older than one step, when someone asks: a city where
nobody looks costs nothing, and one that is watched gets forecasts at most one step old. Only
the first fit makes a request wait; later refits run in a background thread while the
previous model keeps answering. A forecast made at the end of 5-minute period t for period
t + h uses the readings up to the end of t only, exactly as in the evaluation.
"""

from __future__ import annotations

import logging
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
log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    type_iri: str
    attribute: str
    made_at: int  # end of the last period used (UTC microseconds)
    fitted_at: int
    history_rows: int
    ids: list[str]
    last_start: int  # start of the last observed period
    observed: np.ndarray  # (rows, N): the recent observed series (period means)
    observed_start: int
    forecasts: dict[int, np.ndarray]  # minutes ahead -> (N,)
    spread: dict[int, np.ndarray]  # minutes ahead -> (N,) the model's RMSE on recent history
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
            "type": self.type_iri,
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
    """Fitted models and the latest forecasts, per attribute, for one tenant and one entity
    type (traffic detectors by default; the parking analytics use it for car parks)."""

    def __init__(
        self,
        temporal: TemporalService,
        tenant: str = "",
        *,
        type_iri: str = TRAFFIC,
        attributes: dict[str, str] | None = None,
        history_days: int = 28,
        refit_s: float = 3600.0,
        refresh_s: float = 60.0,
        observed_hours: int = 24,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.temporal = temporal
        self.tenant = tenant
        self.type_iri = type_iri
        self.attributes = attributes or ATTRIBUTES
        self.history_days = history_days
        self.refit_s = refit_s
        self.refresh_s = refresh_s
        self.observed_hours = observed_hours
        self.clock = clock or (lambda: int(time.time() * 1_000_000))
        self._lock = threading.Lock()
        self._models: dict[str, Fitted] = {}
        self.refitting: dict[str, threading.Thread] = {}
        self._snapshots: dict[str, Snapshot] = {}

    def current(self, attribute: str = "averageVehicleSpeed") -> Snapshot:
        if attribute not in self.attributes:
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
            self.type_iri,
            self.attributes[attribute],
            since_us=since,
            until_us=until,
            step_us=STEP_US,
        )

    def _model(self, attribute: str, now: int) -> Fitted:
        cached = self._models.get(attribute)
        if cached is None:
            return self._fit(attribute, now)
        stale = time.monotonic() - cached.monotonic >= self.refit_s
        running = self.refitting.get(attribute)
        if stale and (running is None or not running.is_alive()):
            thread = threading.Thread(
                target=self._refit, args=(attribute, now), name=f"refit {attribute}", daemon=True
            )
            self.refitting[attribute] = thread
            thread.start()
        return cached

    def _refit(self, attribute: str, now: int) -> None:
        try:
            self._fit(attribute, now)
        except Exception:  # the previous model keeps answering; the next request retries
            log.exception("refitting the %s forecast model failed", attribute)

    def _fit(self, attribute: str, now: int) -> Fitted:
        grid = self._grid(attribute, now - self.history_days * 86_400_000_000, now)
        horizons = tuple(m // 5 for m in HORIZONS_MIN)
        model = ProfileRidge(horizons=horizons)
        # Rows before the first reading of any entity carry nothing: drop them.
        seen = np.flatnonzero((~np.isnan(grid.values)).any(axis=1))
        if not grid.ids or not seen.size:
            fitted = Fitted(time.monotonic(), now, [], model, 0, {})
            self._models[attribute] = fitted
            return fitted
        first = int(seen[0])
        series = Series(grid.ids, grid.values[first:], _local(grid.time_of(first)), STEP)
        model.fit(series)
        fitted = Fitted(
            time.monotonic(), now, grid.ids, model, series.values.shape[0], _spread(model, series)
        )
        self._models[attribute] = fitted
        return fitted

    def _compute(self, attribute: str, now: int) -> Snapshot:
        fitted = self._model(attribute, now)
        ids = fitted.ids
        until = now // STEP_US * STEP_US  # the period in progress is not averaged yet
        since = until - self.observed_hours * 3_600_000_000
        grid = self._grid(attribute, since, until)
        # The model's entities, in the model's order; new ones wait for the next refit.
        index = {s: i for i, s in enumerate(grid.ids)}
        values = np.full((grid.values.shape[0], len(ids)), np.nan)
        for j, s in enumerate(ids):
            if s in index:
                values[:, j] = grid.values[:, index[s]]
        series = Series(ids, values, _local(grid.start_us), STEP)
        forecasts: dict[int, np.ndarray] = {m: np.zeros(0) for m in HORIZONS_MIN}
        if ids:
            for minutes in HORIZONS_MIN:
                forecasts[minutes] = fitted.model.predict(series, minutes // 5)[-1]
        return Snapshot(
            type_iri=self.type_iri,
            attribute=attribute,
            made_at=until,
            fitted_at=fitted.fitted_at,
            history_rows=fitted.rows,
            ids=ids,
            last_start=until - STEP_US,
            observed=values,
            observed_start=grid.start_us,
            forecasts=forecasts,
            spread={m: fitted.spread.get(m, np.zeros(0)) for m in HORIZONS_MIN},
        )


@dataclass
class Fitted:
    monotonic: float  # when it was fitted, for the refit interval
    fitted_at: int  # the clock's time then (UTC microseconds)
    ids: list[str]
    model: ProfileRidge
    rows: int
    spread: dict[int, np.ndarray]  # minutes ahead -> (N,) RMSE


def _spread(model: ProfileRidge, series: Series) -> dict[int, np.ndarray]:
    """Each entity's forecast error (RMSE) per horizon over the last quarter of its history
    (in sample, so a little optimistic), for probabilities such as "full on arrival"; the
    all-entity RMSE where an entity has too few values."""
    rows = series.values.shape[0]
    start = rows - max(rows // 4, 1)
    out = {}
    for minutes in HORIZONS_MIN:
        h = minutes // 5
        pred = model.predict(series, h)[start - h : rows - h] if start >= h else None
        if pred is None:
            out[minutes] = np.full(len(series.ids), np.nan)
            continue
        err = pred - series.values[start:]
        count = (~np.isnan(err)).sum(axis=0)
        with np.errstate(all="ignore"):
            rmse = np.sqrt(np.nanmean(err**2, axis=0))
            overall = float(np.sqrt(np.nanmean(err**2))) if count.sum() else np.nan
        out[minutes] = np.where(count >= 12, rmse, overall)
    return out


def _local(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, UTC).astimezone(CITY_TZ).replace(tzinfo=None)
