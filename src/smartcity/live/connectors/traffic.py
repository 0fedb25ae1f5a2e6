"""Shared pieces of the Transport Department traffic connectors (Smart Data Models
Transportation terms, XML reading)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from smartcity.live.connectors.base import ConnectorError, terms

TERMS = terms(
    "TrafficFlowObserved",
    "averageVehicleSpeed",
    "intensity",
    "occupancy",
    "laneId",
    "congested",
    "dateObservedFrom",
    "dateObservedTo",
    "refRoadSegment",
    # Hong Kong specifics without a Smart Data Models term (NGSI-LD default context IRIs).
    "compassDirection",
    "speedStandardDeviation",
    "journeyTime",
    "journeyTimeColour",
    "journeyDescription",
)


def read_xml(raw: bytes, what: str) -> ET.Element:
    if b"<!DOCTYPE" in raw[:2048] or b"<!ENTITY" in raw[:4096]:
        raise ConnectorError(f"{what}: document type declarations are not accepted")
    try:
        return ET.fromstring(raw)
    except ET.ParseError as exc:
        raise ConnectorError(f"{what} is not well-formed XML ({exc})") from None


def local(tag: str) -> str:
    """An element name without its namespace."""
    return tag.rsplit("}", 1)[-1]


def child_text(element: ET.Element, name: str) -> str | None:
    """The text of the first child called ``name`` in any namespace."""
    for child in element:
        if local(child.tag) == name:
            return (child.text or "").strip()
    return None
