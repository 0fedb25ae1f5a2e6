"""The temporal evolution of entities: queries, aggregations and temporal writes.

Where the data comes from
    Every accepted attribute change is already written to ``attr_history`` by
    ``history.record``, in the transaction of the change; this service reads that history.
    Entities are found through ``history_entities``, so an entity deleted from the latest state
    keeps its temporal evolution and is still found by id, idPattern, type and attrs. The
    selectors that look *inside* an entity (q, scopeQ, geo-queries) are evaluated against the
    latest state, by ``EntityService.find``: a deleted entity matches none of them.

Temporal writes go to the history only
    POST /temporal/entities, POST .../attrs and the PATCH/DELETE of instances change the
    temporal evolution and never the latest state: adding yesterday's reading must not make it
    the current value, and correcting an old instance must not rewind the entity. An entity
    created through the Temporal API therefore has no latest state (GET /entities/{id} is 404)
    until it is created through /entities.

Deletions
    Deleting attributes or entities through /entities writes a record of each deleted
    instance (``history.deletion_rows``): valued urn:ngsi-ld:null, with ``deleted_at`` set.
    They answer timeproperty=deletedAt and nothing else.

Time ranges
    before = [-inf, timeAt), after = [timeAt, +inf), between = [timeAt, endTimeAt): half-open
    intervals, so consecutive queries (and temporal pages) neither overlap nor leave gaps.
    Without timerel the whole evolution is selected.

Archived months
    ``smartcity history retain`` moves whole months of old history into Parquet files and out
    of the database (storage/partitions.py). A query whose time range (timerel) reaches into
    such a month is refused with 410 Gone, naming the archive and the first time still held,
    rather than answered with part of the evolution: the archive is for the analytics
    (DuckDB, Spark). A query without timerel asks for the evolution the database holds: it
    starts where the archive ends (so lastN and dashboards go on working). Months are
    archived by observedAt; the rule applies to every timeproperty.

Aggregations
    Periods lie on a fixed UTC grid: multiples of aggrPeriodDuration since the epoch (whole
    weeks from a Monday), so PT1H periods start on the hour and P1D periods at midnight
    whatever timeAt is; the first and last periods are cut to the requested interval
    (timeAt 08:30 with PT1H gives [08:30, 09:00), [09:00, 10:00), ...). Without
    aggrPeriodDuration (or with a zero one) there is one period: the whole interval. Periods
    without instances are left out. Months and years (P1M, P3M, P1Y: whole months only, not
    P1M15D) lie on the UTC calendar: periods of n months count from January of year 0, so a
    month starts at 00:00Z on the 1st, P3M gives calendar quarters and P1Y starts on Jan 1.

    Computed in SQL. With timeproperty=observedAt and periods of whole hours or calendar
    months (or one period), the hourly rollup answers for whole hours and the instances only
    for the partial hours at the ends of the interval (months group the rollup's hours by
    calendar month in SQL). distinctCount, createdAt/modifiedAt and periods that are not
    whole hours aggregate the instances. The numeric methods (sum, avg, min, max, stddev,
    sumsq) consider numeric values only (not booleans); totalCount and distinctCount count
    every instance. stddev is the sample standard deviation (n - 1), 0 for a single value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row
from sqlalchemy.exc import IntegrityError

from smartcity.hub.entity import VALUE_KEY, Doc, Instance
from smartcity.hub.errors import (
    BadRequestData,
    Conflict,
    HistoryArchived,
    ResourceNotFound,
    TooManyResults,
)
from smartcity.hub.history import instance_rows, numeric
from smartcity.hub.querying import EntityQuery
from smartcity.hub.service import EntityService
from smartcity.hub.temporal import repository as repo
from smartcity.hub.temporal.repository import HOUR, HistoryFilter, Series
from smartcity.hub.timeutil import now_us, parse_datetime_us
from smartcity.storage.engine import Database
from smartcity.storage.partitions import archived_months, month_label

TIMERELS = ("before", "after", "between")
TIME_PROPERTIES = ("observedAt", "createdAt", "modifiedAt", "deletedAt")
AGGR_METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")
# By default, at most this many instances per attribute (and datasetId) in one response; more
# are left to the next temporal page (206 Partial Content with a Content-Range, clause 6.3.10).
# Settings.limits.max_temporal_instances overrides it.
MAX_INSTANCES = 10_000
# q/scopeQ/geo select entities in the latest state first; beyond this many, refuse.
MAX_LATEST_MATCHES = 100_000
# Year 1, in microseconds before the epoch: earlier than any time we store.
_EARLIEST = 62_135_596_800_000_000
_DAY = 86_400_000_000
_WEEK = 7 * _DAY
_MONDAY = 4 * _DAY  # 1970-01-05T00:00:00Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The last microsecond of year 9999.
_LATEST = 253_402_300_800_000_000 - 1


def grid_origin(period: int) -> int:
    """Where aggregation periods are counted from: a multiple of the period from the epoch
    (so hours start on the hour and days at 00:00 UTC), or from a Monday for whole weeks,
    placed before any stored time so that period indexes are never negative."""
    if not period:
        return 0
    base = _MONDAY if period % _WEEK == 0 else 0
    return base - ((_EARLIEST + base) // period + 1) * period


@dataclass
class TemporalQuery:
    """The temporal part of a query (clause 4.11) and what to do with the instances."""

    timerel: str | None = None
    time_at: int | None = None  # microseconds since the epoch
    end_time_at: int | None = None
    time_property: str = "observedAt"
    last_n: int | None = None
    datasets: list[str] | None = None  # "" selects the default instance
    aggr_methods: list[str] | None = None  # None: instances, not aggregates
    aggr_period: int = 0  # microseconds; 0 = one period for the whole interval
    # Calendar months (P1M, P3M, P1Y = 12); when set, aggr_period is 0.
    aggr_months: int = 0

    def __post_init__(self) -> None:
        if self.timerel is not None and self.timerel not in TIMERELS:
            raise BadRequestData(f"timerel must be before, after or between, got {self.timerel!r}")
        if self.timerel is not None and self.time_at is None:
            raise BadRequestData(f"timerel={self.timerel} needs timeAt (an ISO 8601 date-time)")
        if self.timerel is None and self.time_at is not None:
            raise BadRequestData("timeAt needs timerel (before, after or between)")
        if self.timerel == "between":
            if self.end_time_at is None:
                raise BadRequestData("timerel=between needs endTimeAt (an ISO 8601 date-time)")
            assert self.time_at is not None
            if self.end_time_at <= self.time_at:
                raise BadRequestData("endTimeAt must be later than timeAt")
        elif self.end_time_at is not None:
            raise BadRequestData("endTimeAt is only used with timerel=between")
        if self.time_property not in TIME_PROPERTIES:
            raise BadRequestData(
                f"timeproperty must be one of {', '.join(TIME_PROPERTIES)}, got "
                f"{self.time_property!r}"
            )
        if self.last_n is not None and self.last_n < 1:
            raise BadRequestData(f"lastN must be at least 1, got {self.last_n}")
        if self.aggr_methods is not None:
            unknown = [m for m in self.aggr_methods if m not in AGGR_METHODS]
            if unknown or not self.aggr_methods:
                raise BadRequestData(
                    f"aggrMethods {', '.join(unknown) or '(empty)'} not understood; "
                    f"allowed: {', '.join(AGGR_METHODS)}"
                )
        if self.aggr_period < 0 or self.aggr_months < 0:
            raise BadRequestData("aggrPeriodDuration must not be negative")
        if self.aggr_period and self.aggr_months:
            raise BadRequestData(
                "aggrPeriodDuration: calendar months or years cannot be combined with weeks, "
                "days or times"
            )

    def bounds(self) -> tuple[int | None, int | None]:
        """The selected time range as a half-open interval [lo, hi); None is unbounded."""
        if self.timerel == "before":
            return None, self.time_at
        if self.timerel == "after":
            return self.time_at, None
        if self.timerel == "between":
            return self.time_at, self.end_time_at
        return None, None


_DURATION = re.compile(
    r"P(?:(?P<Y>\d+)Y)?(?:(?P<Mo>\d+)M)?(?:(?P<W>\d+)W)?(?:(?P<D>\d+)D)?"
    r"(?:T(?:(?P<H>\d+)H)?(?:(?P<Mi>\d+)M)?(?:(?P<S>\d+(?:[.,]\d{1,6})?)S)?)?"
)
_DURATION_US = {"W": 7 * 86_400_000_000, "D": 86_400_000_000, "H": HOUR, "Mi": 60_000_000}


def parse_duration(text: str) -> int:
    """An ISO 8601 duration (PT1H, P1D, PT15M, P1W, PT0.5S; "0" too) in microseconds; months
    and years are refused (see ``parse_period`` for aggregation periods)."""
    months, us = parse_period(text)
    if months:
        raise BadRequestData(
            f"{text!r}: years and months have no fixed length; use days or weeks, e.g. P30D"
        )
    return us


def parse_period(text: str) -> tuple[int, int]:
    """An aggrPeriodDuration: (calendar months, 0) for P1M, P3M, P1Y, P1Y6M, or (0,
    microseconds) for fixed durations (PT1H, P1D, PT15M, P1W, PT0.5S; "0" too). Months
    combined with a fixed part (P1M15D) are refused: such periods would not tile a grid."""
    raw = text.strip()
    if raw == "0":
        return 0, 0
    match = _DURATION.fullmatch(raw)
    if not match or raw in ("P", "PT") or raw.endswith("T"):
        raise BadRequestData(
            f"aggrPeriodDuration must be an ISO 8601 duration such as PT1H, PT15M, P1D or P1M, "
            f"got {text!r}"
        )
    months = int(match["Y"] or 0) * 12 + int(match["Mo"] or 0)
    total = sum(int(match[unit]) * us for unit, us in _DURATION_US.items() if match[unit])
    if match["S"]:
        total += round(float(match["S"].replace(",", ".")) * 1_000_000)
    if months and total:
        raise BadRequestData(
            f"aggrPeriodDuration {text!r}: calendar months or years cannot be combined with "
            "weeks, days or times; use months/years alone (P1M, P3M, P1Y) or a fixed "
            "duration (P45D)"
        )
    return months, total


def month_start(month: int) -> int:
    """The start (microseconds, UTC) of a month counted from January of year 0 (the numbering
    of ``repository.month_number``)."""
    year, m = divmod(month, 12)
    # Days since 1970-01-01 in the proleptic Gregorian calendar (any year, unlike datetime).
    y = year - (m < 2)
    era, yoe = divmod(y, 400)
    doy = (153 * (m - 2 if m >= 2 else m + 10) + 2) // 5
    days = era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468
    return days * _DAY


def month_of(t: int) -> int:
    """The month number (from January of year 0) of a time in microseconds."""
    d = _EPOCH + timedelta(microseconds=t)
    return d.year * 12 + d.month - 1


def held_from(conn: Connection, lo: int | None, hi: int | None, *, explicit: bool) -> int | None:
    """The start of the range to read, given the months archived: ``lo`` itself when none
    of them overlaps [lo, hi) (None: unbounded); the end of the archive when the range was not
    asked for (no timerel); HistoryArchived when an asked-for range reaches into them."""
    months = archived_months(conn)
    if not months:
        return lo
    kept_from = max(m.hi for m in months)
    if not explicit:
        return kept_from if lo is None or lo < kept_from else lo
    hit = [m for m in months if (lo is None or lo < m.hi) and (hi is None or m.lo < hi)]
    if not hit:
        return lo
    since = _iso(kept_from)
    first, last = month_label(months[0].month), month_label(months[-1].month)
    span = first if first == last else f"{first} to {last}"
    locations = sorted({m.location for m in hit})
    raise HistoryArchived(
        f"the history before {since} is archived ({span}, UTC months) and no longer in the "
        f"database; it is in the Parquet archive at {', '.join(locations)} (smartcity history "
        f"retain), readable with smartcity analytics sql --history. Ask for times from {since} "
        f"on, e.g. timerel=after&timeAt={since}",
        archivedBefore=since,
        archive=locations[0] if len(locations) == 1 else locations,
    )


def _iso(t_us: int) -> str:
    return (_EPOCH + timedelta(microseconds=t_us)).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- results -----------------------------------------------------------------------------------


@dataclass
class InstanceOut:
    attr: str
    dataset_id: str  # "" for the default instance
    instance_id: str
    t: int  # the requested time property
    created_at: int
    modified_at: int
    value: Instance  # stored layout
    deleted_at: int | None = None  # set on the record of a deletion


@dataclass(slots=True)
class Aggregated:
    """The aggregates of one attribute (one datasetId) of one entity, period by period:
    ``values[method][i]`` is for [starts[i], ends[i]), None where the method does not apply
    (e.g. avg of text values). Columns rather than objects: a month of hours for a hundred
    entities is 72,000 periods."""

    kind: str  # the attribute type
    starts: list[int]
    ends: list[int]
    values: dict[str, list[Any]]

    def keep_last(self, n: int) -> None:
        del self.starts[:-n], self.ends[:-n]
        for column in self.values.values():
            del column[:-n]


@dataclass
class TemporalEntity:
    entity_id: str
    types: list[str]
    scope: list[str] | None
    created_at: int
    modified_at: int
    deleted_at: int | None
    instances: dict[str, list[InstanceOut]] = field(default_factory=dict)
    # The type of each attribute whose instances the page's range cut away entirely (it is
    # still named, with no instances).
    cut_away: dict[str, str] = field(default_factory=dict)
    aggregates: dict[str, dict[str, Aggregated]] = field(default_factory=dict)  # attr -> ds ->


@dataclass
class TemporalResult:
    entities: list[TemporalEntity]
    total: int | None = None
    # Set when the server's instance limit left instances out: the Content-Range of clause
    # 6.3.10, (range-start, range-end). Oldest first, range-start is timeAt (or the first
    # time returned) and range-end the last time returned: the next page is timerel=after
    # range-end (which repeats the instances at range-end). With lastN (newest first) the
    # range is reversed: range-start is endTimeAt, timeAt (before) or the newest time
    # returned, range-end the oldest time returned; the next page is timerel=before
    # range-end.
    partial: tuple[int, int] | None = None


# -- the service -------------------------------------------------------------------------------


class TemporalService:
    def __init__(
        self, db: Database, entities: EntityService, *, max_instances: int = MAX_INSTANCES
    ) -> None:
        self.db = db
        self.entities = entities
        self.max_instances = max_instances

    # -- reads -------------------------------------------------------------------------------
    def query(
        self,
        tenant: str,
        query: EntityQuery,
        tq: TemporalQuery,
        *,
        attrs: Sequence[str] | None = None,
        omit: set[str] | None = None,
        limit: int,
        offset: int = 0,
        count: bool = False,
    ) -> TemporalResult:
        """A page of entities (in creation order) with their temporal evolution.

        ``query.attrs`` selects entities (having any of them); ``attrs``/``omit`` choose which
        attributes' evolution is returned."""
        flt = HistoryFilter(
            ids=query.ids, id_pattern=query.id_pattern, types=query.types, attrs=query.attrs
        )
        if query.q is not None or query.scope_q is not None or query.geo is not None:
            flt.only_ids = self._latest_matches(tenant, query)
        budget = self.entities.query_budget
        with self.entities.bounded(), self.db.read(budget=budget) as conn:
            rows, total = repo.find_entities(
                conn, tenant, flt, limit=limit, offset=offset, count=count
            )
            result = self._evolution(conn, rows, tq, attrs, omit)
        result.total = total
        return result

    def retrieve(
        self,
        tenant: str,
        entity_id: str,
        tq: TemporalQuery,
        *,
        attrs: Sequence[str] | None = None,
        omit: set[str] | None = None,
        required: Sequence[str] | None = None,
    ) -> TemporalResult:
        """One entity's temporal evolution; 404 unless it has one of ``required`` (if any)."""
        with self.db.read() as conn:
            row = self._entity(conn, tenant, entity_id)
            if required and not repo.has_any_attr(conn, row.hid, required):
                raise ResourceNotFound(
                    f"entity {entity_id} has none of the requested attributes in its "
                    "temporal evolution"
                )
            return self._evolution(conn, [row], tq, attrs, omit)

    def _latest_matches(self, tenant: str, query: EntityQuery) -> set[str]:
        latest = EntityQuery(
            q=query.q,
            scope_q=query.scope_q,
            geo=query.geo,
            geoproperty=query.geoproperty,
            expand=query.expand,
        )
        docs, _ = self.entities.find(tenant, latest, limit=MAX_LATEST_MATCHES + 1)
        if len(docs) > MAX_LATEST_MATCHES:
            raise TooManyResults(
                f"q/scopeQ/geo match more than {MAX_LATEST_MATCHES} entities; narrow the query"
            )
        return {d["id"] for d in docs}

    def _evolution(
        self,
        conn: Connection,
        rows: Sequence[Row[Any]],
        tq: TemporalQuery,
        attrs: Sequence[str] | None,
        omit: set[str] | None,
    ) -> TemporalResult:
        found = {
            int(r.hid): TemporalEntity(
                entity_id=r.entity_id,
                types=list(r.types),
                scope=r.scope,
                created_at=r.created_at,
                modified_at=r.modified_at,
                deleted_at=r.deleted_at,
            )
            for r in rows
        }
        lo, hi = tq.bounds()
        lo = held_from(conn, lo, hi, explicit=tq.timerel is not None)
        series = Series(
            hids=list(found),
            attrs=attrs,
            omit=omit,
            datasets=tq.datasets,
            time_property=tq.time_property,
            lo=lo,
            hi=hi,
        )
        result = TemporalResult(entities=list(found.values()))
        if tq.aggr_methods:
            self._aggregate(conn, series, tq, found)
        else:
            result.partial = self._instances(conn, series, tq, found)
        return result

    def _instances(
        self, conn: Connection, series: Series, tq: TemporalQuery, found: dict[int, TemporalEntity]
    ) -> tuple[int, int] | None:
        """Attach the instances; returns the Content-Range if the server's limit left some out.

        lastN alone is not partial content: the client asked for n instances and gets them.
        Only when the server's own limit (``max_instances``) is lower than what was asked for
        are instances left out, and then every series is cut at the same time, so that the
        page is one complete time range: the next request (after/before the range's end)
        returns what was left out, after the instances at the range's end once more (the
        range names the last time returned, as clause 6.3.10 says, and after is inclusive)."""
        newest_first = tq.last_n is not None
        limit = self.max_instances
        capped = tq.last_n is None or tq.last_n > limit
        keep = limit if capped else tq.last_n
        assert keep is not None
        # One more per series tells whether the server's limit left some out.
        rows = repo.fetch_instances(
            conn, series, per_series=keep + 1 if capped else keep, newest_first=newest_first
        )
        groups: dict[tuple[int, str, str], list[Row[Any]]] = {}
        for row in rows:
            groups.setdefault((row.hid, row.attr, row.dataset_id), []).append(row)
        cut_lo, cut_hi = -math.inf, math.inf
        truncated = [g for g in groups.values() if len(g) > keep]
        if truncated:
            if newest_first:
                cut_lo = max(g[1].at for g in truncated)  # g[0]: the extra, oldest row
            else:
                cut_hi = min(g[-1].at for g in truncated)  # g[-1]: the extra, newest row
        returned: list[int] = []
        for (hid, attr, _), group in groups.items():
            kept = [r for r in group if cut_lo <= r.at < cut_hi]
            returned.extend(r.at for r in kept)
            # An attribute cut away entirely is still named, with no instances: its instances
            # lie beyond the range and come with the next page.
            if not kept:
                found[hid].cut_away.setdefault(attr, group[0].value["type"])
            found[hid].instances.setdefault(attr, []).extend(
                InstanceOut(
                    attr=attr,
                    dataset_id=r.dataset_id,
                    instance_id=r.instance_id,
                    t=r.at,
                    created_at=r.created_at,
                    modified_at=r.modified_at,
                    value=r.value,
                    deleted_at=r.deleted_at,
                )
                for r in kept
            )
        if not truncated or not returned:
            return None
        oldest, newest = min(returned), max(returned)
        if not newest_first:
            return (series.lo if series.lo is not None else oldest, newest)
        if tq.timerel == "between":
            assert tq.end_time_at is not None
            return (tq.end_time_at, oldest)
        if tq.timerel == "before":
            assert tq.time_at is not None
            return (tq.time_at, oldest)
        return (newest, oldest)

    def _aggregate(
        self, conn: Connection, series: Series, tq: TemporalQuery, found: dict[int, TemporalEntity]
    ) -> None:
        assert tq.aggr_methods is not None
        methods = tq.aggr_methods
        period, months, lo, hi = tq.aggr_period, tq.aggr_months, series.lo, series.hi
        periodic = bool(period or months)
        origin = grid_origin(period)
        # Whole hours inside [lo, hi): the rollup can answer for them if periods are made of
        # whole hours (calendar months are too: they start at 00:00 UTC).
        h_lo = None if lo is None else -(-lo // HOUR) * HOUR
        h_hi = None if hi is None else hi // HOUR * HOUR
        hours: tuple[int | None, int | None] | None = (h_lo, h_hi)
        if (
            tq.time_property != "observedAt"
            or "distinctCount" in methods  # distinct values cannot be added up across hours
            or period % HOUR
            or (h_lo is not None and h_hi is not None and h_lo >= h_hi)
        ):
            hours = None
        by_series = repo.aggregate(
            conn,
            series,
            methods=methods,
            origin=origin,
            period=period,
            months=months,
            hours=hours,
        )
        kinds: dict[tuple[int, str, str], str] = {}
        if hours is None:  # from the instances: the attribute types come from the rollup
            observed = tq.time_property == "observedAt"
            kinds = repo.series_kinds(
                conn, series, (None if lo is None else repo.hour_of(lo), hi) if observed else None
            )
        for (hid, attr, dataset_id), (kind, columns) in by_series.items():
            index = columns[0]
            if index != sorted(index):
                # SQL returns periods in any order: sort every column by period index.
                order = sorted(range(len(index)), key=index.__getitem__)
                columns = [[column[i] for i in order] for column in columns]
                index = columns[0]
            values = columns[1:] if periodic else columns[3:]
            kind = kind or kinds.get((hid, attr, dataset_id))
            if periodic:
                if months:  # index: the period's first month // months
                    starts = [month_start(i * months) for i in index]
                    ends = [month_start((i + 1) * months) for i in index]
                else:
                    starts = [origin + i * period for i in index]
                    ends = [t + period for t in starts]
                # Periods lie on a grid; the first and the last are cut to the interval (and
                # to years 1-9999, which is all a date-time can say).
                starts[0] = max(starts[0], -_EARLIEST if lo is None else lo)
                ends[-1] = min(ends[-1], _LATEST if hi is None else hi)
            else:  # one period, the whole interval: it ends at the instances if open
                starts = [lo if lo is not None else columns[1][0]]
                ends = [hi if hi is not None else columns[2][0]]
            if "stddev" in methods:
                column = values[methods.index("stddev")]
                column[:] = [None if v is None else math.sqrt(max(v, 0.0)) for v in column]
            agg = Aggregated(
                kind or "Property",
                starts,
                ends,
                dict(zip(methods, values, strict=True)),
            )
            if tq.last_n:  # with aggregates, lastN keeps the last N periods
                agg.keep_last(tq.last_n)
            found[hid].aggregates.setdefault(attr, {})[dataset_id] = agg
        # Attributes and datasetIds in a stable order, as with instances.
        for entity in found.values():
            entity.aggregates = {
                attr: dict(sorted(by_ds.items()))
                for attr, by_ds in sorted(entity.aggregates.items())
            }

    def _entity(self, conn: Connection, tenant: str, entity_id: str, *, lock: bool = False) -> Any:
        row = repo.get_entity(conn, tenant, entity_id, for_update=lock)
        if row is None:
            where = f" in tenant {tenant!r}" if tenant else ""
            raise ResourceNotFound(f"entity {entity_id} has no temporal evolution{where}")
        return row

    # -- writes ------------------------------------------------------------------------------
    def upsert(self, tenant: str, doc: Doc) -> bool:
        """Create a temporal evolution or add instances to it; True if it was created."""
        now = now_us()
        with self.db.write() as conn:
            row = repo.get_entity(conn, tenant, doc["id"], for_update=True)
            if row is None:
                if not doc.get("type"):
                    raise BadRequestData(
                        f"entity {doc['id']} has no temporal evolution yet; creating it needs "
                        "a type"
                    )
                try:
                    hid = repo.insert_entity(
                        conn, tenant, doc["id"], doc["type"], doc.get("scope"), now
                    )
                except IntegrityError:  # a concurrent create won the race
                    raise Conflict(f"entity {doc['id']} was created concurrently; retry") from None
            else:
                hid = int(row.hid)
                changes: dict[str, Any] = {}
                if doc.get("type") and not set(doc["type"]) <= set(row.types):
                    changes["types"] = list(dict.fromkeys([*row.types, *doc["type"]]))
                if "scope" in doc:
                    changes["scope"] = doc["scope"]
                repo.touch_entity(conn, hid, now, **changes)
            repo.insert_instances(conn, instance_rows(hid, doc["attrs"], now))
        return row is None

    def append(self, tenant: str, entity_id: str, attrs: dict[str, list[Instance]]) -> None:
        now = now_us()
        with self.db.write() as conn:
            hid = int(self._entity(conn, tenant, entity_id, lock=True).hid)
            repo.touch_entity(conn, hid, now)
            repo.insert_instances(conn, instance_rows(hid, attrs, now))

    def patch_instance(
        self,
        tenant: str,
        entity_id: str,
        attr: str,
        instance_id: str,
        patch: Instance,
        name: str,
    ) -> None:
        """Correct one instance: the members in ``patch`` replace the instance's."""
        now = now_us()
        with self.db.write() as conn:
            hid = int(self._entity(conn, tenant, entity_id, lock=True).hid)
            found = self._instance(conn, hid, attr, instance_id, entity_id, name)
            if patch.get("datasetId", found.dataset_id or None) != (found.dataset_id or None):
                raise BadRequestData(
                    "the datasetId of an instance cannot be changed; delete the instance and "
                    "add a new one"
                )
            merged = _merge(found.value, patch)
            observed = merged.get("observedAt")
            t = parse_datetime_us(observed, field="observedAt") if observed else found.observed_at
            repo.update_instance(
                conn, found.iid, value=merged, num=numeric(merged), observed_at=t, modified_at=now
            )
            ds = found.dataset_id
            repo.refresh_hours(
                conn,
                [
                    (hid, attr, repo.hour_of(found.observed_at), ds),
                    (hid, attr, repo.hour_of(t), ds),
                ],
            )
            repo.touch_entity(conn, hid, now)

    def delete_entity(self, tenant: str, entity_id: str) -> None:
        with self.db.write() as conn:
            repo.delete_entity(conn, int(self._entity(conn, tenant, entity_id, lock=True).hid))

    def delete_attr(
        self,
        tenant: str,
        entity_id: str,
        attr: str,
        name: str,
        *,
        dataset_id: str | None = None,
        delete_all: bool = False,
    ) -> None:
        now = now_us()
        with self.db.write() as conn:
            hid = int(self._entity(conn, tenant, entity_id, lock=True).hid)
            removed = repo.delete_attr(conn, hid, attr, None if delete_all else dataset_id or "")
            if not removed:
                which = (
                    ""
                    if delete_all
                    else f" with datasetId {dataset_id}"
                    if dataset_id
                    else " without datasetId (the default instance)"
                )
                raise ResourceNotFound(
                    f"entity {entity_id} has no instances of attribute {name}{which}"
                )
            repo.touch_entity(conn, hid, now)

    def delete_instance(
        self, tenant: str, entity_id: str, attr: str, instance_id: str, name: str
    ) -> None:
        now = now_us()
        with self.db.write() as conn:
            hid = int(self._entity(conn, tenant, entity_id, lock=True).hid)
            found = self._instance(conn, hid, attr, instance_id, entity_id, name)
            repo.delete_instance(conn, found.iid)
            repo.refresh_hours(
                conn, [(hid, attr, repo.hour_of(found.observed_at), found.dataset_id)]
            )
            repo.touch_entity(conn, hid, now)

    def _instance(
        self, conn: Connection, hid: int, attr: str, instance_id: str, entity_id: str, name: str
    ) -> Any:
        found = repo.get_instance(conn, hid, attr, instance_id)
        if found is None:
            raise ResourceNotFound(
                f"attribute {name} of entity {entity_id} has no instance {instance_id}"
            )
        return found


def _merge(existing: Instance, patch: Instance) -> Instance:
    merged = dict(existing)
    if patch["type"] != existing["type"]:
        merged.pop(VALUE_KEY[existing["type"]], None)  # e.g. Property -> Relationship
    for key, value in patch.items():
        if key not in ("createdAt", "modifiedAt", "instanceId"):
            merged[key] = value
    return merged
