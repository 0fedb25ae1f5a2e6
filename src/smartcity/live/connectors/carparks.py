"""Transport Department car parks -> ``OffStreetParking``.

Reads, in any combination (one file or URL per ``--from``):

* ``basic_info_all.json`` (names, address, location, height limit, photo) and
  ``vacancy_all.json`` (``vehicle_type[].service_category[]``) from
  resource.data.one.gov.hk/td/carpark/: UTF-8 with a byte-order mark;
* the ``carpark-info-vacancy`` API (api.data.gov.hk/v1/carpark-info-vacancy): ``{"results":
  [...]}`` with ``park_Id`` and per-vehicle arrays (``privateCar``, ``LGV``, ...), either
  ``data=info`` or ``data=vacancy``.

Vacancy semantics follow the One Stop Parking Vacancy Data Specification v1.2: type A is a
count (0 = full), type B is a flag (0 = full, 1 = spaces available: *not* a count), type C means
closed, and -1 means the operator gave no data (never 0).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar

from smartcity.live.connectors.base import (
    Connector,
    ConnectorError,
    ConnectorResult,
    Entity,
    hk_time,
    iso,
    languages,
    number,
    point,
    prop,
    slug,
    terms,
)

# vacancy_all.json vehicle codes -> the API's names (spec v1.2 and the TD data dictionary).
TD_VEHICLES = {
    "P": "privateCar",
    "P_D": "privateCarDisabled",
    "M": "motorCycle",
    "L": "LGV",
    "H": "HGV",
    "C": "coach",
    "B": "bus",
    "T": "taxi",
    "O": "other",
    "N": "nonFranchisedBus",
}
API_VEHICLES = ("privateCar", "LGV", "HGV", "CV", "coach", "motorCycle")
# The API's vehicle names -> Smart Data Models allowedVehicleType (DATEX II VehicleTypeEnum).
DATEX = {
    "privateCar": "car",
    "motorCycle": "motorcycle",
    "LGV": "van",
    "HGV": "lorry",
    "CV": "lorry",
    "coach": "bus",
    "bus": "bus",
}


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8-sig"))  # the TD files start with a BOM
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConnectorError(f"not a car park JSON document ({exc})") from None


def entity_id(park_id: str) -> str:
    return f"urn:ngsi-ld:OffStreetParking:HK-{slug(park_id)}"


class Carparks(Connector):
    name = "carparks"
    description = "TD car park basic info and vacancy (vacancy_all.json, carpark-info-vacancy)"
    publisher = "Transport Department, HKSAR"
    organisation = "td"
    entity_types = ("OffStreetParking",)
    sources = (
        "https://resource.data.one.gov.hk/td/carpark/basic_info_all.json",
        "https://resource.data.one.gov.hk/td/carpark/vacancy_all.json",
        "https://api.data.gov.hk/v1/carpark-info-vacancy",
    )
    context: ClassVar[dict[str, str]] = terms(
        "OffStreetParking",
        "availableSpotNumber",
        "allowedVehicleType",
        "maximumAllowedHeight",
        "images",
        "contactPoint",
        "status",
        "vacancyByVehicleType",  # no Smart Data Models term: NGSI-LD default context
    )

    def parse(
        self, raw: bytes, *, fetched_at: datetime, source: str | None = None
    ) -> ConnectorResult:
        doc = _decode(raw)
        out = self.result()
        if isinstance(doc, dict) and isinstance(doc.get("car_park"), list):
            records, id_key = doc["car_park"], "park_id"
        elif isinstance(doc, dict) and isinstance(doc.get("results"), list):
            records, id_key = doc["results"], "park_Id"
        else:
            raise ConnectorError(
                "expected a TD car park feed ({'car_park': [...]}) or the carpark-info-vacancy "
                "API ({'results': [...]}); got something else"
            )
        for record in records:
            out.records += 1
            if not isinstance(record, dict) or not isinstance(record.get(id_key), str | int):
                out.skip("car park record without an id")
                continue
            park_id = str(record[id_key])
            entity: Entity = {"id": entity_id(park_id), "type": "OffStreetParking"}
            if "vehicle_type" in record:
                self._td_vacancy(record, entity, out)
            elif any(isinstance(record.get(v), list) for v in API_VEHICLES):
                self._api_vacancy(record, entity, out)
            has_info = "latitude" in record or "name" in record or "name_en" in record
            if has_info and not self._info(record, entity, out):
                continue
            if len(entity) > 2:
                out.entities.append(entity)
            else:
                out.skip("car park record with neither information nor vacancy", park_id)
        return out

    # -- basic information -----------------------------------------------------------------
    def _info(self, record: dict[str, Any], entity: Entity, out: ConnectorResult) -> bool:
        lat, lon = number(record.get("latitude")), number(record.get("longitude"))
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            out.skip("car park without a usable latitude/longitude", str(record))
            return False
        entity["location"] = point(lon, lat)
        if "name_en" in record:  # the TD file: all three languages in one record
            name = languages(record.get("name_en"), record.get("name_tc"), record.get("name_sc"))
            street = record.get("displayAddress_en")
            district = record.get("district_en")
        else:  # the API: one language per request (lang=en_US by default)
            name = languages(record.get("name"))
            street = record.get("displayAddress")
            district = record.get("district")
        if name:
            entity["name"] = name
        address = {"addressCountry": "HK"}
        if isinstance(street, str) and street.strip():
            address["streetAddress"] = street.strip()
        if isinstance(district, str) and district.strip():
            address["addressLocality"] = district.strip()
        entity["address"] = prop(address)
        height = number(record.get("height"))
        if height is None and isinstance(record.get("heightLimits"), list):
            heights = [
                number(h.get("height")) for h in record["heightLimits"] if isinstance(h, dict)
            ]
            height = min((h for h in heights if h), default=None)
        if height:  # 0 in the TD file means "not stated", not a zero-metre limit
            entity["maximumAllowedHeight"] = prop(height, unit="MTR")
        phone = record.get("contactNo")
        if isinstance(phone, str) and phone.strip():
            entity["contactPoint"] = prop({"telephone": phone.strip()})
        photo = record.get("carpark_photo") or (record.get("renditionUrls") or {}).get(
            "carpark_photo"
        )
        if isinstance(photo, str) and photo.strip():
            entity["images"] = prop([photo.strip()])
        entity["dataProvider"] = prop("Transport Department, HKSAR")
        return True

    # -- vacancy -----------------------------------------------------------------------------
    def _td_vacancy(self, record: dict[str, Any], entity: Entity, out: ConnectorResult) -> None:
        by_vehicle: dict[str, list[dict[str, Any]]] = {}
        for vt in record.get("vehicle_type") or []:
            if not isinstance(vt, dict) or not isinstance(vt.get("service_category"), list):
                out.warn("vehicle type entry without service categories")
                continue
            code = str(vt.get("type", ""))
            vehicle = TD_VEHICLES.get(code, code or "unknown")
            by_vehicle.setdefault(vehicle, []).extend(
                c for c in vt["service_category"] if isinstance(c, dict)
            )
        self._vacancy(by_vehicle, entity, out)

    def _api_vacancy(self, record: dict[str, Any], entity: Entity, out: ConnectorResult) -> None:
        by_vehicle = {
            v: [c for c in record[v] if isinstance(c, dict)]
            for v in API_VEHICLES
            if isinstance(record.get(v), list)
        }
        self._vacancy(by_vehicle, entity, out)

    def _vacancy(
        self, by_vehicle: dict[str, list[dict[str, Any]]], entity: Entity, out: ConnectorResult
    ) -> None:
        summary: dict[str, Any] = {}
        latest: str | None = None
        for vehicle, categories in by_vehicle.items():
            # HOURLY is what a driver looking for a space needs; DAILY/MONTHLY are kept aside.
            categories = sorted(categories, key=lambda c: c.get("category", "HOURLY") != "HOURLY")
            if not categories:
                continue
            cat = categories[0]
            kind = str(cat.get("vacancy_type", ""))
            vacancy = number(cat.get("vacancy"))
            if vacancy is not None and vacancy != int(vacancy):
                out.warn("vacancy is not a whole number", str(cat))
                vacancy = None
            try:
                observed = iso(hk_time(str(cat.get("lastupdate", ""))))
            except ValueError:
                out.warn("vacancy without a valid lastupdate", str(cat))
                continue
            latest = max(latest or observed, observed)
            item: dict[str, Any] = {"vacancyType": kind, "lastUpdate": observed}
            status = _status(kind, vacancy)
            if vacancy is None or vacancy == -1:
                out.warn("vacancy -1: no data from the operator")
                item["noData"] = True
            elif kind == "A":
                item["vacancy"] = int(vacancy)
            if status:
                item["status"] = status
            for extra in ("vacancyEV", "vacancyDIS", "vacancyUNL"):
                value = number(cat.get(extra))
                if value is not None and value >= 0:
                    item[extra] = int(value)
            summary[vehicle] = item
            if vehicle != "privateCar":
                continue
            # The principal vehicle type of a Hong Kong public car park is the private car.
            if kind == "A" and vacancy is not None and vacancy >= 0:
                entity["availableSpotNumber"] = prop(int(vacancy), observed_at=observed)
            if status:
                entity["status"] = prop([status], observed_at=observed)
        if not summary:
            return
        entity["vacancyByVehicleType"] = prop(summary, observed_at=latest)
        allowed = [DATEX[v] for v in summary if v in DATEX]
        if allowed:
            entity["allowedVehicleType"] = prop(list(dict.fromkeys(allowed)))


def _status(kind: str, vacancy: float | None) -> str | None:
    if kind == "C":
        return "closed"
    if vacancy is None or vacancy < 0:
        return None
    if vacancy == 0:
        return "full"
    return "spacesAvailable"
