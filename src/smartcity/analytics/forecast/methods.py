"""Forecast methods: the three baselines and ours, behind one interface.

A method is fitted on a prefix of the data (the evaluation hands it only the training and
validation rows, so it cannot see the test part) and then, for a horizon h, returns an array
whose row t is the forecast for row t + h made from rows <= t only.

Ours ("profile_ridge") follows what the METR-LA/PEMS-BAY literature shows matters, at the
cost of a few small linear solves:

- the sensor's identity and the calendar, as a per-sensor profile by time of day and day
  type (weekday, Saturday, Sunday) - STID's spatial and temporal identity embeddings,
  reduced to a lookup table;
- recent lags, as the deviation from that profile over the last 12 steps (deviations
  persist: a slow day stays slow, a queue stays a queue);
- neighbours, as the mean deviation of the downstream and upstream detectors from the
  adjacency file (queues move upstream, so a downstream collapse is the best early warning),
  and of the few sensors whose deviations correlated most in training (found with or
  without a file);
- the profile's own expected change between t and t + h (rush hour starting or ending).

Per horizon, one ridge regression over all sensors predicts the deviation at t + h; each
sensor then gets its own coefficients shrunk towards the shared ones (its own dynamics where
its data support them). The ridge strengths are chosen on the validation part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from smartcity.analytics.forecast.data import Series
from smartcity.analytics.forecast.features import Profile, ffill, neighbour_matrices

LAGS = 12
CHANGE = LAGS + 9  # the column of the profile's expected change (see ProfileRidge._base)
FEATURES = CHANGE + 7


class Method(Protocol):
    name: str

    def fit(self, history: Series) -> None: ...

    def predict(self, series: Series, horizon: int) -> np.ndarray: ...


def _with_fallback(pred: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(pred), fallback[None, :], pred)


def _sensor_means(values: np.ndarray) -> np.ndarray:
    seen = ~np.isnan(values)
    overall = float(np.nanmean(values)) if seen.any() else 0.0
    sums = np.where(seen, values, 0.0).sum(axis=0)
    count = seen.sum(axis=0)
    return np.where(count > 0, sums / np.maximum(count, 1), overall)


def _target(values: np.ndarray, horizon: int) -> np.ndarray:
    """Row t of the result is row t + h of ``values`` (NaN past the end)."""
    out = np.full_like(values, np.nan)
    out[:-horizon] = values[horizon:]
    return out


def _solve(
    xtx: np.ndarray, xty: np.ndarray, alpha: float, prior: np.ndarray | None = None
) -> np.ndarray:
    f = xtx.shape[-1]
    reg = alpha * np.eye(f)
    reg[-1, -1] = alpha * 1e-6  # the intercept (last column) is barely penalised
    rhs = xty if prior is None else xty + reg @ prior
    return np.linalg.solve(xtx + reg, rhs)


# -- baselines ---------------------------------------------------------------------------------


@dataclass
class LastValue:
    name: str = "last_value"
    means: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def fit(self, history: Series) -> None:
        self.means = _sensor_means(history.values)

    def predict(self, series: Series, horizon: int) -> np.ndarray:
        return _with_fallback(ffill(series.values)[0], self.means)


@dataclass
class TimeOfDay:
    """The historical average: each sensor's mean at that time of day, all days together."""

    name: str = "time_of_day"
    profile: Profile | None = None

    def fit(self, history: Series) -> None:
        slot, wd = history.calendar()
        self.profile = Profile(
            history.values, slot, wd, history.slots_per_day, by_day_type=False, smooth=0
        )

    def predict(self, series: Series, horizon: int) -> np.ndarray:
        assert self.profile is not None
        slot, wd = series.calendar(series.values.shape[0] + horizon)
        return self.profile.at(slot[horizon:], wd[horizon:])


@dataclass
class RidgeLags:
    """One ridge regression, shared by all sensors, of the value h steps ahead on the last 12
    values (forward-filled) and an intercept."""

    name: str = "ridge_12_lags"
    alpha: float = 1.0
    coef: dict[int, np.ndarray] = field(default_factory=dict)
    means: np.ndarray = field(default_factory=lambda: np.zeros(0))
    _history: Series | None = None

    def fit(self, history: Series) -> None:
        self.means = _sensor_means(history.values)
        self._history = history
        self.coef = {}

    def _design(self, values: np.ndarray, means: np.ndarray) -> np.ndarray:
        """(13, T, n): the last 12 values and a column of ones."""
        filled = _with_fallback(ffill(values)[0], means)
        x = np.empty((LAGS + 1, *filled.shape))
        x[0] = filled
        for k in range(1, LAGS):  # before the first rows, the oldest value available
            x[k, k:] = filled[:-k]
            x[k, :k] = x[k - 1, :k]
        x[LAGS] = 1.0
        return x

    def predict(self, series: Series, horizon: int) -> np.ndarray:
        if horizon not in self.coef:
            assert self._history is not None
            values = self._history.values
            y = _target(values, horizon)
            xtx, xty, n = np.zeros((LAGS + 1, LAGS + 1)), np.zeros(LAGS + 1), 0
            for cols in _chunks(values.shape[1]):  # bounded memory: sensors a few at a time
                x = self._design(values[:, cols], self.means[cols])
                ok = ~np.isnan(y[:, cols])
                xs, ys = x[:, ok], y[:, cols][ok]  # (13, samples), (samples,)
                xtx += xs @ xs.T
                xty += xs @ ys
                n += ys.size
            self.coef[horizon] = _solve(xtx, xty, self.alpha * n / 1e4)
        out = np.empty_like(series.values)
        for cols in _chunks(series.values.shape[1]):
            x = self._design(series.values[:, cols], self.means[cols])
            out[:, cols] = np.tensordot(self.coef[horizon], x, axes=1)
        return out


