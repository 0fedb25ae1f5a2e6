"""``smartcity analytics ...`` and ``smartcity history ...``: the analytics group
(``analytics/cli.py``: ``sql``) with each analysis's own sub-app mounted on it."""

from __future__ import annotations

from smartcity.analytics.cli import analytics_app, history_app
from smartcity.analytics.crowds.cli import crowds_app
from smartcity.analytics.forecast.cli import forecast_app
from smartcity.analytics.traffic.cli import traffic_app
from smartcity.analytics.water.cli import water_app

analytics_app.add_typer(traffic_app, name="traffic")
analytics_app.add_typer(forecast_app, name="forecast")
analytics_app.add_typer(crowds_app, name="crowds")
analytics_app.add_typer(water_app, name="water")

__all__ = ["analytics_app", "history_app"]
