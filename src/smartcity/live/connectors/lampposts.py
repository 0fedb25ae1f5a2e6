"""HKO smart lamppost weather readings -> ``WeatherObserved`` (and the lamppost ``Device``).

Reads the per-device reading (``smart-lamppost.php?pi=DF1020&di=04``: element codes T0 air
temperature, RH relative humidity, W0 10-minute wind speed, WD wind direction; values are
strings; ``TS`` is Hong Kong time ``YYYYmmddHHMMSS``) and the device location list
(``smart_lamppost_met_device_location.json``: LP_LATITUDE/LP_LONGITUDE in WGS84 and
LP_NORTH/LP_EAST in the HK1980 Grid, EPSG:2326). Grid coordinates are converted with pyproj;
when both are given and disagree by more than 50 m the record is flagged.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from smartcity.live.connectors.base import (
    Connector,
    ConnectorError,
    ConnectorResult,
    Entity,
    hk_time,
    iso,
    number,
    point,
    prop,
    rel,
    slug,
    terms,
)

ELEMENTS = {  # HKO element code -> (attribute, unit code, scale)
    "T0": ("temperature", "CEL", 1.0),
    "RH": ("relativeHumidity", "P1", 1.0),
    "W0": ("windSpeed", "MTS", 1.0),
    "WD": ("windDirection", "DD", 1.0),
}
MAX_DISAGREEMENT_M = 50.0

if TYPE_CHECKING:
    from pyproj import Transformer


@cache
def _grid_to_wgs84() -> Transformer:
    from pyproj import Transformer  # imported when needed: it is slow to load

    return Transformer.from_crs("EPSG:2326", "EPSG:4326", always_xy=True)


def hk1980_to_wgs84(easting: float, northing: float) -> tuple[float, float]:
    """HK1980 Grid (EPSG:2326) easting/northing -> WGS84 (longitude, latitude)."""
    lon, lat = _grid_to_wgs84().transform(easting, northing)
    return float(lon), float(lat)


def device_id(lamppost: str, device: str | None = None) -> str:
    return f"urn:ngsi-ld:Device:HK-HKO-SLP-{slug(lamppost)}" + (
        f"-{slug(device)}" if device else ""
    )


class Lampposts(Connector):
    name = "lampposts"
    description = "HKO smart lamppost weather readings and device locations"
    publisher = "Hong Kong Observatory"
    organisation = ""
    entity_types = ("WeatherObserved", "Device")
    sources = ("https://data.weather.gov.hk/weatherAPI/",)
    context: ClassVar[dict[str, str]] = terms(
        "WeatherObserved",
        "temperature",
        "relativeHumidity",
        "windSpeed",
        "windDirection",
        "refDevice",
        "Device",
        "controlledProperty",
        "serialNumber",
        "deviceCategory",
    )

    def parse(
        self, raw: bytes, *, fetched_at: datetime, source: str | None = None
    ) -> ConnectorResult:
        try:
            doc = json.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConnectorError(f"HKO answered something that is not JSON ({exc})") from None
        out = self.result()
        items = doc if isinstance(doc, list) else [doc]
        if items and isinstance(items[0], dict) and "LP_NUMBER" in items[0]:
            for item in items:
                out.records += 1
                self._location(item, out)
        elif items and isinstance(items[0], dict) and "BODY" in items[0]:
            for item in items:
                out.records += 1
                self._reading(item, out)
        else:
            raise ConnectorError(
                "expected an HKO smart lamppost reading ({'PI', 'DI', 'BODY': {'HKO': ...}}) "
                "or the device location list ([{'LP_NUMBER', ...}])"
            )
        return out

    def _location(self, item: Any, out: ConnectorResult) -> None:
        if not isinstance(item, dict) or not item.get("LP_NUMBER"):
            out.skip("location record without LP_NUMBER")
            return
        lat, lon = number(item.get("LP_LATITUDE")), number(item.get("LP_LONGITUDE"))
        east, north = number(item.get("LP_EAST")), number(item.get("LP_NORTH"))
        grid = hk1980_to_wgs84(east, north) if east is not None and north is not None else None
        if lat is None or lon is None:
            if grid is None:
                out.skip("lamppost without coordinates", str(item["LP_NUMBER"]))
                return
            lon, lat = grid
            out.warn("lamppost located from its HK1980 grid coordinates only")
        elif grid is not None:
            from pyproj import Geod

            _, _, metres = Geod(ellps="WGS84").inv(lon, lat, grid[0], grid[1])
            if metres > MAX_DISAGREEMENT_M:
                out.warn("WGS84 and HK1980 positions disagree by more than 50 m")
        entity: Entity = {
            "id": device_id(str(item["LP_NUMBER"])),
            "type": "Device",
            "name": prop(f"Smart lamppost {item['LP_NUMBER']}"),
            "serialNumber": prop(str(item["LP_NUMBER"])),
            "deviceCategory": prop(["sensor"]),
            "location": point(lon, lat),
            "dataProvider": prop("Hong Kong Observatory"),
        }
        out.entities.append(entity)

    def _reading(self, item: Any, out: ConnectorResult) -> None:
        body = (item.get("BODY") or {}).get("HKO") if isinstance(item, dict) else None
        lamppost, device = (
            (item.get("PI"), item.get("DI")) if isinstance(item, dict) else (None, None)
        )
        if not isinstance(body, dict) or not lamppost:
            out.skip("reading without PI or BODY.HKO")
            return
        try:
            observed = iso(hk_time(str(body.get("TS", "")), "%Y%m%d%H%M%S"))
        except ValueError:
            out.skip("reading with an unreadable TS", str(lamppost))
            return
        local_id = f"HK-HKO-SLP-{slug(str(lamppost))}-{slug(str(device or '00'))}"
        entity: Entity = {
            "id": f"urn:ngsi-ld:WeatherObserved:{local_id}",
            "type": "WeatherObserved",
            "dateObserved": prop(observed),
            "refDevice": rel(device_id(str(lamppost))),
            "dataProvider": prop("Hong Kong Observatory"),
        }
        measured = []
        for code, (attribute, unit, _scale) in ELEMENTS.items():
            if code not in body:
                continue
            value = number(body.get(code))
            if value is None:
                out.warn(f"{code} not a number")
                continue
            if attribute == "relativeHumidity":
                value = round(value / 100, 4)  # Smart Data Models: a fraction 0..1
                unit = "C62"
            entity[attribute] = prop(value, observed_at=observed, unit=unit)
            measured.append(attribute)
        if not measured:
            out.skip("reading without T0/RH/W0/WD values", str(lamppost))
            return
        out.entities.append(entity)
