"""What the site shows, from the database when the blueprint is loaded there, else from the
shipped data files, so a fresh database still shows the whole blueprint (at its initial status).

The measure service owns progress, roll-up and the audit trail; the data files own the texts
the database does not hold (vision, goals, governance). Everything is returned as the measure
service's read models, so templates never care where it came from.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from sqlalchemy import func, select

from smartcity.portal.blueprint.model import Area, Blueprint
from smartcity.portal.blueprint.seeding import seed
from smartcity.portal.measures.catalogue import initial_status
from smartcity.portal.measures.repository import Search, search_blob
from smartcity.portal.measures.schemas import (
    AreaSummary,
    AuditEntry,
    KpiView,
    MeasureView,
    StatusBasis,
    StatusView,
    city_today,
    is_overdue,
)
from smartcity.storage.engine import Database

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def shipped_blueprint() -> Blueprint:
    """The blueprint from the data files in the package (read once)."""
    from smartcity.portal.blueprint.dataset import load_blueprint

    return load_blueprint()


@dataclass(frozen=True)
class Overview:
    """The whole blueprint's progress."""

    progress: float
    measure_count: int
    new_count: int
    by_status: dict[str, int]


def _status_views() -> list[StatusView]:
    return [
        StatusView(code=s.code, label=s.label, default_progress=s.default_progress, order=i)
        for i, s in enumerate(shipped_blueprint().statuses, 1)
    ]


class ShippedMeasures:
    """Read models built from the data files: every measure at the status the blueprint's
    words give it, as ``blueprint load`` would seed it."""

    def __init__(self, blueprint: Blueprint) -> None:
        self.blueprint = blueprint
        statuses = {s.code: s for s in _status_views()}
        today = city_today()
        self._measures: list[MeasureView] = []
        for area in blueprint.areas:
            titles = {s.id: s.title for s in area.strategies}
            for order, m in enumerate(area.measures):
                seeded = seed(m)
                code = seeded.status
                if code not in statuses:
                    code = initial_status(list(statuses))
                status = statuses[code]
                progress = status.default_progress or 0.0
                basis = seeded.as_json() if code == seeded.status else None
                self._measures.append(
                    MeasureView(
                        id=m.id,
                        area=m.area,
                        strategy=m.strategy,
                        strategy_title=titles[m.strategy],
                        order=order,
                        title=m.title,
                        text=m.text,
                        is_new=m.is_new,
                        target=m.target,
                        owners=m.owners,
                        status=status.code,
                        status_label=status.label,
                        status_basis=StatusBasis.model_validate(basis) if basis else None,
                        overdue=is_overdue(m.target, progress, today),
                        progress=progress,
                        own_progress=progress,
                        weight=1.0,
                        live=m.live,
                    )
                )
        # The same normalised text the database search matches (measures/repository.py).
        self._search = {m.id: search_blob(m.id, m.title, m.text, m.live) for m in self._measures}

    def list_measures(
        self,
        *,
        area: str | None = None,
        status: str | None = None,
        is_new: bool | None = None,
        q: str | None = None,
    ) -> list[MeasureView]:
        found = [
            m
            for m in self._measures
            if (area is None or m.area == area)
            and (status is None or m.status == status)
            and (is_new is None or m.is_new == is_new)
        ]
        if not q:
            return found
        search = Search.of(q)  # the phrase, else every word: as the database search does
        by_phrase = [m for m in found if search.matches(self._search[m.id])]
        if by_phrase or not search.can_widen:
            return by_phrase
        return [m for m in found if search.matches(self._search[m.id], phrase=False)]

    def get(self, measure_id: str) -> MeasureView | None:
        return next((m for m in self._measures if m.id == measure_id), None)

    def kpis(self, area: str | None) -> list[KpiView]:
        return [
            KpiView.model_validate(k.model_dump())
            for a in self.blueprint.areas
            if area is None or a.id == area
            for k in a.kpis
        ]


