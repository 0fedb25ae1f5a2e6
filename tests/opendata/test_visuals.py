"""Which previews a resource gets (site/visuals.py): a map for places, a chart for a time
series, found from column names as Hong Kong's files write them, and cells parsed without
ever raising."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from smartcity.opendata.site import visuals

DECORATIONS = st.sampled_from(["", " ", "_", "-", " (", "/", ".", "site_", "Station "])
LAT_NAMES = st.sampled_from(["lat", "Lat", "LATITUDE", "latitude", "緯度", "纬度"])
LON_NAMES = st.sampled_from(["lon", "LNG", "Longitude", "long", "經度", "经度"])
UNITS = st.sampled_from(["", " (WGS84)", "_deg", " 度", ")", "_dd"])


@given(before=DECORATIONS, word=LAT_NAMES, after=UNITS)
def test_a_latitude_column_is_found_however_it_is_decorated(
    before: str, word: str, after: str
) -> None:
    assert visuals.coordinate_role(before + word + after) == "lat"


@given(before=DECORATIONS, word=LON_NAMES, after=UNITS)
def test_a_longitude_column_is_found_however_it_is_decorated(
    before: str, word: str, after: str
) -> None:
    assert visuals.coordinate_role(before + word + after) == "lon"


@given(st.text(alphabet="abcdfghijkmpqrsuvwxyz_ 0123456789", max_size=30))
def test_names_without_the_words_are_not_coordinates(name: str) -> None:
    # Without the letters e, l, n, o, t no coordinate word can be spelled.
    assert visuals.coordinate_role(name) is None


@given(st.text(max_size=40))
def test_the_role_ignores_case(name: str) -> None:
    assert visuals.coordinate_role(name) == visuals.coordinate_role(name.upper())


def test_words_that_merely_contain_the_letters_are_not_coordinates() -> None:
    for name in ("plate", "translation", "salon", "along", "region", "location", "lat/lon"):
        assert visuals.coordinate_role(name) is None, name
    assert visuals.coordinate_role("siteLatitude") == "lat"  # camelCase splits


@given(st.floats(min_value=-90, max_value=90), st.sampled_from(["", " ", "\t"]))
def test_a_latitude_written_as_text_reads_back(value: float, pad: str) -> None:
    assert visuals.coordinate(f"{pad}{value!r}{pad}", "lat") == value
    assert visuals.coordinate(value, "lat") == value


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_out_of_range_or_non_finite_positions_are_left_out(value: float) -> None:
    found = visuals.coordinate(value, "lon")
    if math.isfinite(value) and -180 <= value <= 180:
        assert found == value
    else:
        assert found is None


@given(st.one_of(st.text(), st.none(), st.booleans(), st.lists(st.integers())))
def test_cells_never_raise(value: Any) -> None:
    visuals.coordinate(value, "lat")
    visuals.number(value)
    visuals.moment(value)


@given(st.datetimes(min_value=dt.datetime(1000, 1, 1)), st.sampled_from(["T", " "]))
def test_a_written_time_reads_back(moment: dt.datetime, sep: str) -> None:
    assert visuals.moment(moment.isoformat(sep=sep)) == moment
    assert visuals.moment(moment.date().isoformat()) == dt.datetime.combine(
        moment.date(), dt.time()
    )


def test_dates_as_hong_kong_files_write_them() -> None:
    assert visuals.moment("2024/1/5") == dt.datetime(2024, 1, 5)
    assert visuals.moment("2024-03") == dt.datetime(2024, 3, 1)
    assert visuals.moment("2024-03-01T08:00:00Z") == dt.datetime(2024, 3, 1, 8, tzinfo=dt.UTC)
    assert visuals.moment("Monday") is None and visuals.moment("2024-13-01") is None


def test_a_table_with_positions_gets_a_map_with_its_names() -> None:
    fields = [("名稱", "text"), ("district", "text"), ("緯度", "float"), ("經度", "float")]
    plan = visuals.plan({"format": "CSV"}, fields, live=False)
    assert (plan.map, plan.lat, plan.lon, plan.chart) == ("datastore", "緯度", "經度", None)
    assert plan.labels[0] == "名稱"


def test_a_table_with_a_time_and_numbers_gets_a_chart() -> None:
    fields = [("station_id", "int"), ("date", "text"), ("aqhi", "int"), ("pm25", "float")]
    plan = visuals.plan({"format": "CSV"}, fields, live=False)
    assert (plan.chart, plan.time, plan.values, plan.map) == (
        "datastore",
        "date",
        ["aqhi", "pm25"],
        None,
    )
    typed = visuals.plan({}, [("when", "timestamp"), ("level", "float")], live=False)
    assert (typed.chart, typed.time) == ("datastore", "when")
    # A time without numbers, or numbers without a time, is no time series.
    assert visuals.plan({}, [("date", "date"), ("name", "text")], live=False).chart is None
    assert visuals.plan({}, [("spaces", "int"), ("name", "text")], live=False).chart is None


def test_geojson_uploads_and_live_datasets() -> None:
    upload = {"format": "GeoJSON", "url_type": "upload", "url": "https://x/download/a.geojson"}
    assert visuals.plan(upload, None, live=False).map == "geojson"
    # Another host's file is never fetched to draw it.
    link = {"format": "GeoJSON", "url": "https://example.org/a.geojson"}
    assert visuals.plan(link, None, live=False) == visuals.Plan()
    current = {"kind": "live", "url": "http://h/dataset/x/live/current.geojson"}
    history = {"kind": "live", "url": "http://h/dataset/x/live/history"}
    assert visuals.plan(current, None, live=True).map == "live-geojson"
    assert visuals.plan(history, None, live=True).chart == "live-history"
    assert visuals.plan(history, None, live=False) == visuals.Plan()


def test_a_long_text_is_not_a_longitude() -> None:
    fields = [("lat", "float"), ("long_description", "text"), ("long", "float")]
    assert visuals.coordinate_columns(fields) == ("lat", "long")
    assert visuals.coordinate_columns([("lat", "float"), ("long_name", "text")]) is None
