"""TD Journey Time Indicators (``journeytime.xml``, namespace http://data.one.gov.hk/td) ->
``TrafficFlowObserved`` per indicator location and destination, with the journey time in
minutes and its colour (1 red = congested, 2 amber, 3 green)."""

from __future__ import annotations

from datetime import datetime

from smartcity.live.connectors.base import (
    Connector,
    ConnectorError,
    ConnectorResult,
    Entity,
    any_time,
    iso,
    number,
    prop,
    slug,
)
from smartcity.live.connectors.traffic import TERMS, child_text, local, read_xml

COLOURS = {"1": "red", "2": "amber", "3": "green"}


class JourneyTimes(Connector):
    name = "journey-times"
    description = "TD journey time indicators (journeytime.xml)"
    publisher = "Transport Department, HKSAR"
    organisation = "td"
    entity_types = ("TrafficFlowObserved",)
    sources = ("https://resource.data.one.gov.hk/td/journeytime.xml",)
    context = TERMS

    def parse(
        self, raw: bytes, *, fetched_at: datetime, source: str | None = None
    ) -> ConnectorResult:
        root = read_xml(raw, "the journey time feed")
        if local(root.tag) != "jtis_journey_list":
            raise ConnectorError(f"expected <jtis_journey_list>, got <{local(root.tag)}>")
        out = self.result()
        for record in root:
            if local(record.tag) != "jtis_journey_time":
                continue
            out.records += 1
            location = child_text(record, "LOCATION_ID")
            destination = child_text(record, "DESTINATION_ID")
            if not location or not destination:
                out.skip("journey time without LOCATION_ID/DESTINATION_ID")
                continue
            try:
                observed = iso(any_time(child_text(record, "CAPTURE_DATE") or ""))
            except ValueError:
                out.skip("journey time with an unreadable CAPTURE_DATE", location)
                continue
            local_id = f"HK-JTI-{slug(location)}-{slug(destination)}"
            entity: Entity = {
                "id": f"urn:ngsi-ld:TrafficFlowObserved:{local_id}",
                "type": "TrafficFlowObserved",
                "name": prop(f"{location} to {destination}"),
                "dataProvider": prop("Transport Department, HKSAR"),
            }
            minutes = number(child_text(record, "JOURNEY_DATA"))
            # Type 1 carries minutes; other types carry a message in JOURNEY_DESC instead.
            if child_text(record, "JOURNEY_TYPE") == "1" and minutes is not None and minutes >= 0:
                entity["journeyTime"] = prop(minutes, observed_at=observed, unit="MIN")
            else:
                out.warn("journey time without minutes (message only or -1)", location)
            colour = COLOURS.get(child_text(record, "COLOUR_ID") or "")
            if colour:
                entity["journeyTimeColour"] = prop(colour, observed_at=observed)
                entity["congested"] = prop(colour == "red", observed_at=observed)
            description = child_text(record, "JOURNEY_DESC")
            if description:
                entity["journeyDescription"] = prop(description, observed_at=observed)
            if len(entity) == 4:
                out.skip("journey time record without any reading", location)
                continue
            out.entities.append(entity)
        return out