class SiteData:
    """The site's one door to the blueprint and its progress."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- where the data comes from ------------------------------------------------------------
    @property
    def blueprint(self) -> Blueprint:
        return shipped_blueprint()

    @cached_property
    def _service_or_none(self) -> Any | None:
        """The measure service when the database holds the blueprint, else None (decided
        once per request: a SiteData lives for one request)."""
        try:
            from smartcity.portal import tables
            from smartcity.portal.measures.service import MeasureService
        except ImportError:  # the measures backend is not installed in this build
            return None
        with self.db.read() as conn:
            loaded = conn.execute(select(func.count()).select_from(tables.measures)).scalar_one()
        return MeasureService(self.db) if loaded else None

    def _service(self) -> Any | None:
        return self._service_or_none

    def _shipped(self) -> ShippedMeasures:
        return _shipped_measures()

    # -- reads --------------------------------------------------------------------------------
    def area(self, area_id: str) -> Area | None:
        return next((a for a in self.blueprint.areas if a.id == area_id), None)

    def statuses(self) -> list[StatusView]:
        service = self._service()
        return list(service.statuses()) if service else _status_views()

    def measures(
        self,
        *,
        area: str | None = None,
        is_new: bool | None = None,
        status: str | None = None,
        q: str | None = None,
    ) -> list[MeasureView]:
        service = self._service()
        if service is not None:
            found = service.list_measures(area=area, status=status, is_new=is_new, q=q)
            return list(getattr(found, "items", found))
        return self._shipped().list_measures(area=area, status=status, is_new=is_new, q=q)

    def measure(self, measure_id: str) -> MeasureView | None:
        service = self._service()
        if service is None:
            return self._shipped().get(measure_id)
        from smartcity.portal.measures.errors import NotFound

        try:
            result: MeasureView | None = service.get_measure(measure_id)
        except NotFound:
            return None
        return result

    def timeline(self, measure_id: str) -> list[AuditEntry]:
        service = self._service()
        return list(service.timeline(measure_id)) if service else []

    def kpis(self, area: str | None = None) -> list[KpiView]:
        service = self._service()
        if service is not None:
            return list(service.kpis(area=area))
        return self._shipped().kpis(area)

    def area_summaries(self) -> list[AreaSummary]:
        service = self._service()
        if service is not None:
            return list(service.area_summaries())
        return [
            summarise(area, self.measures(area=area.id), self.statuses())
            for area in self.blueprint.areas
        ]

    def overview(self) -> Overview:
        measures = self.measures()
        service = self._service()
        if service is not None:
            progress = float(_progress_value(service.blueprint_progress()))
        else:
            progress = _mean([m.progress for m in measures if m.parent is None])
        return Overview(
            progress=progress,
            measure_count=len(measures),
            new_count=sum(m.is_new for m in measures),
            by_status=count_by_status(measures, self.statuses()),
        )


def _progress_value(value: Any) -> float:
    """``blueprint_progress()`` may return a number or an object with ``progress``."""
    return float(getattr(value, "progress", value))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def count_by_status(
    measures: Sequence[MeasureView], statuses: Sequence[StatusView]
) -> dict[str, int]:
    counts = {s.code: 0 for s in sorted(statuses, key=lambda s: s.order)}
    for m in measures:
        counts[m.status] = counts.get(m.status, 0) + 1
    return counts


def summarise(
    area: Area, measures: Sequence[MeasureView], statuses: Sequence[StatusView]
) -> AreaSummary:
    return AreaSummary(
        id=area.id,
        name=area.name,
        order=area.order,
        intro=area.intro,
        measure_count=len(measures),
        new_count=sum(m.is_new for m in measures),
        progress=_mean([m.progress for m in measures if m.parent is None]),
        by_status=count_by_status(measures, statuses),
    )


@lru_cache(maxsize=1)
def _shipped_measures() -> ShippedMeasures:
    return ShippedMeasures(shipped_blueprint())
