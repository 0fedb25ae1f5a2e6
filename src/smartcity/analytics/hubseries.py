"""One attribute of every entity of a type, as a regular time grid read from the hub's
temporal service (5-minute averages by default): the input the forecasts and the parking
analytics need. Reads through the temporal API's aggregation, so any history the hub keeps
(simulated, connectors, devices) works; a Parquet export can replace it at city scale."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import numpy as np

from smartcity.hub.querying import EntityQuery
from smartcity.hub.temporal.service import TemporalQuery, TemporalService
from smartcity.hub.types_expr import parse_type_selection

# Hong Kong has kept UTC+8 without daylight saving since 1979: the calendar (time of day, day
# of week) the profiles are learned on.
CITY_TZ = timezone(timedelta(hours=8))
PAGE = 200


@dataclass(frozen=True)
class Grid:
    ids: list[str]
    values: np.ndarray  # (T, N) period means, NaN where no reading
    start_us: int  # start of row 0 (UTC microseconds)
    step_us: int

    def start_local(self) -> datetime:
        """Row 0's start as a naive Hong Kong time (what the calendar features expect)."""
        return (
            datetime.fromtimestamp(self.start_us / 1e6, UTC)
            .astimezone(CITY_TZ)
            .replace(tzinfo=None)
        )

    def time_of(self, row: int) -> int:
        return self.start_us + row * self.step_us


def read_grid(
    temporal: TemporalService,
    tenant: str,
    type_iri: str,
    attr_iri: str,
    *,
    since_us: int,
    until_us: int,
    step_us: int,
) -> Grid:
    """Periods [since, until) on a grid of ``step_us`` (aligned to the epoch), one column per
    entity of ``type_iri`` that has ``attr_iri`` in its history."""
    since = since_us // step_us * step_us
    until = max(since + step_us, until_us // step_us * step_us)
    rows = (until - since) // step_us
    tq = TemporalQuery(
        timerel="between",
        time_at=since,
        end_time_at=until,
        aggr_methods=["avg"],
        aggr_period=step_us,
    )
    query = EntityQuery(types=parse_type_selection(type_iri, lambda s: s), attrs=[attr_iri])
    ids: list[str] = []
    columns: list[np.ndarray] = []
    offset = 0
    while True:
        page = temporal.query(tenant, query, tq, attrs=[attr_iri], limit=PAGE, offset=offset)
        for entity in page.entities:
            column = np.full(rows, np.nan)
            for agg in entity.aggregates.get(attr_iri, {}).values():
                for start, value in zip(agg.starts, agg.values["avg"], strict=True):
                    row = (start - since) // step_us
                    if value is not None and 0 <= row < rows:
                        column[row] = float(value)
                break  # the default instance (or the first datasetId)
            ids.append(entity.entity_id)
            columns.append(column)
        if len(page.entities) < PAGE:
            break
        offset += PAGE
    values = np.stack(columns, axis=1) if columns else np.empty((rows, 0))
    return Grid(ids, values, since, step_us)
