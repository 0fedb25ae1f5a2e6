"""package_search in Hong Kong's languages: Chinese without spaces, either script finding the
other, English stems, phrases, the query language, filters and facets (both backends)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.opendata.helpers import Act, trilingual

from smartcity.opendata.search import text


def names(result: dict[str, Any]) -> list[str]:
    return sorted(p["name"] for p in result["result"]["results"])


@pytest.fixture
def catalogue(act: Act) -> Act:
    act(
        "organization_create",
        name="td",
        title_translated=trilingual("Transport Department", "運輸署", "运输署"),
    )
    act("organization_create", name="epd", title="Environmental Protection Department")
    act("group_create", name="transport", title_translated=trilingual("Transport", "運輸", "运输"))
    act("group_create", name="environment", title="Environment")
    act(
        "package_create",
        name="car-parks",
        owner_org="td",
        groups=[{"name": "transport"}],
        title_translated={"zh-Hant": "停車場空置車位", "en": "Car park vacancy"},
        notes="Vacancy of public car parks, updated every minute.",
        tags=[{"name": "parking"}],
        license_id="datagovhk-terms",
        resources=[{"url": "https://example.org/a.csv"}, {"url": "https://example.org/a.json"}],
    )
    act(
        "package_create",
        name="bus-stops",
        owner_org="td",
        groups=[{"name": "transport"}],
        title_translated={"zh-Hans": "巴士站位置", "en": "Bus stop locations"},
        notes="Where buses stop; parked vehicles are not included.",
        tags=[{"name": "bus"}, {"name": "transport"}],
        license_id="cc-by",
        resources=[{"url": "https://example.org/b.csv"}],
    )
    act(
        "package_create",
        name="air-quality",
        owner_org="epd",
        groups=[{"name": "environment"}],
        title_translated=trilingual(
            "Air quality health index", "空氣質素健康指數", "空气质素健康指数"
        ),
        notes="Hourly readings from the stations; a park near the station is not a car park.",
        tags=[{"name": "air"}],
        license_id="cc-by",
        resources=[{"url": "https://example.org/aqhi.xml"}],
    )
    return act


def search(act: Act, **params: Any) -> dict[str, Any]:
    return act("package_search", **params)


def test_chinese_without_spaces_in_either_script(catalogue: Act) -> None:
    # Traditional query, Traditional text: a part of a longer run of characters.
    assert names(search(catalogue, q="停車")) == ["car-parks"]
    assert names(search(catalogue, q="空置車位")) == ["car-parks"]
    # Simplified query, Traditional-only text; Traditional query, Simplified-only text.
    assert names(search(catalogue, q="停车场")) == ["car-parks"]
    assert names(search(catalogue, q="巴士站")) == ["bus-stops"]  # stored only as 巴士站位置
    assert names(search(catalogue, q="巴士站位置")) == ["bus-stops"]
    # One character, and the organisation's name in Chinese.
    assert names(search(catalogue, q="車")) == ["car-parks"]
    assert names(search(catalogue, q="运输署")) == ["bus-stops", "car-parks"]
    # Characters that are all present but not next to each other are not a match.
    assert names(search(catalogue, q="停位")) == []
    assert names(search(catalogue, q="車場位")) == []


def test_english_stems_and_phrases(catalogue: Act) -> None:
    # parking, parks and parked share the stem "park".
    assert names(search(catalogue, q="parking")) == ["air-quality", "bus-stops", "car-parks"]
    assert names(search(catalogue, q="Readings")) == ["air-quality"]
    assert names(search(catalogue, q='"car parks"')) == ["car-parks"]
    assert names(search(catalogue, q='"car park"')) == ["air-quality", "car-parks"]
    assert names(search(catalogue, q='"parks car"')) == []
    # Full-width letters (typed with a Chinese input method) are the same letters.
    assert names(search(catalogue, q="ＢＵＳ")) == ["bus-stops"]


def test_query_language(catalogue: Act) -> None:
    assert names(search(catalogue, q="bus OR air")) == ["air-quality", "bus-stops"]
    assert names(search(catalogue, q="park -bus")) == ["air-quality", "car-parks"]
    assert names(search(catalogue, q="park AND NOT (bus OR air)")) == ["car-parks"]
    assert names(search(catalogue, q="tags:transport")) == ["bus-stops"]
    assert names(search(catalogue, q="organization:td res_format:csv")) == [
        "bus-stops",
        "car-parks",
    ]
    assert names(search(catalogue, q="groups:environment")) == ["air-quality"]
    assert names(search(catalogue, q="license_id:cc-by title:bus")) == ["bus-stops"]
    assert names(search(catalogue, q="title:park")) == ["car-parks"]  # not air-quality's notes
    assert names(search(catalogue, q="vacan*")) == ["car-parks"]
    assert names(search(catalogue, q="res_format:(xml OR json)")) == ["air-quality", "car-parks"]
    assert search(catalogue, q="*:*")["result"]["count"] == 3
    assert search(catalogue, q="metadata_modified:[NOW-1DAY TO *]")["result"]["count"] == 3
    assert search(catalogue, q="metadata_modified:[* TO 2000-01-01]")["result"]["count"] == 0
    # Common English words narrow nothing.
    assert names(search(catalogue, q="the bus")) == ["bus-stops"]


def test_every_word_of_a_conjunction_must_match(catalogue: Act) -> None:
    """Words combined by AND (written or not), also in parentheses, under NOT and within a
    field: each must be found (PostgreSQL looks them up together, SQLite one by one)."""
    assert names(search(catalogue, q="car park vacancy")) == ["car-parks"]
    assert names(search(catalogue, q="car AND park AND station")) == ["air-quality"]
    assert names(search(catalogue, q="park -(car vacancy)")) == ["air-quality", "bus-stops"]
    assert names(search(catalogue, q="park NOT (car station)")) == ["bus-stops", "car-parks"]
    assert names(search(catalogue, q="title:(car vacancy)")) == ["car-parks"]
    assert names(search(catalogue, q="title:(car station)")) == []  # station: notes only
    assert names(search(catalogue, q="title:car station")) == []
    assert names(search(catalogue, q="title:air hourly")) == ["air-quality"]
    assert names(search(catalogue, q="空置 vacancy -bus")) == ["car-parks"]
    assert names(search(catalogue, q="巴士 parked")) == ["bus-stops"]
    ranked = search(catalogue, q="car park")["result"]["results"]
    assert [p["name"] for p in ranked] == ["car-parks", "air-quality"]  # in the title first


def test_filters_and_facets(catalogue: Act) -> None:
    result = search(
        catalogue,
        q="park",
        fq="organization:td",
        **{"facet.field": '["organization", "groups", "tags", "res_format", "license_id"]'},
    )["result"]
    assert names({"result": result}) == ["bus-stops", "car-parks"]
    facets = {
        f: {i["name"]: i["count"] for i in v["items"]} for f, v in result["search_facets"].items()
    }
    assert facets == {
        "organization": {"td": 2},
        "groups": {"transport": 2},
        "tags": {"parking": 1, "bus": 1, "transport": 1},
        "res_format": {"CSV": 2, "JSON": 1},
        "license_id": {"datagovhk-terms": 1, "cc-by": 1},
    }
    assert result["facets"]["res_format"] == {"CSV": 2, "JSON": 1}  # CKAN's older shape
    titles = {i["name"]: i["display_name"] for i in result["search_facets"]["license_id"]["items"]}
    assert titles["cc-by"] == "Creative Commons Attribution 4.0"

    limited = search(catalogue, **{"facet.field": ["res_format"], "facet.limit": 1})["result"]
    assert limited["search_facets"]["res_format"]["items"] == [
        {"name": "CSV", "display_name": "CSV", "count": 2}
    ]
    frequent = search(catalogue, **{"facet.field": '["tags"]', "facet.mincount": 2})["result"]
    assert frequent["search_facets"]["tags"]["items"] == []
    both = search(catalogue, fq_list=["groups:transport", "tags:bus"])["result"]
    assert [p["name"] for p in both["results"]] == ["bus-stops"]


def test_organisation_titles_in_facets_follow_the_language(od_client: Any, catalogue: Act) -> None:
    r = od_client.get(
        "/tc-data/api/3/action/package_search", params={"facet.field": '["organization","groups"]'}
    )
    facets = r.json()["result"]["search_facets"]
    assert {i["display_name"] for i in facets["organization"]["items"]} == {
        "運輸署",
        "Environmental Protection Department",
    }
    assert "運輸" in {i["display_name"] for i in facets["groups"]["items"]}
    # Without a page (rows=0) the facets' organisations and groups are still shown by title.
    r = od_client.get(
        "/tc-data/api/3/action/package_search",
        params={"facet.field": '["organization","groups"]', "rows": 0, "q": "bus OR parking"},
    )
    result = r.json()["result"]
    assert result["results"] == [] and result["count"] > 0
    assert "運輸署" in {i["display_name"] for i in result["search_facets"]["organization"]["items"]}
    assert "運輸" in {i["display_name"] for i in result["search_facets"]["groups"]["items"]}


def test_relevance_and_sorting(catalogue: Act) -> None:
    # "park" is in car-parks' title (weighs most), in the other two's notes only.
    ranked = [p["name"] for p in search(catalogue, q="park")["result"]["results"]]
    assert ranked[0] == "car-parks"
    by_name = search(catalogue, sort="name desc")["result"]
    assert [p["name"] for p in by_name["results"]] == ["car-parks", "bus-stops", "air-quality"]
    assert by_name["sort"] == "name desc"
    by_title = search(catalogue, sort="title_string asc")["result"]["results"]
    assert [p["name"] for p in by_title] == ["air-quality", "bus-stops", "car-parks"]


def test_bad_queries_say_what_is_wrong(catalogue: Act) -> None:
    for q, says in (
        ("colour:red", "unknown field 'colour'"),
        ('"open phrase', "not closed"),
        ("(bus OR air", "not closed"),
        ("metadata_modified:yesterday", "takes a range"),
    ):
        error = catalogue("package_search", 400, q=q)["error"]
        assert error["__type"] == "Search Query Error"
        assert says in error["message"], error
    error = catalogue("package_search", 400, sort="popularity desc")["error"]
    assert "cannot sort by 'popularity'" in error["message"]
    error = catalogue("package_search", 400, **{"facet.field": '["colour"]'})["error"]
    assert "colour" in error["message"]


def test_changes_reach_the_index_at_once(catalogue: Act) -> None:
    catalogue("package_patch", id="bus-stops", title="Green minibus stops")
    assert names(search(catalogue, q="minibus")) == ["bus-stops"]
    catalogue("organization_patch", id="epd", title_translated={"zh-Hant": "環境保護署"})
    assert names(search(catalogue, q="环境保护署")) == ["air-quality"]
    catalogue(
        "resource_create",
        package_id="air-quality",
        url="https://example.org/x.geojson",
        name="Stations map",
    )
    assert names(search(catalogue, q="res_format:geojson stations")) == ["air-quality"]


def test_tokens() -> None:
    assert list(text.tokens("停車場")) == ["停", "停车", "车", "车场", "场"]
    assert list(text.tokens("The Parking of Cars")) == ["park", "car"]
    assert text.query_tokens("停車場") == (["停车", "车场"], True)
    assert text.query_tokens("停車") == (["停车"], False)
    assert text.surface("Car-Parks!  (ＨＫ)") == "car parks hk"
