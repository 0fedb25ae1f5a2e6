"""Hong Kong's Air Quality Health Index, computed with EPD's method.

Added health risk %AR = %AR(NO2) + %AR(SO2) + %AR(O3) + max(%AR(PM10), %AR(PM2.5)), each
[exp(beta * C) - 1] * 100 on the 3-hour moving average concentration C in ug/m3. The %AR is
banded into AQHI 1..10 and 10+. EPD revises the parameters from time to time, so they are kept
as dated sets and the set in force on the day of the observation is used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

# The value stored for AQHI "10+" (the attribute is numeric so it can be charted/aggregated).
TEN_PLUS = 11
POLLUTANTS = ("no2", "so2", "o3", "pm10", "pm25")


@dataclass(frozen=True)
class Parameters:
    valid_from: date
    beta: Mapping[str, float]  # per pollutant, per ug/m3
    bands: tuple[float, ...]  # upper %AR bound of AQHI 1..10; above the last is 10+
    source: str


PARAMETER_SETS: tuple[Parameters, ...] = (
    Parameters(
        # The AQHI replaced the API on 30 December 2013 (EPD). Values as given in issue #4.
        valid_from=date(2013, 12, 30),
        beta={
            "no2": 0.0004462559,
            "so2": 0.0001393235,
            "o3": 0.0005116328,
            "pm10": 0.0002821751,
            "pm25": 0.0002180567,
        },
        bands=(1.88, 3.76, 5.64, 7.52, 9.41, 11.29, 12.91, 15.07, 17.22, 19.37),
        source="EPD AQHI (as in issue #4)",
    ),
)


def parameters_for(day: date, sets: Sequence[Parameters] = PARAMETER_SETS) -> Parameters:
    """The parameter set in force on ``day`` (the latest one that started on or before it)."""
    usable = [p for p in sets if p.valid_from <= day]
    if not usable:
        raise ValueError(f"no AQHI parameters in force on {day.isoformat()}")
    return max(usable, key=lambda p: p.valid_from)


@dataclass(frozen=True)
class Breakdown:
    no2: float
    so2: float
    o3: float
    pm: float  # the larger of PM10 and PM2.5
    total: float
    aqhi: int  # 1..10, or TEN_PLUS
    health_risk: str


def added_risk(beta: float, concentration: float) -> float:
    return (math.exp(beta * concentration) - 1.0) * 100.0


def band(total: float, params: Parameters) -> int:
    # EPD's band table is given to two decimals (1.88, then 1.89 - 3.76, ...).
    rounded = round(total, 2)
    for index, upper in enumerate(params.bands, start=1):
        if rounded <= upper:
            return index
    return TEN_PLUS


def health_risk(aqhi: int) -> str:
    if aqhi <= 3:
        return "Low"
    if aqhi <= 6:
        return "Moderate"
    if aqhi == 7:
        return "High"
    if aqhi <= 10:
        return "Very High"
    return "Serious"


def compute(averages: Mapping[str, float | None], params: Parameters) -> Breakdown | None:
    """The AQHI from 3-hour average concentrations; None when NO2, SO2, O3 or both PMs lack."""
    if any(averages.get(p) is None for p in ("no2", "so2", "o3")):
        return None
    pms = [
        added_risk(params.beta[p], value)
        for p in ("pm10", "pm25")
        if (value := averages.get(p)) is not None
    ]
    if not pms:
        return None
    no2 = added_risk(params.beta["no2"], averages["no2"] or 0.0)
    so2 = added_risk(params.beta["so2"], averages["so2"] or 0.0)
    o3 = added_risk(params.beta["o3"], averages["o3"] or 0.0)
    pm = max(pms)
    total = no2 + so2 + o3 + pm
    aqhi = band(total, params)
    return Breakdown(no2, so2, o3, pm, total, aqhi, health_risk(aqhi))


def three_hour_averages(
    hourly: Mapping[datetime, Mapping[str, float | None]], at: datetime, *, minimum: int = 2
) -> dict[str, float | None]:
    """The mean of hours ``at-2h``..``at`` per pollutant, from at least ``minimum`` valid hours.

    EPD publishes no rule for gaps; requiring two of the three hours keeps one stray reading
    from standing in for a 3-hour average.
    """
    window = [hourly.get(at - timedelta(hours=h)) or {} for h in (2, 1, 0)]
    out: dict[str, float | None] = {}
    for pollutant in POLLUTANTS:
        values = [v for hour in window if (v := hour.get(pollutant)) is not None]
        out[pollutant] = sum(values) / len(values) if len(values) >= minimum else None
    return out
