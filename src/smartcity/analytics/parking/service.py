"""Car park analytics from the hub: every OffStreetParking entity's vacancy forecasts,
occupancy profile, "likely full on arrival" and alerts (rules in analysis.py).

Vacancy forecasts use the same model and serving cadence as the traffic forecasts
(forecast/serving.py) on availableSpotNumber; profiles come from the hub's hourly means over
the same history window, recomputed with each refit."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np

from smartcity.analytics.forecast.serving import HORIZONS_MIN, ForecastService, Snapshot
from smartcity.analytics.hubseries import read_grid
from smartcity.analytics.parking.analysis import (
    ALERT_MINUTES,
    LIKELY,
    Profile,
    capacities,
    full_threshold,
    occupancy_profiles,
    p_full,
)
from smartcity.hub.contexts import city_context
from smartcity.hub.querying import EntityQuery
from smartcity.hub.service import EntityService
from smartcity.hub.temporal.service import TemporalService
from smartcity.hub.timeutil import iso_from_us
from smartcity.hub.types_expr import parse_type_selection

HOUR_US = 3_600_000_000


def _iri(name: str) -> str:
    return city_context().expand(name)


@dataclass
class CarPark:
    id: str
    name: Any  # text or a language map
    total: float | None


class ParkingService:
    def __init__(
        self,
        temporal: TemporalService,
        entities: EntityService,
        tenant: str = "",
        *,
        history_days: int = 28,
        refit_s: float = 3600.0,
        forecasts: ForecastService | None = None,
    ) -> None:
        self.entities = entities
        self.temporal = temporal
        self.tenant = tenant
        self.type_iri = _iri("OffStreetParking")
        self.available_iri = _iri("availableSpotNumber")
        self.forecasts = forecasts or ForecastService(
            temporal,
            tenant,
            type_iri=self.type_iri,
            attributes={"availableSpotNumber": self.available_iri},
            history_days=history_days,
            refit_s=refit_s,
        )
        self.history_days = history_days
        self.refit_s = refit_s
        self._lock = threading.Lock()
        self._profiles: tuple[float, dict[str, Profile]] | None = None

    def _snapshot(self) -> Snapshot:
        return self.forecasts.current("availableSpotNumber")

    def _car_parks(self, ids: list[str]) -> dict[str, CarPark]:
        total_iri, name_iri = _iri("totalSpotNumber"), _iri("name")
        query = EntityQuery(types=parse_type_selection(self.type_iri, lambda s: s))
        docs, _ = self.entities.find(self.tenant, query, limit=10_000)
        out: dict[str, CarPark] = {}
        for doc in docs:
            attrs = doc.get("attrs", {})
            total = _first(attrs.get(total_iri))
            name = _first(attrs.get(name_iri), "languageMap") or _first(attrs.get(name_iri))
            out[doc["id"]] = CarPark(
                doc["id"], name, float(total) if isinstance(total, int | float) else None
            )
        return {i: out.get(i, CarPark(i, None, None)) for i in ids}

    def profiles(self, snap: Snapshot, caps: np.ndarray) -> dict[str, Profile]:
        with self._lock:
            if self._profiles is not None and time.monotonic() - self._profiles[0] < self.refit_s:
                return self._profiles[1]
            until = snap.made_at // HOUR_US * HOUR_US
            grid = read_grid(
                self.temporal,
                self.tenant,
                self.type_iri,
                self.available_iri,
                since_us=until - self.history_days * 24 * HOUR_US,
                until_us=until,
                step_us=HOUR_US,
            )
            index = {s: j for j, s in enumerate(grid.ids)}
            values = np.full((grid.values.shape[0], len(snap.ids)), np.nan)
            for j, s in enumerate(snap.ids):
                if s in index:
                    values[:, j] = grid.values[:, index[s]]
            found = occupancy_profiles(values, caps, grid.start_local(), timedelta(hours=1))
            profiles = dict(zip(snap.ids, found, strict=True))
            self._profiles = (time.monotonic(), profiles)
            return profiles

    def status(self) -> dict[str, Any]:
        """Every car park: free spaces now, forecasts with the probability of being full, and
        whether it is likely full on arrival 15, 30 and 60 minutes from now."""
        snap = self._snapshot()
        parks = self._car_parks(snap.ids)
        caps, sources = capacities([parks[i].total for i in snap.ids], snap.observed)
        items = []
        for j, entity_id in enumerate(snap.ids):
            base = snap.entity(j, with_series=False)
            cap = float(caps[j])
            now = base["observed"]["value"] if base["observed"] else None
            full_at = full_threshold(cap)
            forecasts = []
            for f in base["forecasts"]:
                m = f["minutes"]
                value = None if f["value"] is None else float(np.clip(f["value"], 0, cap))
                p = None if value is None else p_full(value, float(snap.spread[m][j]), cap)
                forecasts.append(
                    {
                        "minutes": m,
                        "start": f["start"],
                        "available": None if value is None else round(value, 1),
                        "pFull": None if p is None else round(p, 3),
                        "likelyFullOnArrival": None if p is None else p >= LIKELY,
                    }
                )
            full_now = now is not None and now <= full_at
            items.append(
                {
                    "id": entity_id,
                    "name": parks[entity_id].name,
                    "capacity": cap,
                    "capacitySource": sources[j],
                    "fullAt": full_at,
                    "available": base["observed"],
                    "occupancy": None if now is None or cap <= 0 else round(1 - now / cap, 3),
                    "full": full_now,
                    "forecasts": forecasts,
                }
            )
        return {
            "type": self.type_iri,
            "method": "profile_ridge",
            "madeAt": iso_from_us(snap.made_at),
            "horizonsMinutes": list(HORIZONS_MIN),
            "carParks": items,
        }

    def likely_full_within(self) -> dict[str, int | None]:
        """Per car park, the first horizon (minutes) at which it is likely full on arrival; 0
        when full now; None when not likely full within the longest horizon. What the
        dashboard's car-park table shows beside the free spaces."""
        out: dict[str, int | None] = {}
        for park in self.status()["carParks"]:
            if park["full"]:
                out[park["id"]] = 0
                continue
            soon = [f["minutes"] for f in park["forecasts"] if f["likelyFullOnArrival"]]
            out[park["id"]] = min(soon) if soon else None
        return out

    def alerts(self) -> dict[str, Any]:
        """Car parks not full now but likely full within ALERT_MINUTES."""
        status = self.status()
        alerts = []
        for park in status["carParks"]:
            if park["full"] or park["available"] is None:
                continue
            soon = [
                f
                for f in park["forecasts"]
                if f["minutes"] <= ALERT_MINUTES and f["likelyFullOnArrival"]
            ]
            if soon:
                alerts.append(
                    {
                        "id": park["id"],
                        "name": park["name"],
                        "kind": "aboutToFill",
                        "withinMinutes": soon[0]["minutes"],
                        "pFull": soon[0]["pFull"],
                        "available": park["available"]["value"],
                        "capacity": park["capacity"],
                    }
                )
        return {"madeAt": status["madeAt"], "alertMinutes": ALERT_MINUTES, "alerts": alerts}

    def car_park(self, entity_id: str) -> dict[str, Any] | None:
        """One car park's status, observed series (24 h) and occupancy profile."""
        status = self.status()
        found = [p for p in status["carParks"] if p["id"] == entity_id]
        if not found:
            return None
        snap = self._snapshot()
        j = snap.ids.index(entity_id)
        caps = np.array([p["capacity"] for p in status["carParks"]])
        profile = self.profiles(snap, caps)[entity_id]
        park = dict(found[0])
        park["series"] = snap.entity(j, with_series=True)["series"]
        park["profile"] = {
            "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
            "hours": list(range(24)),
            "occupancy": [
                [None if np.isnan(v) else round(float(v), 3) for v in row]
                for row in profile.occupancy
            ],
            "hourlyMeans": profile.counts.astype(int).tolist(),
            "timeZone": "Asia/Hong_Kong",
        }
        return park


def _first(instances: list[dict[str, Any]] | None, member: str = "value") -> Any:
    if not instances:
        return None
    return instances[0].get(member)
