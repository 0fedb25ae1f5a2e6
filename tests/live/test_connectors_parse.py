"""Connectors on fixtures written in each feed's exact format, quirks included."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcity.live.connectors import REGISTRY, ConnectorError, aqhi, get
from smartcity.live.connectors.base import ConnectorResult, number
from smartcity.live.connectors.lampposts import hk1980_to_wgs84
from smartcity.live.connectors.transit import duration

FIX = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def run(name: str, fixture: str, **options: str) -> ConnectorResult:
    return get(name, **options).parse((FIX / fixture).read_bytes(), fetched_at=NOW)


def by_id(result: ConnectorResult) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in result.entities}


def test_registry_has_every_command_line_name() -> None:
    assert set(REGISTRY) == {
        "carparks",
        "kmb-eta",
        "citybus-eta",
        "traffic-detectors",
        "road-speeds",
        "journey-times",
        "air-quality",
        "lampposts",
    }
    for cls in REGISTRY.values():
        assert cls.description


def test_td_vacancy_quirks_bom_no_data_flag_and_closed() -> None:
    r = run("carparks", "td_vacancy_quirks.json")
    e = by_id(r)
    one = e["urn:ngsi-ld:OffStreetParking:HK-tdc1p1"]
    # -1 is "no data": never a count of 0, so no availableSpotNumber and no status.
    assert "availableSpotNumber" not in one and "status" not in one
    assert one["vacancyByVehicleType"]["value"]["privateCar"]["noData"] is True
    assert one["vacancyByVehicleType"]["value"]["motorCycle"]["vacancy"] == 7
    # Type B: 1 means "spaces available", not one space.
    two = e["urn:ngsi-ld:OffStreetParking:HK-tdc2p1"]
    assert "availableSpotNumber" not in two
    assert two["status"]["value"] == ["spacesAvailable"]
    assert e["urn:ngsi-ld:OffStreetParking:HK-tdc3p1"]["status"]["value"] == ["closed"]
    four = e["urn:ngsi-ld:OffStreetParking:HK-tdc4p1"]
    assert four["availableSpotNumber"] == {
        "type": "Property",
        "value": 0,
        "observedAt": "2025-11-15T04:37:00Z",
    }
    assert four["status"]["value"] == ["full"]
    assert r.skipped["car park record without an id"] == 1
    assert r.warnings["vacancy -1: no data from the operator"] == 1


def test_td_basic_info() -> None:
    r = run("carparks", "td_basic_info_quirks.json")
    (one,) = r.entities
    assert one["name"]["languageMap"]["zh-Hant"] == "測試邨停車場"
    assert one["location"]["value"]["coordinates"] == [114.19, 22.38]
    assert "maximumAllowedHeight" not in one  # height 0 = not stated
    assert r.skipped["car park without a usable latitude/longitude"] == 1


def test_carpark_info_vacancy_api_shapes() -> None:
    vacancy = by_id(run("carparks", "carpark_info_vacancy_api_vacancy.json"))
    twelve = vacancy["urn:ngsi-ld:OffStreetParking:HK-12"]
    assert twelve["availableSpotNumber"]["value"] == 155
    assert twelve["availableSpotNumber"]["observedAt"] == "2018-10-02T03:01:05Z"
    assert twelve["vacancyByVehicleType"]["value"]["privateCar"]["vacancyEV"] == 5
    assert twelve["allowedVehicleType"]["value"] == ["car", "van", "lorry", "motorcycle"]
    assert "availableSpotNumber" not in vacancy["urn:ngsi-ld:OffStreetParking:HK-27"]
    (info,) = run("carparks", "carpark_info_vacancy_api_info.json").entities
    assert info["id"] == "urn:ngsi-ld:OffStreetParking:HK-12"
    assert info["maximumAllowedHeight"]["value"] == 2.0
    assert info["images"]["value"] == ["https://example.gov.hk/12.jpg"]


def test_kmb_eta_null_and_stop_option() -> None:
    r = run("kmb-eta", "kmb_stop_eta_null.json", stop="26AC2D471648CA0C")
    (arrival,) = r.entities
    assert r.skipped["eta null: no departure scheduled"] == 1
    assert arrival["id"] == "urn:ngsi-ld:ArrivalEstimation:KMB-43A-O-1-1-1"
    assert arrival["hasStop"]["object"] == "urn:ngsi-ld:GtfsStop:KMB-26AC2D471648CA0C"
    assert arrival["hasRoute"]["object"] == "urn:ngsi-ld:GtfsRoute:KMB-43A-O-1"
    assert arrival["remainingTime"]["value"] == "PT5M27S"
    assert arrival["estimatedArrivalTime"]["value"] == "2022-02-06T06:56:40Z"
    assert arrival["remark"]["languageMap"]["en"] == "Scheduled Bus"


def test_kmb_stop_from_url_and_missing_stop_warns() -> None:
    raw = (FIX / "kmb_stop_eta_null.json").read_bytes()
    url = "https://data.etabus.gov.hk/v1/transport/kmb/stop-eta/26AC2D471648CA0C"
    (a,) = get("kmb-eta").parse(raw, fetched_at=NOW, source=url).entities
    assert a["hasStop"]["object"].endswith("KMB-26AC2D471648CA0C")
    r = get("kmb-eta").parse(raw, fetched_at=NOW, source="some/file.json")
    assert "hasStop" not in r.entities[0] and sum(r.warnings.values()) == 1


def test_kmb_error_body_is_a_clear_error() -> None:
    with pytest.raises(ConnectorError, match="422 Invalid/Missing parameter"):
        run("kmb-eta", "kmb_error_422.json")
    with pytest.raises(ConnectorError, match="not JSON"):
        get("citybus-eta").parse(b"<html>502 Bad Gateway</html>", fetched_at=NOW)
    with pytest.raises(ConnectorError, match="no option"):
        get("citybus-eta", stop="x")


def test_kmb_stops_and_route_stops() -> None:
    stops = run("kmb-eta", "kmb_stop_list.json")
    (stop,) = stops.entities
    assert stop["location"]["value"]["coordinates"] == [114.096206, 22.357309]  # from strings
    assert stops.skipped["stop without usable coordinates"] == 1
    rs = run("kmb-eta", "kmb_route_stop.json")
    (route,) = rs.entities
    assert route["stops"]["objectList"] == [
        "urn:ngsi-ld:GtfsStop:KMB-26AC2D471648CA0C",
        "urn:ngsi-ld:GtfsStop:KMB-BBBB000000000002",
    ]
    assert rs.skipped["route-stop row without route, stop or sequence"] == 1


def test_detectors_valid_flag_zero_volume_and_midnight() -> None:
    r = run("traffic-detectors", "rawSpeedVol_a.xml")
    assert r.skipped["valid=N: TD marks the lane reading invalid"] == 1
    assert r.warnings["volume 0: the reported speed is the speed limit, not written"] == 1
    lanes = [e for e in r.entities if e["id"].endswith("AID01101-Slow-Lane")]
    first, second = lanes
    assert "averageVehicleSpeed" not in first  # volume 0: 70 is the limit, not a speed
    assert first["intensity"]["value"] == 0
    assert second["averageVehicleSpeed"]["value"] == 52
    assert second["dateObservedTo"]["value"] == "2024-04-06T16:00:00Z"  # 00:00 next day HKT
    assert second["occupancy"]["value"] == 0.01
    # The overlapping file gives the same ids and observedAt for the shared period.
    b = run("traffic-detectors", "rawSpeedVol_b.xml")
    shared = {(e["id"], e["intensity"]["observedAt"]) for e in b.entities}
    assert shared <= {(e["id"], e["intensity"]["observedAt"]) for e in r.entities}


def test_road_speeds_and_journey_times() -> None:
    r = run("road-speeds", "irnAvgSpeed_small.xml")
    (seg,) = r.entities
    assert seg["averageVehicleSpeed"] == {
        "type": "Property",
        "value": 23.0,
        "observedAt": "2024-06-19T04:27:00Z",
        "unitCode": "KMH",
    }
    assert r.skipped["valid=N: TD marks the segment speed invalid"] == 1
    assert r.skipped["segment without a usable speed"] == 1
    j = run("journey-times", "journeytime_small.xml")
    e = by_id(j)
    h11 = e["urn:ngsi-ld:TrafficFlowObserved:HK-JTI-H11-CH"]
    assert h11["journeyTime"]["value"] == 23 and h11["congested"]["value"] is True
    k01 = e["urn:ngsi-ld:TrafficFlowObserved:HK-JTI-K01-CH"]
    assert "journeyTime" not in k01 and k01["journeyDescription"]["value"] == "Tunnel closed"
    assert j.skipped["journey time with an unreadable CAPTURE_DATE"] == 1


def test_aqhi_tai_po_matches_epd_published_breakdown() -> None:
    """EPD: Tai Po 2024-03-29 01:00 = SO2 0.034 + NO2 2.766 + O3 0.822 + PM 1.022 = 4.64 %AR.
    The fixture's hourly values are built from that breakdown (no Tai Po in the real samples)."""
    r = run("air-quality", "24pc_Eng_taipo.xml")
    tai_po = [e for e in r.entities if e["id"].endswith("HK-EPD-Tai-Po")]
    assert len(tai_po) == 3
    last = tai_po[-1]
    assert last["aqhi"] == {"type": "Property", "value": 3, "observedAt": "2024-03-28T17:00:00Z"}
    assert last["airQualityLevel"]["value"] == "Low"
    assert round(last["addedHealthRisk"]["value"], 2) == 4.64
    assert last["pm25"]["value"] == 26.1 and last["pm25"]["unitCode"] == "GQ"
    assert "co" not in last  # "-"
    hourly = {
        datetime.fromisoformat(t): v
        for t, v in {
            "2024-03-28T23:00:00+08:00": (58.3, 20.1, 2.2, 35.2, 24.0),
            "2024-03-29T00:00:00+08:00": (61.5, 15.6, 2.5, 36.4, 25.3),
            "2024-03-29T01:00:00+08:00": (63.6, 12.3, 2.6, 36.5, 26.1),
        }.items()
    }
    series = {
        t: dict(zip(("no2", "o3", "so2", "pm10", "pm25"), v, strict=True))
        for t, v in hourly.items()
    }
    at = max(series)
    b = aqhi.compute(aqhi.three_hour_averages(series, at), aqhi.parameters_for(at.date()))
    assert b is not None
    assert (round(b.so2, 3), round(b.no2, 3), round(b.o3, 3), round(b.pm, 3)) == (
        0.034,
        2.766,
        0.822,
        1.022,
    )
    assert round(b.total, 2) == 4.64 and b.aqhi == 3
    # The first hour has no 3-hour window: no AQHI rather than a made-up one.
    assert "aqhi" not in tai_po[0]


