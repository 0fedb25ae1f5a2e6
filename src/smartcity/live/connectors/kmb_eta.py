"""KMB / Long Win bus open data (data.etabus.gov.hk/v1/transport/kmb/): route list, stop list,
route-stop list and ETAs. The parsing is shared with Citybus (``transit.py``)."""

from __future__ import annotations

from smartcity.live.connectors.transit import BusConnector


class KmbEta(BusConnector):
    name = "kmb-eta"
    description = "KMB routes, stops, route-stops and ETAs (v1 API)"
    publisher = "The Kowloon Motor Bus Co. (1933) Ltd."
    organisation = ""
    entity_types = ("GtfsStop", "GtfsRoute", "ArrivalEstimation")
    sources = ("https://data.etabus.gov.hk/v1/transport/kmb/",)
    operator = "KMB"
    agency = "The Kowloon Motor Bus Co. (1933) Ltd."
