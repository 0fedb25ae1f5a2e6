"""A hub entity type's data as files, generated on request from the hub's service layer (never
over HTTP): the current state as CSV and GeoJSON, and one day's history as CSV.

Files stream page by page, so memory stays bounded whatever the number of entities. CSV cells
holding text that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return) are prefixed with ``'``; numbers are left as they are.
Structured values (a language map, a GeoJSON geometry, a list) are written as JSON.

Days are Hong Kong days (UTC+8). A day's file holds every attribute instance the hub
recorded that day (by ``modifiedAt``, which every instance has; ``observedAt`` is a column),
oldest first per entity and attribute.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from smartcity.hub.contexts import city_context
from smartcity.hub.entity import render_entity, render_instance
from smartcity.hub.querying import EntityQuery, geo_subject
from smartcity.hub.runtime import Hub
from smartcity.hub.temporal.service import TemporalQuery
from smartcity.opendata.languages import LANGS

HKT = dt.timezone(dt.timedelta(hours=8), "HKT")
LOCATION = "https://uri.etsi.org/ngsi-ld/location"
PAGE = 500  # entities per read
HISTORY_PAGE = 50  # entities per temporal read (each brings its instances)
MAX_ENTITIES = 200_000  # per file: a type larger than this is cut (and says so)
MAX_ROUNDS = 10_000  # temporal reads per page of entities, when the hub's limit cuts them
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = orjson.dumps(value).decode()
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class _Lines:
    """A csv writer whose rows are collected and handed out as text, one batch at a time."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\r\n")

    def row(self, values: list[Any]) -> None:
        self.writer.writerow([cell(v) for v in values])

    def take(self) -> bytes:
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text.encode("utf-8")


@dataclass(frozen=True)
class EntityType:
    """The hub type a live dataset publishes."""

    iri: str
    tenant: str = ""

    @property
    def query(self) -> EntityQuery:
        return EntityQuery(types=[frozenset({self.iri})])


def _docs(hub: Hub, etype: EntityType) -> Iterator[dict[str, Any]]:
    offset = 0
    while offset < MAX_ENTITIES:
        docs, _ = hub.entities.find(etype.tenant, etype.query, limit=PAGE, offset=offset)
        yield from docs
        if len(docs) < PAGE:
            return
        offset += PAGE


def current_csv(hub: Hub, etype: EntityType) -> Iterator[bytes]:
    """``id, type, modifiedAt`` and one column per attribute of the type (key-values); a
    text in several languages (a LanguageProperty) has a column per language, ``name/en``,
    ``name/zh-Hant``, ``name/zh-Hans``, as the portal's own CSV files."""
    ctx = city_context()
    details = hub.entities.type_details(etype.tenant, etype.iri)
    attrs = sorted(details[1] if details else [], key=ctx.compact)
    docs = _docs(hub, etype)
    first = list(itertools.islice(docs, PAGE))
    multilingual = {
        attr
        for doc in first
        for attr, instances in doc["attrs"].items()
        if instances and instances[0].get("type") == "LanguageProperty"
    }
    header = ["id", "type", "modifiedAt"]
    for attr in attrs:
        name = ctx.compact(attr)
        header.extend([f"{name}/{lang}" for lang in LANGS] if attr in multilingual else [name])
    lines = _Lines()
    lines.row(header)
    yield "\ufeff".encode() + lines.take()  # Excel reads UTF-8 (Chinese) only after a BOM
    for n, doc in enumerate(itertools.chain(first, docs), 1):
        shown = render_entity(doc, ctx, fmt="keyValues")
        row = [doc["id"], shown.get("type"), doc.get("modifiedAt")]
        for attr in attrs:
            value = shown.get(ctx.compact(attr))
            if attr in multilingual:
                texts = value.get("languageMap", {}) if isinstance(value, dict) else {}
                row.extend(texts.get(lang) for lang in LANGS)
            else:
                row.append(value)
        lines.row(row)
        if n % PAGE == 0:
            yield lines.take()
    yield lines.take()


