"""The analyses that raise alerts, run by ``serve`` on the cluster's scheduler.

With ``SMARTCITY_ANALYTICS_ALERTS`` set to a period in seconds (``smartcity demo`` sets 60),
one node of the cluster (the scheduler's lease, storage/leases.py) runs every period:

* crowds: every venue's zones (density, Fruin LOS, the alert ladder);
* parking: car parks likely full within the alert horizon become ``Alert`` entities
  (``traffic``/``carParkAboutToFill``, our sub-category), cleared when no longer so;
* water leakage: every ``WATER_EVERY`` runs (night flows change once a day).

Each keeps its ``Alert`` entities in the hub true (analytics/alerts.py ``reconcile``), so
subscriptions, the dashboard's API and the open data catalogue see them. Off by default: a
server with no such data has nothing to compute, and tests count entities.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import partial
from typing import Any

from smartcity.analytics.alerts import AlertSpec, reconcile
from smartcity.analytics.tenancy import analytics_tenant
from smartcity.hub.runtime import Hub
from smartcity.hub.timeutil import now_us
from smartcity.storage.leases import Stop

log = logging.getLogger("smartcity.analytics")
SETTING = "SMARTCITY_ANALYTICS_ALERTS"
WATER_EVERY = 15  # runs between two water examinations
PARKING = "parking"


def period_from_env() -> float | None:
    raw = os.environ.get(SETTING, "").strip()
    if not raw or raw == "0":
        return None
    try:
        period = float(raw)
    except ValueError:
        raise ValueError(f"{SETTING} must be a period in seconds (e.g. 60), not {raw!r}") from None
    if period < 5:
        raise ValueError(f"{SETTING}: at least 5 seconds (got {period:g})")
    return period


def parking_alerts(status: dict[str, Any]) -> list[AlertSpec]:
    """``ParkingService.alerts()``'s answer as alerts."""
    out = []
    for a in status["alerts"]:
        name = a.get("name")
        label = name.get("en") if isinstance(name, dict) else name
        label = label or a["id"].rsplit(":", 1)[-1]
        out.append(
            AlertSpec(
                analysis=PARKING,
                subject=a["id"].rsplit(":", 1)[-1],
                category="traffic",
                sub_category="carParkAboutToFill",
                severity="medium",
                description=(
                    f"{label}: {a['available']} spaces free, likely full within "
                    f"{a['withinMinutes']} minutes (probability {a['pFull']:.0%})"
                ),
                source=a["id"],
                data={k: a[k] for k in ("withinMinutes", "pFull", "available", "capacity")},
            )
        )
    return out


def run_once(hub: Hub, parking: Any, at_us: int, run_number: int = 0) -> None:
    """One round of the alerting analyses at ``at_us``. Each writes its alerts in the tenant
    its data was read from (the analytics tenant, SMARTCITY_ANALYTICS_TENANT): an alert about
    a tenant's car park or zone belongs beside it, and the default tenant's reconcile must
    not clear (or raise) alerts that are another tenant's."""
    from smartcity.analytics.crowds.analysis import run as run_crowds
    from smartcity.analytics.crowds.venue import load_venue, venues
    from smartcity.analytics.water.analysis import run as run_water

    tenant = parking.service.tenant if parking is not None else analytics_tenant(hub)[0]

    def guarded(name: str, job: Callable[[], object]) -> None:
        try:
            job()
        except Exception:  # one analysis failing never stops the others or the server
            log.exception("analytics: the %s alerts could not be computed", name)

    for venue in venues():
        guarded("crowds", partial(run_crowds, hub, load_venue(venue), at_us, tenant=tenant))
    if parking is not None:
        guarded(
            PARKING,
            lambda: reconcile(
                hub.entities,
                PARKING,
                parking_alerts(parking.service.alerts()),
                at_us=at_us,
                tenant=parking.service.tenant,
            ),
        )
    if run_number % WATER_EVERY == 0:
        guarded("water", lambda: run_water(hub, at_us, tenant=tenant))


def start(hub: Hub, parking: Any, period_s: float) -> Stop:
    """Register the alerting analyses on the hub's scheduler; returns the stop handle."""
    runs = [0]

    def once() -> None:
        run_once(hub, parking, now_us(), runs[0])
        runs[0] += 1

    return hub.scheduler.every("analytics.alerts", period_s, once, delay_s=min(period_s, 10.0))
