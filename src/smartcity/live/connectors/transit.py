"""Franchised bus open data (KMB v1, Citybus v2) -> ``GtfsStop``, ``GtfsRoute``,
``ArrivalEstimation`` (Smart Data Models UrbanMobility).

Both operators wrap every answer as ``{"type": "...", "version": ..., "generated_timestamp":
..., "data": ...}``; the ``type`` says what it holds (RouteList, Stop, RouteStop, ETA, StopETA,
...). Quirks handled: coordinates arrive as strings, ``eta`` may be null (no departure
scheduled: the row is skipped and counted), an error body (``{"code": "422", "message":
...}``) raises a clear error so nothing is written, and a KMB StopETA row does not name its
stop (it is in the URL): the stop comes from ``--option stop=ID`` or from the URL.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from typing import Any, ClassVar

from smartcity.live.connectors.base import (
    Connector,
    ConnectorError,
    ConnectorResult,
    Entity,
    any_time,
    iso,
    languages,
    number,
    point,
    prop,
    rel,
    slug,
    terms,
)

TERMS = terms(
    "GtfsStop",
    "GtfsRoute",
    "ArrivalEstimation",
    "code",
    "shortName",
    "routeType",
    "operatedBy",
    "hasStop",
    "hasRoute",
    "headSign",
    "remainingTime",
    "stopSequence",
    # Hong Kong specifics without a Smart Data Models term (NGSI-LD default context IRIs).
    "estimatedArrivalTime",
    "etaSequence",
    "remark",
    "stops",
    "serviceType",
)
_STOP_IN_URL = re.compile(r"/(?:stop-eta|eta|stop)/([0-9A-Za-z]+)")
DIRECTIONS = {"O": "O", "I": "I", "OUTBOUND": "O", "INBOUND": "I"}


def duration(seconds: float) -> str:
    """ISO 8601 duration of a non-negative number of seconds (a past ETA is PT0S)."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    return text + (f"{secs}S" if secs or text == "PT" else "")


