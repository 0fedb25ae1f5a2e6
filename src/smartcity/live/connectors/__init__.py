"""Hong Kong open-data connectors: one module per feed, registered here by command-line name."""

from __future__ import annotations

from smartcity.live.connectors.air_quality import AirQuality
from smartcity.live.connectors.base import Connector, ConnectorError, ConnectorResult
from smartcity.live.connectors.carparks import Carparks
from smartcity.live.connectors.citybus_eta import CitybusEta
from smartcity.live.connectors.journey_times import JourneyTimes
from smartcity.live.connectors.kmb_eta import KmbEta
from smartcity.live.connectors.lampposts import Lampposts
from smartcity.live.connectors.road_speeds import RoadSpeeds
from smartcity.live.connectors.traffic_detectors import TrafficDetectors

REGISTRY: dict[str, type[Connector]] = {
    c.name: c
    for c in (
        Carparks,
        KmbEta,
        CitybusEta,
        TrafficDetectors,
        RoadSpeeds,
        JourneyTimes,
        AirQuality,
        Lampposts,
    )
}


def get(name: str, **options: str) -> Connector:
    """The connector called ``name`` (as on the command line), configured with ``options``."""
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise ConnectorError(
            f"no connector {name!r}; choose one of {', '.join(REGISTRY)}"
        ) from None
    return cls(**options)


__all__ = ["REGISTRY", "Connector", "ConnectorError", "ConnectorResult", "get"]
