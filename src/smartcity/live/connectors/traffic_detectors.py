"""TD strategic / major road detectors (``rawSpeedVol-all.xml``) -> ``TrafficFlowObserved``,
one entity per detector lane, one history instance per 30-second period.

Quirks handled: a lane flagged ``valid=N`` is skipped and counted; with a volume of 0 the feed
reports the road's speed limit as the speed, which is not a measurement, so no speed is written
for that period; periods that cross midnight; overlapping files (the same detector, lane and
period always give the same entity id and observedAt, and the writer drops readings the hub
already holds).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, datetime, time, timedelta

from smartcity.live.connectors.base import (
    HKT,
    Connector,
    ConnectorError,
    ConnectorResult,
    Entity,
    iso,
    number,
    prop,
    slug,
)
from smartcity.live.connectors.traffic import TERMS, child_text, local, read_xml


class TrafficDetectors(Connector):
    name = "traffic-detectors"
    description = "TD raw detector speed/volume/occupancy per lane (rawSpeedVol-all.xml)"
    publisher = "Transport Department, HKSAR"
    organisation = "td"
    entity_types = ("TrafficFlowObserved",)
    sources = ("https://resource.data.one.gov.hk/td/traffic-detectors/rawSpeedVol-all.xml",)
    context = TERMS

    def parse(
        self, raw: bytes, *, fetched_at: datetime, source: str | None = None
    ) -> ConnectorResult:
        root = read_xml(raw, "the detector feed")
        if local(root.tag) != "raw_speed_volume_list":
            raise ConnectorError(f"expected <raw_speed_volume_list>, got <{local(root.tag)}>")
        out = self.result()
        try:
            day = date.fromisoformat(child_text(root, "date") or "")
        except ValueError:
            raise ConnectorError("the detector feed has no valid <date>") from None
        for period in root.iter():
            if local(period.tag) != "period":
                continue
            try:
                start = _at(day, child_text(period, "period_from"))
                end = _at(day, child_text(period, "period_to"))
            except ValueError:
                out.skip("period with unreadable period_from/period_to")
                continue
            if end <= start:  # 23:59:30 -> 00:00:00 ends on the next day
                end += timedelta(days=1)
            for detector in period.iter():
                if local(detector.tag) == "detector":
                    self._detector(detector, start, end, out)
        return out

    def _detector(
        self, detector: ET.Element, start: datetime, end: datetime, out: ConnectorResult
    ) -> None:
        detector_id = child_text(detector, "detector_id")
        if not detector_id:
            out.skip("detector without an id")
            return
        direction = child_text(detector, "direction")
        lanes = [e for e in detector.iter() if local(e.tag) == "lane"]
        observed = iso(end)
        for position, lane in enumerate(lanes, start=1):
            out.records += 1
            lane_name = child_text(lane, "lane_id") or f"Lane {position}"
            if (child_text(lane, "valid") or "").upper() != "Y":
                out.skip("valid=N: TD marks the lane reading invalid", detector_id)
                continue
            volume = number(child_text(lane, "volume"))
            speed = number(child_text(lane, "speed"))
            occupancy = number(child_text(lane, "occupancy"))
            if volume is None or volume < 0:
                out.skip("lane reading without a volume", detector_id)
                continue
            entity: Entity = {
                "id": f"urn:ngsi-ld:TrafficFlowObserved:HK-{slug(detector_id)}-{slug(lane_name)}",
                "type": "TrafficFlowObserved",
                "name": prop(f"{detector_id} {lane_name}"),
                "laneId": prop(position),
                "dateObservedFrom": prop(iso(start)),
                "dateObservedTo": prop(iso(end)),
                "intensity": prop(int(volume), observed_at=observed),
                "dataProvider": prop("Transport Department, HKSAR"),
            }
            if direction:
                entity["compassDirection"] = prop(direction)
            if occupancy is not None and 0 <= occupancy <= 100:
                entity["occupancy"] = prop(round(occupancy / 100, 4), observed_at=observed)
            if volume == 0:
                out.warn("volume 0: the reported speed is the speed limit, not written")
            elif speed is not None and speed >= 0:
                entity["averageVehicleSpeed"] = prop(speed, observed_at=observed, unit="KMH")
                sd = number(child_text(lane, "s.d."))
                if sd is not None and sd >= 0:
                    entity["speedStandardDeviation"] = prop(sd, observed_at=observed, unit="KMH")
            out.entities.append(entity)


def _at(day: date, text: str | None) -> datetime:
    return datetime.combine(day, time.fromisoformat(text or ""), tzinfo=HKT)