def test_air_quality_gaps_unknown_station_and_published_aqhi() -> None:
    r = run("air-quality", "24pc_Eng_taipo.xml")
    nowhere = [e for e in r.entities if e["id"].endswith("Nowhere-Island")]
    assert nowhere and "location" not in nowhere[0]
    assert r.warnings["station not in the station table: no location"] == 1
    published = by_id(run("air-quality", "24aqhi_Eng_taipo.xml"))
    assert (
        published["urn:ngsi-ld:AirQualityObserved:HK-EPD-Tap-Mun"]["aqhiPublished"]["value"] == 11
    )
    with pytest.raises(ConnectorError, match=r"24pc_Eng\.xml"):
        get("air-quality").parse(b"<rss/>", fetched_at=NOW)
    with pytest.raises(ConnectorError, match="well-formed"):
        get("air-quality").parse(b"<AQHI24HrReport>", fetched_at=NOW)


def test_aqhi_bands_categories_and_dated_parameters() -> None:
    p = aqhi.parameters_for(date(2024, 3, 29))
    assert [aqhi.band(x, p) for x in (0.1, 1.88, 1.881, 3.76, 19.37, 19.38)] == [1, 1, 1, 2, 10, 11]
    assert [aqhi.health_risk(n) for n in (1, 3, 4, 6, 7, 8, 10, 11)] == [
        "Low", "Low", "Moderate", "Moderate", "High", "Very High", "Very High", "Serious",
    ]  # fmt: skip
    newer = aqhi.Parameters(date(2030, 1, 1), p.beta, tuple(b * 2 for b in p.bands), "test")
    sets = (*aqhi.PARAMETER_SETS, newer)
    assert aqhi.parameters_for(date(2029, 12, 31), sets) is aqhi.PARAMETER_SETS[0]
    assert aqhi.parameters_for(date(2030, 1, 1), sets) is newer
    with pytest.raises(ValueError):
        aqhi.parameters_for(date(2010, 1, 1))


