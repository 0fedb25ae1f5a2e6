"""The shipped Smart City Blueprint 2.0 data: valid, consistent, and faithful to the source text.

The source checks read the extracted PDF text in /work/shared and are skipped without it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from smartcity.hub.contexts import city_terms
from smartcity.portal.blueprint import dataset
from smartcity.portal.blueprint.dataset import (
    BlueprintDataError,
    check_consistency,
    kpis,
    load_blueprint,
    measure,
    measures,
    read_blueprint,
)
from smartcity.portal.blueprint.model import AREAS, Blueprint, Text
from smartcity.portal.blueprint.targets import parse_target

SOURCE = Path(__file__).resolve().parents[3] / "shared/blueprint/smart-city-blueprint-2.0.zh-HK.txt"
needs_source = pytest.mark.skipif(not SOURCE.exists(), reason="blueprint source text not present")

# Counted in the source, in document order (see the data files' strategies for the headings).
MEASURE_COUNTS = {
    "pandemic": 13,
    "mobility": 26,
    "living": 15,
    "environment": 17,
    "people": 12,
    "government": 31,
    "economy": 20,
    "village": 4,
}
NEW_MARKERS = 69
# The PDF extraction put a few Simplified characters into the Traditional text; the data
# corrects exactly these and nothing else.
SOURCE_CORRECTIONS = {"热": "熱", "服务": "服務", "影响": "影響"}
LEGEND = "公布後推出的"  # "在 2017 年《藍圖》公布後推出的新措施": the key under the 新 icon


def _texts(obj: object) -> Iterator[Text]:
    if isinstance(obj, Text):
        yield obj
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from _texts(getattr(obj, name))
    elif isinstance(obj, list):
        for item in obj:
            yield from _texts(item)


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


# --- the data itself --------------------------------------------------------------------------


def test_data_validates_and_has_the_eight_areas_in_order() -> None:
    bp = load_blueprint()
    assert isinstance(bp, Blueprint)
    assert [a.id for a in bp.areas] == list(AREAS)
    assert [a.order for a in bp.areas] == list(range(1, 9))
    assert bp.published == "2020-12"
    assert len(bp.goals) == 4 and len(bp.governance) == 2 and len(bp.preface) == 4
    check_consistency(bp)


def test_measure_count_per_area_is_what_the_document_has() -> None:
    counted = {a.id: len(a.measures) for a in load_blueprint().areas}
    assert counted == MEASURE_COUNTS
    assert len(measures()) == 138  # "超過 130 項措施"


def test_ids_are_unique_and_numbered_in_document_order() -> None:
    for area in load_blueprint().areas:
        assert [m.id for m in area.measures] == [
            f"{area.id}-{n:02d}" for n in range(1, len(area.measures) + 1)
        ]
        assert [s.id for s in area.strategies] == [
            f"{area.id}-s{n}" for n in range(1, len(area.strategies) + 1)
        ]
        assert [k.id for k in area.kpis] == [
            f"{area.id}-k{n}" for n in range(1, len(area.kpis) + 1)
        ]
    all_ids = [m.id for m in measures()] + [k.id for k in kpis()]
    assert len(all_ids) == len(set(all_ids))


@pytest.mark.parametrize(
    ("measure_id", "starts", "is_new", "strategy"),
    [
        ("pandemic-01", "繼續推行「居安抗疫」家居檢疫系統", True, "pandemic-s1"),
        ("pandemic-11", "開發空間數據共享平台", False, "pandemic-s1"),
        ("mobility-01", "2024 年年初前於政府收費隧道", False, "mobility-s1"),
        ("mobility-26", "在港珠澳大橋香港口岸", True, "mobility-s4"),
        ("environment-03", "推行各項減碳措施，2030年把碳強度", True, "environment-s1"),
        ("people-12", "繼續加強公務員在應用科技方面的培訓", False, "people-s2"),
        ("government-02", "為香港於 2020 年推展 5G", False, "government-s2"),
        ("government-31", "開發一個資訊管理系統", True, "government-s3"),
        ("economy-17", "與深圳合作在落馬洲河套區", False, "economy-s4"),
        ("village-04", "利用機械人及人工智能", True, "village-s1"),
    ],
)
def test_known_measures_keep_their_ids(
    measure_id: str, starts: str, is_new: bool, strategy: str
) -> None:
    m = measure(measure_id)
    assert m.text.zh_hant.startswith(starts)
    assert (m.is_new, m.strategy) == (is_new, strategy)


def test_unknown_measure_is_a_clear_key_error() -> None:
    with pytest.raises(KeyError, match="mobility-99"):
        measure("mobility-99")


def test_the_two_quoted_kpis_are_exact() -> None:
    by_value = {(k.area, k.value): k for k in kpis()}
    wifi = by_value[("living", 37_000)]
    assert (wifi.qualifier, wifi.as_of, wifi.unit.en) == ("over", "2020-06", "hotspots")
    assert "37 000" in wifi.text.zh_hant and "over" in wifi.text.en.lower()
    mobile = by_value[("living", 283.75)]
    assert (mobile.qualifier, mobile.as_of) == ("exact", "2020-01")
    assert mobile.unit.en == mobile.unit.zh_hant == mobile.unit.zh_hans == "%"


def test_kpis_per_area() -> None:
    counted = {a.id: len(a.kpis) for a in load_blueprint().areas}
    assert counted == {
        "pandemic": 0,
        "mobility": 3,
        "living": 11,
        "environment": 5,
        "people": 10,
        "government": 4,
        "economy": 11,
        "village": 0,
    }


def test_targets_are_structured_from_the_phrase_in_the_text() -> None:
    with_target = [m for m in measures() if m.target]
    assert len(with_target) == 11
    for m in with_target:
        assert m.target is not None
        assert _squash(m.target.text.zh_hant) in _squash(m.text.zh_hant), m.id
        parsed = parse_target(m.target.text.zh_hant)
        got = (m.target.relation, m.target.year, m.target.part, m.target.date)
        assert got == (parsed.relation, parsed.year, parsed.part, parsed.date), m.id


@pytest.mark.parametrize(
    ("measure_id", "relation", "year", "part", "date"),
    [
        ("mobility-01", "before", 2024, "early", "2024-03-31"),
        ("mobility-03", "by", 2022, None, "2022-12-31"),
        ("mobility-13", "during", 2021, None, "2021-12-31"),
        ("environment-02", "from", 2017, None, "2017-04-01"),  # 2017-18 financial year
        ("government-15", "before", 2022, "mid", "2022-06-30"),
        ("economy-17", "by", 2024, "late", "2024-12-31"),
    ],
)
def test_known_targets(
    measure_id: str, relation: str, year: int, part: str | None, date: str
) -> None:
    t = measure(measure_id).target
    assert t is not None
    assert (t.relation, t.year, t.part, t.date.isoformat() if t.date else None) == (
        relation,
        year,
        part,
        date,
    )


def test_every_year_in_a_measure_is_a_target_except_a_past_announcement() -> None:
    undated = {m.id for m in measures() if re.search(r"20\d\d", m.text.zh_hant) and not m.target}
    # "根據 2018 年公布的開放數據政策" and "2019 冠狀病毒病" (COVID-19) are not targets
    assert undated == {"government-01", "pandemic-13"}


def test_live_links_only_on_measures_about_live_data() -> None:
    live = {
        m.id: [(lk.entity_type, lk.attribute, lk.aggregate) for lk in m.live]
        for m in measures()
        if m.live
    }
    assert live == {
        "mobility-11": [("TrafficFlowObserved", "averageVehicleSpeed", "avg")],
        "mobility-12": [("OffStreetParking", "availableSpotNumber", "sum")],
        "mobility-13": [("ArrivalEstimation", "hasStop", "distinct")],
        "environment-11": [("WasteContainer", "fillingLevel", "avg")],
        "environment-12": [("AirQualityObserved", "aqhi", "avg")],
        "government-03": [("WeatherObserved", None, "count")],
    }


def test_live_links_name_types_and_attributes_of_the_city_context() -> None:
    # The names the connectors and the simulator write with: a link to anything else (a
    # "BusStop" no feed produces) could never show a figure.
    city = city_terms()
    for m in measures():
        for link in m.live:
            assert link.entity_type in city, (m.id, link.entity_type)
            assert link.attribute is None or link.attribute in city, (m.id, link.attribute)


def test_english_is_present_and_has_no_cjk() -> None:
    allowed = set("Σ–")  # the SIGMA vision; the dash in "BIM – Asset Management"
    for text in _texts(load_blueprint()):
        assert text.en.strip(), text
        stray = {c for c in text.en if ord(c) > 127 and c not in allowed}
        assert not stray, (stray, text.en)


def test_zh_hans_is_fully_simplified() -> None:
    opencc = pytest.importorskip("opencc")
    convert = opencc.OpenCC("hk2s").convert
    for text in _texts(load_blueprint()):
        assert convert(text.zh_hans) == text.zh_hans, text.zh_hans


def test_organisations_are_the_owners_named() -> None:
    bp = load_blueprint()
    used = {o for m in measures() for o in m.owners}
    codes = [o.code for o in bp.organisations]
    assert len(codes) == len(set(codes))
    assert set(codes) == used | {"ITB"}  # ITB leads the blueprint as a whole
    assert {"TD", "EPD", "OGCIO", "HA", "DH", "FEHD", "HKMA", "ITB"} <= used | {"ITB"}
    assert sum(1 for m in measures() if m.owners) == 117  # the rest name no clear owner


# --- the checks catch bad data ---------------------------------------------------------------


def test_consistency_check_names_each_problem() -> None:
    bad = load_blueprint().model_copy(deep=True)
    mobility = bad.areas[1]
    mobility.measures[0].strategy = "living-s1"
    mobility.measures[1].owners = ["NOPE"]
    mobility.measures[2].id = mobility.measures[3].id
    with pytest.raises(BlueprintDataError) as err:
        check_consistency(bad)
    message = str(err.value)
    assert "mobility-01: strategy 'living-s1' is not in area mobility" in message
    assert "mobility-02: owner 'NOPE' is not in organisations" in message
    assert "id 'mobility-04' is used 2 times" in message


def _copy_data(tmp_path: Path) -> Path:
    root = Path(str(resources.files("smartcity.portal.blueprint") / "data"))
    target = tmp_path / "data"
    shutil.copytree(root, target)
    return target


def test_reading_reports_the_bad_file(tmp_path: Path) -> None:
    root = _copy_data(tmp_path)
    assert len(read_blueprint(root).areas) == 8  # the copy itself is fine
    path = root / "areas" / "living.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["measures"][0]["title"]["en"] = ""
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(BlueprintDataError, match=r"areas/living\.yaml"):
        read_blueprint(root)
    path.unlink()
    with pytest.raises(BlueprintDataError, match=r"missing: areas/living\.yaml"):
        read_blueprint(root)


def test_blueprint_yaml_must_not_carry_areas(tmp_path: Path) -> None:
    root = _copy_data(tmp_path)
    with (root / "blueprint.yaml").open("a", encoding="utf-8") as f:
        f.write("areas: []\n")
    with pytest.raises(BlueprintDataError, match="'areas'"):
        read_blueprint(root)


def test_data_ships_inside_the_package() -> None:
    root = resources.files("smartcity.portal.blueprint") / "data"
    assert (root / "blueprint.yaml").is_file()
    assert all((root / "areas" / f"{a}.yaml").is_file() for a in AREAS)
    assert dataset.load_blueprint() is dataset.load_blueprint()  # cached


# --- faithful to the source ------------------------------------------------------------------

_INLINE = re.compile(r"\*\*新\*\*|\s新$")


def _source_lines() -> list[tuple[str, bool]]:
    """The source's non-empty lines, squashed, markers removed, each with "is marked 新"."""
    text = SOURCE.read_text(encoding="utf-8")
    for wrong, right in SOURCE_CORRECTIONS.items():
        text = text.replace(wrong, right)
    raw = [line.strip() for line in text.split("\n") if line.strip()]
    lines: list[tuple[str, bool]] = []
    for n, line in enumerate(raw):
        if line == "新":
            following = raw[n + 1] if n + 1 < len(raw) else ""
            if LEGEND not in following:  # the lone 新 above the legend is its key, not a marker
                lines[-1] = (lines[-1][0], True)
            continue
        lines.append((_squash(_INLINE.sub("", line).replace("**", "")), bool(_INLINE.search(line))))
    return lines


