"""EPD air quality -> ``AirQualityObserved`` per monitoring station, one history instance per
hour, with the AQHI computed by EPD's method (``aqhi.py``).

Reads ``24pc_Eng.xml`` (past 24 hours of pollutant concentrations, ug/m3; "-" = no data; the
element for PM2.5 is literally ``<PM2.5>``) and, optionally, ``24aqhi_Eng.xml`` (the AQHI EPD
published, kept as ``aqhiPublished`` for cross-checking). Times are Hong Kong time in RFC 822
form ("Mon, 05 Oct 2026 15:00:00 +0800"); observedAt is the hour of the reading.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar

from smartcity.live.connectors import aqhi
from smartcity.live.connectors.base import (
    Connector,
    ConnectorError,
    ConnectorResult,
    Entity,
    iso,
    number,
    point,
    prop,
    slug,
    terms,
)
from smartcity.live.connectors.traffic import child_text, local, read_xml

ELEMENTS = {"NO2": "no2", "O3": "o3", "SO2": "so2", "CO": "co", "PM10": "pm10", "PM2.5": "pm25"}
UG_M3 = "GQ"  # UN/CEFACT: microgram per cubic metre
# EPD monitoring stations (approximate WGS84 positions of the station sites).
STATIONS: dict[str, tuple[float, float, str]] = {
    "Central/Western": (114.1443, 22.2849, "general"),
    "Eastern": (114.2191, 22.2829, "general"),
    "Kwun Tong": (114.2312, 22.3096, "general"),
    "Sham Shui Po": (114.1591, 22.3302, "general"),
    "Kwai Chung": (114.1296, 22.3571, "general"),
    "Tsuen Wan": (114.1145, 22.3717, "general"),
    "Tseung Kwan O": (114.2595, 22.3177, "general"),
    "Yuen Long": (114.0228, 22.4452, "general"),
    "Tuen Mun": (113.9767, 22.3913, "general"),
    "Tung Chung": (113.9437, 22.2889, "general"),
    "Tai Po": (114.1645, 22.4510, "general"),
    "Sha Tin": (114.1846, 22.3764, "general"),
    "North": (114.1283, 22.4967, "general"),
    "Tap Mun": (114.3607, 22.4713, "general"),
    "Southern": (114.1602, 22.2474, "general"),
    "Causeway Bay": (114.1850, 22.2801, "roadside"),
    "Central": (114.1581, 22.2819, "roadside"),
    "Mong Kok": (114.1683, 22.3225, "roadside"),
}


def station_id(name: str) -> str:
    return f"urn:ngsi-ld:AirQualityObserved:HK-EPD-{slug(name)}"


def _hour(text: str | None) -> datetime:
    if not text:
        raise ValueError("no DateTime")
    return parsedate_to_datetime(text)


class AirQuality(Connector):
    name = "air-quality"
    description = "EPD pollutant concentrations and AQHI (24pc_Eng.xml, 24aqhi_Eng.xml)"
    publisher = "Environmental Protection Department, HKSAR"
    organisation = "epd"
    entity_types = ("AirQualityObserved",)
    sources = (
        "https://www.aqhi.gov.hk/epd/ddata/html/out/24pc_Eng.xml",
        "https://www.aqhi.gov.hk/epd/ddata/html/out/24aqhi_Eng.xml",
    )
    context: ClassVar[dict[str, str]] = terms(
        "AirQualityObserved",
        "no2",
        "o3",
        "so2",
        "co",
        "pm10",
        "pm25",
        "airQualityLevel",
        "typeOfLocation",
        # Hong Kong's index has no Smart Data Models term (NGSI-LD default context IRIs).
        "aqhi",
        "addedHealthRisk",
        "aqhiPublished",
    )

    def parse(
        self, raw: bytes, *, fetched_at: datetime, source: str | None = None
    ) -> ConnectorResult:
        root = read_xml(raw, "the EPD feed")
        kind = local(root.tag)
        if kind == "AQHI24HrPollutantConcentration":
            return self._concentrations(root)
        if kind == "AQHI24HrReport":
            return self._published(root)
        raise ConnectorError(
            f"expected EPD 24pc_Eng.xml or 24aqhi_Eng.xml, got <{kind}>; use the English files"
        )

    def _entity(self, station: str, out: ConnectorResult) -> Entity:
        entity: Entity = {"id": station_id(station), "type": "AirQualityObserved"}
        known = STATIONS.get(station)
        if known:
            entity["location"] = point(known[0], known[1])
            entity["typeOfLocation"] = prop("outdoor")
        else:
            out.warn("station not in the station table: no location", station)
        entity["name"] = prop(station)
        entity["dataProvider"] = prop("Environmental Protection Department, HKSAR")
        return entity

    def _concentrations(self, root: ET.Element) -> ConnectorResult:
        out = self.result()
        hourly: dict[str, dict[datetime, dict[str, float | None]]] = defaultdict(dict)
        for record in root:
            if local(record.tag) != "PollutantConcentration":
                continue
            out.records += 1
            station = child_text(record, "StationName")
            try:
                hour = _hour(child_text(record, "DateTime"))
            except (ValueError, TypeError):
                out.skip("record with an unreadable DateTime", station or "")
                continue
            if not station:
                out.skip("record without a StationName")
                continue
            values: dict[str, float | None] = {}
            for element, pollutant in ELEMENTS.items():
                value = number(child_text(record, element))
                if value is not None and value < 0:
                    value = None
                if value is None:
                    out.warn(f"{element} missing ('-')")
                values[pollutant] = value
            hourly[station][hour] = values
        for station, hours in hourly.items():
            for hour in sorted(hours):
                observed = iso(hour)
                entity = self._entity(station, out)
                entity["dateObserved"] = prop(observed)
                for pollutant, value in hours[hour].items():
                    if value is not None:
                        entity[pollutant] = prop(value, observed_at=observed, unit=UG_M3)
                params = aqhi.parameters_for(hour.date())
                result = aqhi.compute(aqhi.three_hour_averages(hours, hour), params)
                if result is None:
                    out.warn("AQHI not computed: too few hours of NO2/SO2/O3/PM in 3 h")
                else:
                    entity["aqhi"] = prop(result.aqhi, observed_at=observed)
                    entity["airQualityLevel"] = prop(result.health_risk, observed_at=observed)
                    entity["addedHealthRisk"] = prop(
                        round(result.total, 3), observed_at=observed, unit="P1"
                    )
                out.entities.append(entity)
        return out

    def _published(self, root: ET.Element) -> ConnectorResult:
        out = self.result()
        for item in root:
            if local(item.tag) != "item":
                continue
            out.records += 1
            station = child_text(item, "StationName")
            raw = (child_text(item, "aqhi") or "").strip()
            value = aqhi.TEN_PLUS if raw == "10+" else number(raw)
            try:
                hour = _hour(child_text(item, "DateTime"))
            except (ValueError, TypeError):
                out.skip("AQHI item with an unreadable DateTime", station or "")
                continue
            if not station or value is None:
                out.skip("AQHI item without a station or a value", station or "")
                continue
            entity = self._entity(station, out)
            entity["aqhiPublished"] = prop(int(value), observed_at=iso(hour))
            out.entities.append(entity)
        return out