def _chunks(n: int, size: int = 48) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


# -- ours --------------------------------------------------------------------------------------


@dataclass
class ProfileRidge:
    name: str = "profile_ridge"
    links: list[tuple[int, int, float]] | None = None
    validation: float = 1 / 8  # share of the fitting rows held out to choose the ridge strengths
    alphas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)
    shrinks: tuple[float, ...] = (30.0, 300.0, 3000.0, np.inf)
    profile: Profile | None = None
    down: np.ndarray = field(default_factory=lambda: np.zeros(0))
    up: np.ndarray = field(default_factory=lambda: np.zeros(0))
    corr: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scale: float = 1.0
    cap: float = np.inf  # the largest deviation (in spreads) the training data showed
    lo: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per sensor, observed range
    hi: np.ndarray = field(default_factory=lambda: np.zeros(0))
    coef: dict[int, np.ndarray] = field(default_factory=dict)  # (N, F) per horizon
    horizons: tuple[int, ...] = ()  # fitted by fit(); others on first use
    _history: Series | None = None
    _cache: tuple[Series, _Signals] | None = None

    def fit(self, history: Series) -> None:
        self._history = history
        self.coef = {}
        self._fit_profile(history)
        if self.horizons:
            self._fit_horizons(list(self.horizons))

    def _fit_profile(self, history: Series) -> None:
        self._cache = None
        slot, wd = history.calendar()
        self.profile = Profile(history.values, slot, wd, history.slots_per_day)
        resid = history.values - self.profile.at(slot, wd)
        n = history.values.shape[1]
        self.down, self.up, self.corr = neighbour_matrices(n, self.links, resid)
        seen = np.isfinite(resid)
        sd = float(np.nanstd(resid)) if seen.any() else 1.0
        self.scale = sd if sd > 0 else 1.0
        # A linear model extrapolates without limit: deviations beyond anything seen in
        # training are clipped to the largest seen, and forecasts to each sensor's range.
        self.cap = float(np.nanmax(np.abs(resid))) / self.scale if seen.any() else np.inf
        with np.errstate(all="ignore"):
            values = history.values
            self.lo = np.where(
                seen.any(axis=0), np.nanmin(np.where(seen, values, np.inf), axis=0), -np.inf
            )
            self.hi = np.where(
                seen.any(axis=0), np.nanmax(np.where(seen, values, -np.inf), axis=0), np.inf
            )

    def _signals(self, series: Series) -> _Signals:
        """What the features are made of, for every sensor (kept for the last series)."""
        if self._cache is not None and self._cache[0] is series:
            return self._cache[1]
        assert self.profile is not None
        self._cache = None
        slot, wd = series.calendar()
        p_now = self.profile.at(slot, wd)
        resid = (series.values - p_now) / self.scale
        r, age = ffill(resid)
        r = np.where(np.isnan(r), 0.0, r) * np.exp(-np.minimum(age, 1e6) / 24.0)
        r = np.clip(r, -self.cap, self.cap)
        signals = _Signals(
            r=r.T.astype(np.float32),
            down=(r @ self.down.T).T.astype(np.float32),
            up=(r @ self.up.T).T.astype(np.float32),
            corr=(r @ self.corr.T).T.astype(np.float32),
            level=(p_now / self.scale).T.astype(np.float32),
            missing=(age > 0).T.astype(np.float32),
        )
        self._cache = (series, signals)
        return signals

    def _design(self, series: Series, horizon: int, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """Features (n, F, T) of the sensors ``cols`` for ``horizon``, and the profile at
        t + h (T, n). Built a few sensors at a time so memory stays bounded for a city."""
        assert self.profile is not None
        sig = self._signals(series)
        t = series.values.shape[0]
        rt, dt, ut, ct = sig.r[cols], sig.down[cols], sig.up[cols], sig.corr[cols]
        x = np.zeros((rt.shape[0], FEATURES, t), dtype=np.float32)
        for k in range(LAGS):
            x[:, k, k:] = rt[:, : t - k]
        for k, lag in enumerate((0, 1, 3)):
            x[:, LAGS + k, lag:] = dt[:, : t - lag]
            x[:, LAGS + 3 + k, lag:] = ut[:, : t - lag]
            x[:, LAGS + 6 + k, lag:] = ct[:, : t - lag]
        slot, wd = series.calendar(t + horizon)
        prof = self.profile.at(slot, wd)[:, cols]
        p_then = prof[horizon:]
        x[:, CHANGE, :] = ((p_then - prof[:t]) / self.scale).T  # the expected change
        x[:, CHANGE + 1, :] = sig.level[cols]
        x[:, CHANGE + 2, :] = np.minimum(rt, 0.0)  # below-profile deviations (queues) differ
        x[:, CHANGE + 3, :] = np.minimum(dt, 0.0)
        x[:, CHANGE + 4, :] = rt * np.abs(rt)
        x[:, CHANGE + 5, :] = sig.missing[cols]  # the latest value is missing
        x[:, CHANGE + 6, :] = 1.0
        return x, p_then

    def _target_rows(
        self, series: Series, horizon: int, cols: slice, p_then: np.ndarray, rows: slice
    ) -> tuple[np.ndarray, np.ndarray]:
        """The deviation to predict (n, rows), zero where missing, and its observed mask."""
        y = ((_target(series.values[:, cols], horizon) - p_then) / self.scale).T[:, rows]
        ok = ~np.isnan(y)
        return np.where(ok, y, 0.0).astype(np.float32), ok

    def _normal(self, series: Series, horizon: int, rows: slice) -> tuple[np.ndarray, np.ndarray]:
        """Per sensor X'X (N, F, F) and X'y (N, F) over ``rows``."""
        n = series.values.shape[1]
        xtx, xty = np.empty((n, FEATURES, FEATURES)), np.empty((n, FEATURES))
        for cols in _chunks(n):
            x, p_then = self._design(series, horizon, cols)
            y, ok = self._target_rows(series, horizon, cols, p_then, rows)
            xs = x[:, :, rows] * ok[:, None, :]
            xtx[cols] = xs @ xs.transpose(0, 2, 1)
            xty[cols] = (xs @ y[..., None])[..., 0]
        return xtx, xty

    def _coefficients(
        self, xtx: np.ndarray, xty: np.ndarray, alpha: float, shrink: float
    ) -> np.ndarray:
        shared = _solve(xtx.sum(axis=0), xty.sum(axis=0), alpha)
        if not np.isfinite(shrink):
            return np.broadcast_to(shared, xty.shape).copy()
        return np.stack([_solve(xtx[i], xty[i], shrink, shared) for i in range(xty.shape[0])])

    def _fit_horizons(self, horizons: list[int]) -> None:
        history = self._history
        assert history is not None
        t, n = history.values.shape
        cut = int(t * (1 - self.validation))
        chosen = {h: (self.alphas[0], self.shrinks[-1]) for h in horizons}
        tunable = [h for h in horizons if cut > h + LAGS and t - cut > h]
        if tunable:
            # Choose the strengths on the last rows of the fitting data, with the profile and
            # neighbours fitted on the rows before them.
            head = Series(history.ids, history.values[:cut], history.start, history.step)
            self._fit_profile(head)
            grid = [(a, s) for a in self.alphas for s in self.shrinks]
            for h in tunable:
                xtx, xty = self._normal(head, h, slice(0, cut - h))
                coefs = [self._coefficients(xtx, xty, a, s).astype(np.float32) for a, s in grid]
                errors, count = np.zeros(len(grid)), 0
                for cols in _chunks(n):
                    x, p_then = self._design(history, h, cols)
                    rows = slice(cut, t - h)
                    y, ok = self._target_rows(history, h, cols, p_then, rows)
                    xv = x[:, :, rows]
                    for g, coef in enumerate(coefs):
                        pred = (coef[cols, None, :] @ xv)[:, 0, :]
                        errors[g] += float(np.abs(pred - y)[ok].sum())
                    count += int(ok.sum())
                if count:
                    chosen[h] = grid[int(np.argmin(errors))]
            self._fit_profile(history)
        for h in horizons:
            xtx, xty = self._normal(history, h, slice(0, max(t - h, 0)))
            self.coef[h] = self._coefficients(xtx, xty, *chosen[h])

    def predict(self, series: Series, horizon: int) -> np.ndarray:
        if horizon not in self.coef:
            self._fit_horizons([horizon])
        coef = self.coef[horizon].astype(np.float32)
        pred = np.empty_like(series.values)
        for cols in _chunks(series.values.shape[1]):
            x, p_then = self._design(series, horizon, cols)
            pred[:, cols] = p_then + self.scale * (coef[cols, None, :] @ x)[:, 0, :].T
        return np.clip(pred, self.lo, self.hi)


@dataclass
class _Signals:
    """Per sensor (N, T), float32: deviation from the profile in spreads (forward-filled,
    decayed, clipped), its downstream, upstream and correlated-neighbour means, the profile
    level, and whether the latest value is missing."""

    r: np.ndarray
    down: np.ndarray
    up: np.ndarray
    corr: np.ndarray
    level: np.ndarray
    missing: np.ndarray