def test_lamppost_grid_conversion_matches_the_location_item() -> None:
    """The HKO location item gives both systems: pyproj must land within a few metres."""
    lon, lat = hk1980_to_wgs84(835664.3, 819863.5)
    assert lon == pytest.approx(114.171015, abs=5e-5)
    assert lat == pytest.approx(22.31777, abs=5e-5)
    r = run("lampposts", "slp_device_location.json")
    e = by_id(r)
    grid_only = e["urn:ngsi-ld:Device:HK-HKO-SLP-GF3637"]["location"]["value"]["coordinates"]
    assert grid_only == pytest.approx([114.171015, 22.31777], abs=5e-5)
    assert r.warnings["WGS84 and HK1980 positions disagree by more than 50 m"] == 1
    assert r.skipped["location record without LP_NUMBER"] == 1


def test_lamppost_reading() -> None:
    (w,) = run("lampposts", "slp_reading_wind.json").entities
    assert w["temperature"]["value"] == 32.3
    assert w["relativeHumidity"]["value"] == 0.694
    assert w["windSpeed"]["value"] == 0.53 and w["windDirection"]["value"] == 4
    assert w["temperature"]["observedAt"] == "2022-07-30T08:50:47Z"


def test_jsonld_context_only_carries_used_terms() -> None:
    r = run("road-speeds", "irnAvgSpeed_small.xml")
    ctx = r.jsonld_context()
    assert set(ctx) == {
        "TrafficFlowObserved", "averageVehicleSpeed", "refRoadSegment", "dataProvider", "source",
    }  # fmt: skip
    assert json.dumps(r.jsonld()[0]["@context"]) == json.dumps(ctx)


