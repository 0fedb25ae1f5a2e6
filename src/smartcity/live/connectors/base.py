"""The connector contract and the small helpers every connector shares.

A connector turns one payload of an official feed into NGSI-LD entities (normalized form,
Smart Data Models names). ``parse`` is pure: bytes in, a ``ConnectorResult`` out, no I/O. A bad
record is skipped and counted under a reason, never allowed to stop the run; a payload that is
not the feed at all (an error body, HTML, the wrong file) raises ``ConnectorError`` so that
nothing is written and the user is told what went wrong.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

from smartcity.hub.contexts import city_terms

log = logging.getLogger("smartcity.live.connectors")

HKT = timezone(timedelta(hours=8), "HKT")
SDM = "https://smartdatamodels.org/"


def terms(*names: str) -> dict[str, str]:
    """The IRIs of these names in the platform's city @context (hub/contexts/
    smartcity-context.jsonld). Connectors and the simulator take every name from it, so they
    all write what the portal, the dashboard and API clients using that context read."""
    city = city_terms()
    missing = [name for name in names if name not in city]
    if missing:
        raise KeyError(f"not in the city @context: {', '.join(missing)}")
    return {name: city[name] for name in names}


# Terms shared by every Smart Data Models domain (same IRIs in each domain's context.jsonld).
COMMON_TERMS = terms(
    "name",
    "alternateName",
    "address",
    "description",
    "dataProvider",
    "source",
    "dateObserved",
    "location",
)

Entity = dict[str, Any]


class ConnectorError(Exception):
    """The payload is not usable at all (error body, wrong feed, not JSON/XML)."""


@dataclass
class ConnectorResult:
    """Entities produced from one payload, with what was skipped or caveated and why."""

    entities: list[Entity] = field(default_factory=list)
    context: dict[str, str] = field(default_factory=dict)
    records: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str, detail: str = "") -> None:
        self.skipped[reason] += 1
        log.debug("skipped a record (%s) %s", reason, detail)

    def warn(self, reason: str, detail: str = "") -> None:
        self.warnings[reason] += 1
        log.debug("record used with a caveat (%s) %s", reason, detail)

    def merge(self, other: ConnectorResult) -> None:
        self.entities.extend(other.entities)
        self.context.update(other.context)
        self.records += other.records
        self.skipped.update(other.skipped)
        self.warnings.update(other.warnings)

    def jsonld_context(self) -> dict[str, Any]:
        """The @context to send with the entities: only the terms they use."""
        used: set[str] = set()
        for entity in self.entities:
            used.add(entity["type"])
            _collect_names(entity, used)
        return {term: iri for term, iri in sorted(self.context.items()) if term in used}

    def jsonld(self) -> list[Entity]:
        """The entities as application/ld+json, each carrying the (inline) @context."""
        ctx = self.jsonld_context()
        return [{**entity, "@context": ctx} for entity in self.entities]


def _collect_names(fragment: Mapping[str, Any], used: set[str]) -> None:
    for key, value in fragment.items():
        if key in ("id", "type", "value", "object", "languageMap", "valueList", "objectList"):
            continue
        used.add(key)
        if isinstance(value, dict):
            _collect_names(value, used)


class Connector:
    """One official feed. Subclasses set the class attributes and implement ``parse``."""

    name: ClassVar[str]
    description: ClassVar[str]
    # Short term -> IRI for every type and attribute name the connector emits (its @context).
    context: ClassVar[dict[str, str]]
    # Connector-specific options accepted as ``--option key=value`` (name -> help).
    options: ClassVar[dict[str, str]] = {}
    # Where the feed comes from, for the open data portal's provenance of the datasets it
    # fills (the app hands these to smartcity.opendata): who publishes it, that publisher's
    # organisation in the catalogue, the entity types written, and the feed's addresses on
    # DATA.GOV.HK.
    publisher: ClassVar[str] = ""
    organisation: ClassVar[str] = ""
    entity_types: ClassVar[tuple[str, ...]] = ()
    sources: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **options: str) -> None:
        unknown = set(options) - set(self.options)
        if unknown:
            known = ", ".join(sorted(self.options)) or "none"
            raise ConnectorError(
                f"{self.name} has no option {', '.join(sorted(unknown))} (options: {known})"
            )
        self.settings = options

    def parse(
        self, raw: bytes, *, fetched_at: datetime, source: str | None = None
    ) -> ConnectorResult:
        raise NotImplementedError

    def result(self) -> ConnectorResult:
        return ConnectorResult(context={**COMMON_TERMS, **self.context})


# -- attribute builders --------------------------------------------------------------------
def prop(value: Any, *, observed_at: str | None = None, unit: str | None = None) -> Entity:
    out: Entity = {"type": "Property", "value": value}
    if observed_at:
        out["observedAt"] = observed_at
    if unit:
        out["unitCode"] = unit
    return out


def rel(target: str, *, observed_at: str | None = None) -> Entity:
    out: Entity = {"type": "Relationship", "object": target}
    if observed_at:
        out["observedAt"] = observed_at
    return out


def point(longitude: float, latitude: float) -> Entity:
    return {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [round(longitude, 7), round(latitude, 7)]},
    }


def languages(en: Any, tc: Any = None, sc: Any = None) -> Entity | None:
    """A LanguageProperty from the feeds' *_en / *_tc / *_sc triples (blanks left out)."""
    names = {
        lang: text.strip()
        for lang, text in (("en", en), ("zh-Hant", tc), ("zh-Hans", sc))
        if isinstance(text, str) and text.strip()
    }
    return {"type": "LanguageProperty", "languageMap": names} if names else None


# -- values ---------------------------------------------------------------------------------
def iso(dt: datetime) -> str:
    """UTC ISO 8601 with a Z, as the hub stores it."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hk_time(text: str, fmt: str = "%Y-%m-%d %H:%M:%S") -> datetime:
    """A Hong Kong local time (the feeds give no offset) as an aware datetime."""
    return datetime.strptime(text.strip(), fmt).replace(tzinfo=HKT)


def any_time(text: str) -> datetime:
    """An ISO 8601 time with an offset; a naive one is Hong Kong time."""
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=HKT)


def number(raw: Any) -> float | None:
    """A finite number from a JSON number or a numeric string; None for '-', '', null, junk."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        text = raw.strip()
        if not text or text in {"-", "N/A", "NA"}:
            return None
        try:
            value = float(text)
        except ValueError:
            return None
    else:
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return value


_SLUG = re.compile(r"[^A-Za-z0-9]+")


def slug(text: str) -> str:
    """A fragment safe inside an entity id: 'Central/Western' -> 'Central-Western'."""
    return _SLUG.sub("-", text.strip()).strip("-")
