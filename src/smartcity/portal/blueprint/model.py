"""The shape of the blueprint's data files (``data/*.yaml``) and of ``blueprint import/export``.

One YAML file per area (``data/areas/<area>.yaml``) holds that area's strategies, measures,
current-situation KPIs, next steps and outlook; ``data/blueprint.yaml`` holds the vision, the
goals and the governance section; ``data/organisations.yaml`` names the bureaux and departments
that own measures. Every human-readable text is stored in all three languages: the official
Traditional Chinese, and reviewed English and Simplified Chinese (never converted at run time).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AreaId = Literal[
    "pandemic", "mobility", "living", "environment", "people", "government", "economy", "village"
]
AREAS: tuple[AreaId, ...] = (
    "pandemic",
    "mobility",
    "living",
    "environment",
    "people",
    "government",
    "economy",
    "village",
)
LANGS = ("en", "zh-Hant", "zh-Hans")


class Text(BaseModel):
    """One text in the portal's three languages."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    en: str = Field(min_length=1)
    zh_hant: str = Field(alias="zh-Hant", min_length=1)
    zh_hans: str = Field(alias="zh-Hans", min_length=1)

    def get(self, lang: str) -> str:
        return {"en": self.en, "zh-Hant": self.zh_hant, "zh-Hans": self.zh_hans}[lang]


class Target(BaseModel):
    """A target date the text states, e.g. "2024 年年初前" = before early 2024.

    ``relation``: before (前), by (或之前 / 完成), during (年內), from (起), within (內, with
    ``within_years``). ``part`` narrows the year: early (年初), mid (年中), late (年底 / 年末),
    or first-half / second-half (上半年 / 下半年), q1..q4; absent means the whole year.
    ``date`` is the last day the target allows (first day for ``from``), for sorting/overdue.
    """

    model_config = ConfigDict(extra="forbid")

    relation: Literal["before", "by", "during", "from", "within"]
    year: int | None = Field(default=None, ge=2000, le=2100)
    part: (
        Literal["early", "mid", "late", "first-half", "second-half", "q1", "q2", "q3", "q4"] | None
    ) = None
    within_years: int | None = Field(default=None, ge=1, le=50)
    date: dt.date | None = None
    text: Text  # the phrase as written, e.g. "2024 年年初前" / "before early 2024"


class LiveLink(BaseModel):
    """Links a measure to live data in the hub: which entities, and which figure to show."""

    model_config = ConfigDict(extra="forbid")

    # Names are short names of the platform's city @context (docs/hub.md), e.g.
    # "OffStreetParking" (the Smart Data Models type).
    entity_type: str
    q: str | None = None  # NGSI-LD q, e.g. "availableSpotNumber>0"
    attribute: str | None = None  # aggregated attribute; None = count of entities
    # distinct: how many different values (or relationship targets) the attribute has
    aggregate: Literal["count", "sum", "avg", "min", "max", "distinct"] = "count"
    # The figure is shown multiplied by this, e.g. 100 for a 0..1 fraction shown in %.
    scale: float | None = Field(default=None, gt=0)
    label: Text
    unit: Text | None = None


class Measure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z]+-\d{2,3}$")  # e.g. "mobility-07", stable forever
    area: AreaId
    strategy: str  # Strategy.id within the same area
    title: Text  # a short title (<= ~80 chars en) for lists and headings
    text: Text  # the full official text, broken lines rejoined
    is_new: bool
    # The status to start from, when the words alone would mislead (see blueprint/seeding.py);
    # absent: seeded from the text.
    status: str | None = None
    target: Target | None = None
    owners: list[str] = Field(default_factory=list)  # organisation codes, e.g. ["TD"]
    live: list[LiveLink] = Field(default_factory=list)


class Strategy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z]+-s\d{1,2}$")  # e.g. "mobility-s1"
    title: Text


class Kpi(BaseModel):
    """A "現況" (current situation) figure, exactly as the document states it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z]+-k\d{1,2}$")  # e.g. "people-k3"
    area: AreaId
    label: Text
    value: float
    unit: Text  # e.g. {"en": "hotspots", ...}; "%" in all three for percentages
    qualifier: Literal["exact", "over", "about", "under", "up-to"] = "exact"  # 超過 = over
    as_of: str = Field(pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$")  # "2020", "2020-06", "2020-06-30"
    text: Text  # the sentence the figure comes from


class Area(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: AreaId
    name: Text
    order: int
    intro: Text | None = None
    strategies: list[Strategy]
    measures: list[Measure]
    kpis: list[Kpi] = Field(default_factory=list)
    next_steps: list[Text] = Field(default_factory=list)  # 目標和下一步工作
    outlook: list[Text] = Field(default_factory=list)  # 展望未來


class Status(BaseModel):
    """One status a measure may have, as the city names it (``data/statuses.yaml``), with the
    progress it implies (Decidim Accountability's "default progress"): choosing the status
    sets that progress unless the editor enters another; None keeps the progress reached."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[a-z][a-z_]{0,31}$")
    label: Text
    default_progress: float | None = Field(default=None, ge=0, le=100)


def _status(code: str, en: str, hant: str, hans: str, progress: float | None) -> Status:
    label = Text.model_validate({"en": en, "zh-Hant": hant, "zh-Hans": hans})
    return Status(code=code, label=label, default_progress=progress)


DEFAULT_STATUSES: tuple[Status, ...] = (
    _status("planned", "Planned", "計劃中", "计划中", 0),
    _status("in_progress", "In progress", "進行中", "进行中", 50),
    _status("completed", "Completed", "已完成", "已完成", 100),
    # the blueprint's many "continue to ..." measures: in place and continuing
    _status("ongoing", "Ongoing", "持續推行", "持续推行", 100),
    _status("suspended", "Suspended", "暫停", "暂停", None),  # keeps the progress reached
)


class Organisation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[A-Za-z&]{2,12}$")  # e.g. "TD", "OGCIO", "ITB"
    name: Text


class Blueprint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Text
    published: str  # "2020-12"
    preface: list[Text]
    vision: Text
    goals: list[Text]
    governance: list[Text]
    organisations: list[Organisation]
    areas: list[Area]
    # The city's status catalogue, in the order editors see it (data/statuses.yaml; absent:
    # the catalogue below, which the shipped statuses.yaml repeats).
    statuses: list[Status] = Field(default_factory=lambda: list(DEFAULT_STATUSES), min_length=1)