@given(st.one_of(st.none(), st.booleans(), st.text(max_size=12), st.floats(), st.integers()))
def test_number_never_raises_and_rejects_non_finite(raw: object) -> None:
    value = number(raw)
    assert value is None or (value == value and abs(value) != float("inf"))
    if isinstance(raw, str) and raw.strip() in ("-", ""):
        assert value is None


@given(st.floats(min_value=-1e6, max_value=1e6))
def test_duration_is_iso8601_and_round_trips(seconds: float) -> None:
    text = duration(seconds)
    assert text.startswith("PT") and text != "PT"
    total = 0
    rest = text[2:]
    for unit, factor in (("H", 3600), ("M", 60), ("S", 1)):
        if unit in rest:
            n, rest = rest.split(unit, 1)
            total += int(n) * factor
    assert total == max(0, round(seconds))


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "vacancy_type": st.sampled_from(["A", "B", "C", "X"]),
                "vacancy": st.one_of(st.integers(-5, 500), st.none(), st.text(max_size=3)),
                "lastupdate": st.sampled_from(["2025-11-15 12:40:02", "bad", ""]),
            }
        ),
        max_size=4,
    )
)
def test_carpark_vacancy_records_never_crash_or_invent_counts(cats: list[dict[str, Any]]) -> None:
    doc = {
        "car_park": [{"park_id": "p1", "vehicle_type": [{"type": "P", "service_category": cats}]}]
    }
    r = get("carparks").parse(json.dumps(doc).encode(), fetched_at=NOW)
    for e in r.entities:
        spots = e.get("availableSpotNumber")
        if spots:
            assert spots["value"] >= 0
            assert any(
                c["vacancy_type"] == "A" and number(c["vacancy"]) == spots["value"] for c in cats
            )