def _span(text: str, lines: list[tuple[str, bool]]) -> list[range]:
    """Every run of whole consecutive lines that rejoins to ``text``."""
    found = []
    for start in range(len(lines)):
        joined, end = "", start
        while end < len(lines) and len(joined) < len(text):
            joined += lines[end][0]
            end += 1
        if joined == text:
            found.append(range(start, end))
    return found


@needs_source
def test_every_measure_text_is_whole_source_lines_rejoined() -> None:
    lines = _source_lines()
    for m in measures():
        spans = _span(_squash(m.text.zh_hant), lines)
        assert len(spans) == 1, f"{m.id} is not whole lines of the source (found {len(spans)})"


@needs_source
def test_each_new_marker_is_one_new_measure() -> None:
    lines = _source_lines()
    marked = {n for n, (_, is_marked) in enumerate(lines) if is_marked}
    assert len(marked) == NEW_MARKERS
    last_line = {m.id: _span(_squash(m.text.zh_hant), lines)[0][-1] for m in measures()}
    marked_ids = sorted(mid for mid, last in last_line.items() if last in marked)
    assert len(marked_ids) == NEW_MARKERS  # every marker ends exactly one measure
    assert marked_ids == sorted(m.id for m in measures() if m.is_new)


def _source_squashed() -> str:
    return "".join(line for line, _ in _source_lines())


@needs_source
def test_kpi_figures_appear_in_the_source() -> None:
    source = _source_squashed()
    for k in kpis():
        for number in re.findall(r"\d[\d ,.]*\d|\d", k.text.zh_hant):
            assert _squash(number) in source, (k.id, number)


@needs_source
def test_outlook_next_steps_vision_and_goals_come_from_the_source() -> None:
    source = _source_squashed()
    bp = load_blueprint()
    texts = [bp.vision, *bp.goals, *bp.governance, *bp.preface]
    for area in bp.areas:
        texts += [*area.next_steps, *area.outlook, *([area.intro] if area.intro else [])]
    for t in texts:
        for piece in re.split(r"\n- |\n", t.zh_hant):
            assert _squash(piece) in source, piece