def current_features(hub: Hub, etype: EntityType) -> Iterator[dict[str, Any]]:
    """Each entity as a GeoJSON Feature: its ``location`` as geometry, its attributes
    (key-values) as properties (the GeoJSON file's features, and the map preview's)."""
    ctx = city_context()
    for doc in _docs(hub, etype):
        shown = render_entity(doc, ctx, fmt="keyValues")
        shown.pop("id", None)
        shown.pop("location", None)
        geometries = geo_subject(doc, LOCATION)
        yield {
            "type": "Feature",
            "id": doc["id"],
            "geometry": geometries[0] if geometries else None,
            "properties": shown,
        }


def current_geojson(hub: Hub, etype: EntityType) -> Iterator[bytes]:
    """A FeatureCollection of ``current_features``."""
    yield b'{"type":"FeatureCollection","features":['
    first = True
    for feature in current_features(hub, etype):
        yield (b"" if first else b",") + orjson.dumps(feature)
        first = False
    yield b"]}"


def day_bounds(day: dt.date) -> tuple[int, int]:
    """[start, end) of a Hong Kong day, in microseconds since the epoch."""
    start = dt.datetime.combine(day, dt.time(), HKT)
    end = start + dt.timedelta(days=1)
    return int(start.timestamp() * 1_000_000), int(end.timestamp() * 1_000_000)


def _iso(us: int) -> str:
    moment = dt.datetime.fromtimestamp(us / 1e6, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


HISTORY_COLUMNS = [
    "entityId",
    "attribute",
    "datasetId",
    "value",
    "unitCode",
    "observedAt",
    "modifiedAt",
]


def history_csv(hub: Hub, etype: EntityType, day: dt.date) -> Iterator[bytes]:
    """What the hub recorded of the type's entities on ``day`` (Hong Kong time)."""
    lines = _Lines()
    lines.row(HISTORY_COLUMNS)
    yield "\ufeff".encode() + lines.take()
    for batch in history_batches(hub, etype, day):
        for row in batch:
            lines.row(row)
        yield lines.take()


def history_rows(hub: Hub, etype: EntityType, day: dt.date) -> Iterator[list[Any]]:
    """The rows of ``history_csv`` (``HISTORY_COLUMNS``), values as the hub gives them."""
    for batch in history_batches(hub, etype, day):
        yield from batch


def history_batches(hub: Hub, etype: EntityType, day: dt.date) -> Iterator[list[list[Any]]]:
    """The day's rows, a batch per temporal read."""
    ctx = city_context()
    start, end = day_bounds(day)
    offset = 0
    while offset < MAX_ENTITIES:
        lo, seen_at_lo, entities = start, set[str](), 0
        for _round in range(MAX_ROUNDS):
            tq = TemporalQuery(
                timerel="between", time_at=lo, end_time_at=end, time_property="modifiedAt"
            )
            result = hub.temporal.query(
                etype.tenant, etype.query, tq, limit=HISTORY_PAGE, offset=offset
            )
            entities = len(result.entities)
            batch: list[list[Any]] = []
            for entity in result.entities:
                for attr, instances in entity.instances.items():
                    for inst in instances:
                        if inst.t == lo and inst.instance_id in seen_at_lo:
                            continue  # sent before the hub's limit cut the last read
                        value = render_instance(inst.value, ctx, "keyValues", False, None)
                        batch.append(
                            [
                                entity.entity_id,
                                ctx.compact(attr),
                                inst.dataset_id,
                                value,
                                inst.value.get("unitCode"),
                                inst.value.get("observedAt"),
                                _iso(inst.modified_at),
                            ]
                        )
            yield batch
            if result.partial is None:
                break
            # The hub's instance limit cut this read at range-end: go on from there (the
            # instances at range-end come again, and are skipped by id).
            if result.partial[1] <= lo or result.partial[1] >= end:
                # No progress is possible (more instances at one instant than the hub's
                # limit) or the day is done: what was read is what the file holds.
                break
            lo = result.partial[1]
            seen_at_lo = {
                inst.instance_id
                for entity in result.entities
                for instances in entity.instances.values()
                for inst in instances
                if inst.t == lo
            }
        if entities < HISTORY_PAGE:
            return
        offset += HISTORY_PAGE
