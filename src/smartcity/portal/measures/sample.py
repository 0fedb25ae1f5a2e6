"""A five-measure blueprint in the real data's shape, for tests and demos (``--source``).

Texts are abridged from the Blueprint 2.0; the real data lives in ``portal/blueprint/data``.
"""

from __future__ import annotations

from typing import Any

from smartcity.portal.blueprint.model import Blueprint


def _t(en: str, hant: str, hans: str) -> dict[str, str]:
    return {"en": en, "zh-Hant": hant, "zh-Hans": hans}


def _measure(
    mid: str, strategy: str, title: dict[str, str], text: dict[str, str], **extra: Any
) -> dict[str, Any]:
    return {
        "id": mid,
        "area": mid.split("-")[0],
        "strategy": strategy,
        "title": title,
        "text": text,
        "is_new": False,
        # Stated, so the tests start every measure at 0 % whatever its words say (the words'
        # seeding is tested on the shipped blueprint: tests/portal/test_progress_truth.py).
        "status": "planned",
        **extra,
    }


def sample_data() -> dict[str, Any]:
    parking = _measure(
        "mobility-01",
        "mobility-s1",
        _t("Real-time parking vacancy information", "實時空置泊車位資訊", "实时空置泊车位资讯"),
        _t(
            "Continue to encourage car park operators to provide real-time Parking Vacancy "
            "information",
            "繼續鼓勵公眾停車場營辦商提供實時空置泊車位資訊",
            "继续鼓励公众停车场营办商提供实时空置泊车位资讯",
        ),
        owners=["TD"],
        live=[
            {
                "entity_type": "OffStreetParking",
                "attribute": "availableSpotNumber",
                "aggregate": "sum",
                "label": _t("Vacant parking spaces", "空置泊車位", "空置泊车位"),
            }
        ],
    )
    auto_parking = _measure(
        "mobility-02",
        "mobility-s1",
        _t(
            "Automated parking system at the HZMB port",
            "港珠澳大橋自動泊車系統",
            "港珠澳大桥自动泊车系统",
        ),
        _t(
            "Launch an automated parking system at the Hong Kong Port of the HZMB",
            "在港珠澳大橋香港口岸開展一個自動泊車系統",
            "在港珠澳大桥香港口岸开展一个自动泊车系统",
        ),
        is_new=True,
        owners=["TD"],
        target={
            "relation": "before",
            "year": 2024,
            "part": "early",
            "date": "2024-03-31",
            "text": _t("before early 2024", "2024 年年初前", "2024 年年初前"),
        },
    )
    lights = _measure(
        "mobility-03",
        "mobility-s2",
        _t("Smart traffic lights", "智能交通燈", "智能交通灯"),
        _t(
            "Install smart traffic lights at pedestrian crossings",
            "在行人過路處安裝智能交通燈",
            "在行人过路处安装智能交通灯",
        ),
        owners=["TD"],
    )
    wifi = _measure(
        "living-01",
        "living-s1",
        _t("Wi-Fi connected city", "Wi-Fi 連通城市", "Wi-Fi 连通城市"),
        _t(
            "Double the free Wi-Fi hotspots under Wi-Fi.HK",
            "把 Wi-Fi.HK 免費熱點數目倍增",
            "把 Wi-Fi.HK 免费热点数目倍增",
        ),
        owners=["OGCIO"],
    )
    bins = _measure(
        "living-02",
        "living-s1",
        _t("Smart recycling bins", "智能回收桶", "智能回收桶"),
        _t(
            "Trial smart recycling bins in public places",
            "在公眾地方試行智能回收桶",
            "在公众地方试行智能回收桶",
        ),
        is_new=True,
        owners=["EPD", "OGCIO"],
    )
    return {
        "title": _t("Smart City Blueprint 2.0", "香港智慧城市藍圖 2.0", "香港智慧城市蓝图 2.0"),
        "published": "2020-12",
        "preface": [_t("Preface.", "序言。", "序言。")],
        "vision": _t("A world-famed smart city.", "世界知名的智慧城市。", "世界知名的智慧城市。"),
        "goals": [_t("Better living.", "更好的生活。", "更好的生活。")],
        "governance": [_t("A steering committee.", "督導委員會。", "督导委员会。")],
        "organisations": [
            {"code": "TD", "name": _t("Transport Department", "運輸署", "运输署")},
            {
                "code": "OGCIO",
                "name": _t(
                    "Office of the Government Chief Information Officer",
                    "政府資訊科技總監辦公室",
                    "政府资讯科技总监办公室",
                ),
            },
            {
                "code": "EPD",
                "name": _t("Environmental Protection Department", "環境保護署", "环境保护署"),
            },
        ],
        "areas": [
            {
                "id": "mobility",
                "name": _t("Smart Mobility", "智慧出行", "智慧出行"),
                "order": 2,
                "strategies": [
                    {"id": "mobility-s1", "title": _t("Parking", "泊車", "泊车")},
                    {"id": "mobility-s2", "title": _t("Traffic", "交通", "交通")},
                ],
                "measures": [parking, auto_parking, lights],
                "kpis": [
                    {
                        "id": "mobility-k1",
                        "area": "mobility",
                        "label": _t(
                            "Car parks with vacancy data",
                            "提供空置車位資訊的停車場",
                            "提供空置车位资讯的停车场",
                        ),
                        "value": 500,
                        "unit": _t("car parks", "個停車場", "个停车场"),
                        "qualifier": "over",
                        "as_of": "2020-06",
                        "text": _t(
                            "Over 500 car parks.", "超過 500 個停車場。", "超过 500 个停车场。"
                        ),
                    }
                ],
            },
            {
                "id": "living",
                "name": _t("Smart Living", "智慧生活", "智慧生活"),
                "order": 3,
                "strategies": [{"id": "living-s1", "title": _t("Wi-Fi", "Wi-Fi", "Wi-Fi")}],
                "measures": [wifi, bins],
                "kpis": [
                    {
                        "id": "living-k1",
                        "area": "living",
                        "label": _t("Free Wi-Fi hotspots", "免費 Wi-Fi 熱點", "免费 Wi-Fi 热点"),
                        "value": 37000,
                        "unit": _t("hotspots", "個熱點", "个热点"),
                        "qualifier": "over",
                        "as_of": "2020-06",
                        "text": _t(
                            "Over 37,000 free Wi-Fi hotspots as of June 2020.",
                            "截至 2020 年 6 月，超過 37 000 個免費 Wi-Fi 熱點。",
                            "截至 2020 年 6 月，超过 37 000 个免费 Wi-Fi 热点。",
                        ),
                    }
                ],
            },
        ],
    }


def sample_blueprint() -> Blueprint:
    return Blueprint.model_validate(sample_data())
