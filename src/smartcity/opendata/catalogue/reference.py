"""Reference data the catalogue ships: DATA.GOV.HK's 18 dataset categories (its groups) and
the licences datasets may carry. Written for this project in its three languages."""

from __future__ import annotations

from typing import NamedTuple


class Category(NamedTuple):
    name: str
    en: str
    tc: str
    sc: str


# The 18 categories DATA.GOV.HK files its datasets under, in its order.
CATEGORIES: tuple[Category, ...] = (
    Category("city-management", "City Management", "城市管理", "城市管理"),
    Category("climate-and-weather", "Climate and Weather", "氣候及天氣", "气候及天气"),
    Category("commerce-and-industry", "Commerce and Industry", "工商業", "工商业"),
    Category("development", "Development", "發展", "发展"),
    Category("education", "Education", "教育", "教育"),
    Category("employment-and-labour", "Employment and Labour", "就業及勞工", "就业及劳工"),
    Category("environment", "Environment", "環境", "环境"),
    Category("finance", "Finance", "財經", "财经"),
    Category("food", "Food", "食物", "食物"),
    Category("health", "Health", "衞生", "卫生"),
    Category("housing", "Housing", "房屋", "房屋"),
    Category("infrastructure", "Infrastructure", "基礎建設", "基础建设"),
    Category("law-and-security", "Law and Security", "法律及保安", "法律及保安"),
    Category("miscellaneous", "Miscellaneous", "其他", "其他"),
    Category("population", "Population", "人口", "人口"),
    Category("recreation-and-culture", "Recreation and Culture", "康樂及文化", "康乐及文化"),
    Category("social-welfare", "Social Welfare", "社會福利", "社会福利"),
    Category("transport", "Transport", "運輸", "运输"),
)


class Licence(NamedTuple):
    id: str
    en: str
    tc: str
    sc: str
    url: str
    is_open: bool


# CKAN's licence ids where CKAN has one, so datasets moved from other portals keep theirs.
LICENCES: tuple[Licence, ...] = (
    Licence(
        "datagovhk-terms",
        "DATA.GOV.HK Terms and Conditions of Use",
        "DATA.GOV.HK 使用條款及細則",
        "DATA.GOV.HK 使用条款及细则",
        "https://data.gov.hk/en/terms-and-conditions",
        True,
    ),
    Licence(
        "cc-by",
        "Creative Commons Attribution 4.0",
        "創用 CC 姓名標示 4.0",
        "知识共享署名 4.0",
        "https://creativecommons.org/licenses/by/4.0/",
        True,
    ),
    Licence(
        "cc-zero",
        "Creative Commons CC0 1.0 (public domain dedication)",
        "創用 CC0 1.0（公眾領域貢獻宣告）",
        "知识共享 CC0 1.0（公有领域贡献）",
        "https://creativecommons.org/publicdomain/zero/1.0/",
        True,
    ),
    Licence(
        "odc-by",
        "Open Data Commons Attribution License",
        "開放數據共享署名許可",
        "开放数据共享署名许可",
        "https://opendatacommons.org/licenses/by/",
        True,
    ),
    Licence("other-open", "Other (Open)", "其他（開放）", "其他（开放）", "", True),
    Licence("other-closed", "Other (Not Open)", "其他（非開放）", "其他（非开放）", "", False),
    Licence("notspecified", "License not specified", "未指明許可", "未指明许可", "", False),
)

# How often a dataset is updated (dataset ``frequency``), from DCAT's frequency vocabulary.
FREQUENCIES: tuple[str, ...] = (
    "continuous",
    "hourly",
    "daily",
    "weekly",
    "fortnightly",
    "monthly",
    "quarterly",
    "biannual",
    "annual",
    "irregular",
    "as-needed",
    "never",
    "unknown",
)
