"""Citybus open data (rt.data.gov.hk/v2/transport/citybus/): routes, stops, route-stops and
ETAs. The parsing is shared with KMB (``transit.py``)."""

from __future__ import annotations

from typing import ClassVar

from smartcity.live.connectors.transit import BusConnector


class CitybusEta(BusConnector):
    name = "citybus-eta"
    description = "Citybus routes, stops, route-stops and ETAs (v2 API)"
    publisher = "Citybus Limited"
    organisation = ""
    entity_types = ("GtfsStop", "GtfsRoute", "ArrivalEstimation")
    sources = ("https://rt.data.gov.hk/v2/transport/citybus/",)
    operator = "CTB"
    agency = "Citybus Ltd."
    options: ClassVar[dict[str, str]] = {}  # Citybus ETA rows name their stop