class BusConnector(Connector):
    operator: ClassVar[str]  # "KMB" or "CTB"
    agency: ClassVar[str]
    context = TERMS
    options: ClassVar[dict[str, str]] = {
        "stop": "the stop id of a KMB stop-eta payload read from a file"
    }

    # -- ids -----------------------------------------------------------------------------------
    def stop_id(self, stop: str) -> str:
        return f"urn:ngsi-ld:GtfsStop:{self.operator}-{slug(stop)}"

    def route_id(self, row: dict[str, Any]) -> str:
        parts = [self.operator, str(row["route"]), _direction(row)]
        if self.operator == "KMB":
            parts.append(str(row.get("service_type", "1")))
        return "urn:ngsi-ld:GtfsRoute:" + "-".join(slug(p) for p in parts)

    # -- parse ---------------------------------------------------------------------------------
    def parse(
        self, raw: bytes, *, fetched_at: datetime, source: str | None = None
    ) -> ConnectorResult:
        out = self.result()
        text = raw.decode("utf-8-sig", errors="replace")
        if text.lstrip().startswith("stop,"):  # a CSV flattening of the stop list
            for row in csv.DictReader(io.StringIO(text)):
                out.records += 1
                self._stop(row, out)
            return out
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConnectorError(
                f"{self.agency} answered something that is not JSON ({exc})"
            ) from None
        if isinstance(doc, dict) and "code" in doc and "message" in doc and "data" not in doc:
            raise ConnectorError(
                f"{self.agency} answered an error: {doc.get('code')} {doc.get('message')}; "
                "check the route/stop/direction in the URL"
            )
        if isinstance(doc, dict) and "stop" in doc and "lat" in doc:  # a bare stop item
            doc = {"type": "Stop", "data": doc}
        if not isinstance(doc, dict) or "data" not in doc:
            raise ConnectorError(f"not a {self.agency} API answer (no 'data' member)")
        kind = str(doc.get("type", ""))
        rows = doc["data"] if isinstance(doc["data"], list) else [doc["data"]]
        if kind in ("Stop", "StopList"):
            handler = self._stop
        elif kind in ("Route", "RouteList"):
            handler = self._route
        elif kind in ("RouteStop", "RouteStopList"):
            self._route_stops(rows, out)
            return out
        elif kind in ("ETA", "StopETA", "RouteETA"):
            stop = self.settings.get("stop") or _stop_from(source)
            for row in rows:
                out.records += 1
                self._arrival(row, stop, out)
            return out
        else:
            raise ConnectorError(f"{self.agency} answer of type {kind!r} is not supported")
        for row in rows:
            out.records += 1
            handler(row, out)
        return out

    def _stop(self, row: Any, out: ConnectorResult) -> None:
        if not isinstance(row, dict) or not row.get("stop"):
            out.skip("stop without an id")
            return
        lat, lon = number(row.get("lat")), number(row.get("long"))  # strings in both APIs
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            out.skip("stop without usable coordinates", str(row))
            return
        entity: Entity = {
            "id": self.stop_id(str(row["stop"])),
            "type": "GtfsStop",
            "code": prop(str(row["stop"])),
            "location": point(lon, lat),
            "dataProvider": prop(self.agency),
        }
        name = languages(row.get("name_en"), row.get("name_tc"), row.get("name_sc"))
        if name:
            entity["name"] = name
        out.entities.append(entity)

    def _route(self, row: Any, out: ConnectorResult) -> None:
        if not isinstance(row, dict) or not row.get("route"):
            out.skip("route without a route number")
            return
        base = {**row, "bound": row.get("bound") or "O"}
        variants = [base]
        if self.operator == "CTB" and not row.get("bound") and not row.get("dir"):
            # The Citybus route list gives one row per route, origin to destination
            # (outbound); the inbound service runs the other way.
            swapped = {
                k.replace("orig", "@").replace("dest", "orig").replace("@", "dest"): v
                for k, v in row.items()
            }
            variants.append({**swapped, "bound": "I"})
        for variant in variants:
            entity: Entity = {
                "id": self.route_id(variant),
                "type": "GtfsRoute",
                "shortName": prop(str(variant["route"])),
                "routeType": prop(3),  # GTFS route_type 3 = bus
                "operatedBy": rel(f"urn:ngsi-ld:GtfsAgency:{self.operator}"),
                "dataProvider": prop(self.agency),
            }
            name = languages(*(_journey(variant, lang) for lang in ("en", "tc", "sc")))
            if name:
                entity["name"] = name
            if self.operator == "KMB":
                entity["serviceType"] = prop(str(variant.get("service_type", "1")))
            out.entities.append(entity)

    def _route_stops(self, rows: list[Any], out: ConnectorResult) -> None:
        routes: dict[str, list[tuple[int, str]]] = {}
        for row in rows:
            out.records += 1
            seq = number(row.get("seq")) if isinstance(row, dict) else None
            if seq is None or not row.get("route") or not row.get("stop"):
                out.skip("route-stop row without route, stop or sequence", str(row))
                continue
            routes.setdefault(self.route_id(row), []).append((int(seq), str(row["stop"])))
        for route, stops in routes.items():
            ordered = [self.stop_id(stop) for _, stop in sorted(stops)]
            out.entities.append(
                {
                    "id": route,
                    "type": "GtfsRoute",
                    "stops": {"type": "ListRelationship", "objectList": ordered},
                }
            )

    def _arrival(self, row: Any, stop: str | None, out: ConnectorResult) -> None:
        if not isinstance(row, dict) or not row.get("route"):
            out.skip("ETA row without a route")
            return
        if not row.get("eta"):
            out.skip("eta null: no departure scheduled", str(row.get("rmk_en", "")))
            return
        seq, eta_seq = number(row.get("seq")), number(row.get("eta_seq"))
        try:
            eta = any_time(str(row["eta"]))
            stamp = any_time(str(row.get("data_timestamp") or row["eta"]))
        except ValueError:
            out.skip("ETA row with an unreadable time", str(row))
            return
        if seq is None or eta_seq is None:
            out.skip("ETA row without seq/eta_seq", str(row))
            return
        stop = str(row.get("stop") or stop or "")
        parts = [self.operator, str(row["route"]), _direction(row)]
        if self.operator == "KMB":
            parts.append(str(row.get("service_type", "1")))
        parts += [str(int(seq)), str(int(eta_seq))]
        observed = iso(stamp)
        entity: Entity = {
            "id": "urn:ngsi-ld:ArrivalEstimation:" + "-".join(slug(p) for p in parts),
            "type": "ArrivalEstimation",
            "hasRoute": rel(self.route_id(row)),
            "stopSequence": prop(int(seq)),
            "etaSequence": prop(int(eta_seq)),
            "estimatedArrivalTime": prop(iso(eta), observed_at=observed),
            "remainingTime": prop(duration((eta - stamp).total_seconds()), observed_at=observed),
            "dataProvider": prop(self.agency),
        }
        if stop:
            entity["hasStop"] = rel(self.stop_id(stop))
        else:
            out.warn("KMB ETA without a stop id (pass --option stop=ID)")
        sign = languages(row.get("dest_en"), row.get("dest_tc"), row.get("dest_sc"))
        if sign:
            entity["headSign"] = sign
        remark = languages(row.get("rmk_en"), row.get("rmk_tc"), row.get("rmk_sc"))
        if remark:
            entity["remark"] = remark
        out.entities.append(entity)


def _direction(row: dict[str, Any]) -> str:
    raw = str(row.get("bound") or row.get("dir") or "O").upper()
    return DIRECTIONS.get(raw, raw)


def _journey(row: dict[str, Any], lang: str) -> str | None:
    orig, dest = row.get(f"orig_{lang}"), row.get(f"dest_{lang}")
    if isinstance(orig, str) and isinstance(dest, str) and orig and dest:
        return f"{orig} - {dest}"
    return None


def _stop_from(source: str | None) -> str | None:
    match = _STOP_IN_URL.search(source or "")
    return match.group(1) if match and source and "://" in source else None
