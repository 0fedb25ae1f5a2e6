"""``smartcity analytics``: the analyses' commands, each analysis a sub-app of its own."""

from __future__ import annotations

import typer

from smartcity.analytics.cli import crowds_app, water_app

analytics_app = typer.Typer(help="City analytics: crowds, water leakage.", no_args_is_help=True)
analytics_app.add_typer(crowds_app, name="crowds")
analytics_app.add_typer(water_app, name="water")
