"""``smartcity analytics ...``: the analyses' commands (each feature's own sub-app)."""

from __future__ import annotations

import typer

from smartcity.analytics.traffic.cli import traffic_app

analytics_app = typer.Typer(help="City analytics (docs/analytics.md).", no_args_is_help=True)
analytics_app.add_typer(traffic_app, name="traffic")
