"""What the measure service returns: read models carrying trilingual ``Text`` objects.

Serialise with ``model_dump(mode="json", by_alias=True)`` so texts come out keyed ``en``,
``zh-Hant``, ``zh-Hans``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from smartcity.portal.blueprint.model import LiveLink, Target, Text


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)


class StatusView(_View):
    code: str
    label: Text
    default_progress: float | None  # None: choosing the status keeps the current progress
    order: int


class StatusBasis(_View):
    """Why a measure has the status ``blueprint load`` seeded (blueprint/seeding.py)."""

    reason: str  # done, continuing, new, under-way, stated
    text: Text  # the blueprint's sentence


class MilestoneView(_View):
    id: int
    date: dt.date
    title: Text
    description: Text | None = None
    done: bool


class MeasureView(_View):
    id: str
    area: str
    strategy: str
    strategy_title: Text
    order: int
    title: Text
    text: Text
    is_new: bool
    target: Target | None = None
    owners: list[str]
    status: str
    status_label: Text
    status_basis: StatusBasis | None = None  # set while the status is the blueprint's
    # The target's last day has passed and the measure is not at 100 % (see ``is_overdue``).
    overdue: bool = False
    # ``progress`` is what to show: the weighted mean of the children's progress when the
    # measure has children, else what editors entered (``own_progress``).
    progress: float
    own_progress: float
    start: dt.date | None = None
    end: dt.date | None = None
    weight: float
    parent: str | None = None
    children: list[str] = Field(default_factory=list)
    milestones: list[MilestoneView] = Field(default_factory=list)
    live: list[LiveLink] = Field(default_factory=list)
    updated_at: dt.datetime | None = None


class AreaSummary(_View):
    id: str
    name: Text
    order: int
    intro: Text | None = None
    measure_count: int
    new_count: int
    progress: float  # weighted mean over the area's top-level measures (rolled up)
    by_status: dict[str, int]  # every status code, zero included


class KpiView(_View):
    id: str
    area: str
    label: Text
    value: float
    unit: Text
    qualifier: str  # exact, over, about, under, up-to
    as_of: str  # "2020", "2020-06" or "2020-06-30", as the document states it
    text: Text


class AuditEntry(_View):
    id: int
    measure_id: str
    at: dt.datetime  # UTC
    user_id: int | None  # None: the system (load, import)
    user: str  # the user's display name (or username), or "system"
    field: str
    old: Any = None
    new: Any = None
    note: str | None = None
    notes: dict[str, str] | None = None  # the note by language, when written in several


def city_today() -> dt.date:
    """Today in the city (Hong Kong time, as the site shows every time)."""
    from smartcity.web.i18n import HONG_KONG

    return dt.datetime.now(HONG_KONG).date()


def is_overdue(target: Target | None, progress: float, today: dt.date) -> bool:
    """A target date that has passed with the measure unfinished. "from 2018" targets are a
    start, not a deadline; a measure at 100 % (completed, or ongoing and in place) is done."""
    if target is None or target.date is None or target.relation == "from":
        return False
    return target.date < today and progress < 100
