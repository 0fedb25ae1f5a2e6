"""TD road network segment speeds (``irnAvgSpeed-all.xml``) -> ``TrafficFlowObserved`` per
segment, pointing at its ``RoadSegment`` (Intelligent Road Network segment id). Segments
flagged ``valid=N`` are skipped and counted."""

from __future__ import annotations

from datetime import date, datetime, time

from smartcity.live.connectors.base import (
    HKT,
    Connector,
    ConnectorError,
    ConnectorResult,
    iso,
    number,
    prop,
    rel,
    slug,
)
from smartcity.live.connectors.traffic import TERMS, child_text, local, read_xml


class RoadSpeeds(Connector):
    name = "road-speeds"
    description = "TD average speed of road network segments (irnAvgSpeed-all.xml)"
    publisher = "Transport Department, HKSAR"
    organisation = "td"
    entity_types = ("TrafficFlowObserved",)
    sources = ("https://resource.data.one.gov.hk/td/traffic-detectors/irnAvgSpeed-all.xml",)
    context = TERMS

    def parse(
        self, raw: bytes, *, fetched_at: datetime, source: str | None = None
    ) -> ConnectorResult:
        root = read_xml(raw, "the segment speed feed")
        if local(root.tag) != "segment_speed_list":
            raise ConnectorError(f"expected <segment_speed_list>, got <{local(root.tag)}>")
        try:
            at = datetime.combine(
                date.fromisoformat(child_text(root, "date") or ""),
                time.fromisoformat(child_text(root, "time") or ""),
                tzinfo=HKT,
            )
        except ValueError:
            raise ConnectorError("the segment speed feed has no valid <date>/<time>") from None
        observed = iso(at)
        version = child_text(root, "irn_version") or ""
        out = self.result()
        for segment in root.iter():
            if local(segment.tag) != "segment":
                continue
            out.records += 1
            segment_id = child_text(segment, "segment_id")
            if not segment_id:
                out.skip("segment without an id")
                continue
            if (child_text(segment, "valid") or "").upper() != "Y":
                out.skip("valid=N: TD marks the segment speed invalid", segment_id)
                continue
            speed = number(child_text(segment, "speed"))
            if speed is None or speed < 0:
                out.skip("segment without a usable speed", segment_id)
                continue
            entity = {
                "id": f"urn:ngsi-ld:TrafficFlowObserved:HK-IRN-{slug(segment_id)}",
                "type": "TrafficFlowObserved",
                "averageVehicleSpeed": prop(speed, observed_at=observed, unit="KMH"),
                "refRoadSegment": rel(f"urn:ngsi-ld:RoadSegment:HK-IRN-{slug(segment_id)}"),
                "dataProvider": prop("Transport Department, HKSAR"),
            }
            if version:
                entity["source"] = prop(f"irnAvgSpeed-all.xml (IRN version {version})")
            out.entities.append(entity)
        return out
