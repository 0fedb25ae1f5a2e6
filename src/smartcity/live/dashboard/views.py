"""Turning the service's figures into what pages and the JSON API show, in one language."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from smartcity.live.dashboard.kinds import BY_KEY, KINDS, RULES, Kind
from smartcity.live.dashboard.service import Alert, Series, Tile, entity_url
from smartcity.live.dashboard.state import Item
from smartcity.web.i18n import Formatter, Lang

API = "/api/v1/dashboard"
# Decimals shown per kind (the browser formats live values with the same rule).
DECIMALS = {"carparks": 0, "traffic": 0, "air": 0, "weather": 1, "bins": 0, "crowd": 0}
Translate = Callable[[str], str]


def pick_name(name: Any, lang: Lang, fallback: str) -> str:
    """A name that may be a language map ({"en": ..., "zh-Hant": ...}) in the page's language."""
    if isinstance(name, Mapping):
        for key in (lang.text, lang.text.split("-")[0], "en"):
            if isinstance(name.get(key), str):
                return str(name[key])
        for value in name.values():
            if isinstance(value, str):
                return value
    if isinstance(name, str) and name:
        return name
    return fallback


def short_id(entity_id: str) -> str:
    return entity_id.rsplit(":", 1)[-1]


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class View:
    """Formatting bound to one language."""

    def __init__(self, lang: Lang, gettext: Translate) -> None:
        self.lang = lang
        self._ = gettext
        self.fmt = Formatter(lang)

    def number(self, kind: str, value: float | None) -> str:
        if value is None:
            return "–"
        if kind == "air" and value > 10:
            return "10+"
        decimals = DECIMALS.get(kind, 1)
        return self.fmt.number(round(value, decimals) if decimals else round(value))

    def change(self, kind: str, value: float | None) -> str:
        if value is None:
            return "–"
        text = self.number(kind, abs(value))
        rounded = round(value, DECIMALS.get(kind, 1))
        return ("+" if rounded > 0 else "−" if rounded < 0 else "±") + text

    def time(self, value: str | None) -> str:
        """A reading's time in Hong Kong, written as the page's script writes it (i18n)."""
        parsed = parse_time(value)
        return self.fmt.moment(parsed) if parsed else "–"

    def name(self, item: Item) -> str:
        return pick_name(item.name, self.lang, short_id(item.id))

    def entity_page(self, entity_id: str) -> str:
        from urllib.parse import quote

        return f"/{self.lang.prefix}/dashboard/entities/{quote(entity_id, safe=':')}"

    # -- JSON shapes -------------------------------------------------------------------------
    def tile(self, tile: Tile) -> dict[str, Any]:
        kind = BY_KEY[tile.kind]
        out = tile.as_json()
        out.update(
            label=self._(kind.tile_label),
            unit=self._(kind.unit),
            display=self.number(tile.kind, tile.value),
            bandLabel=self._(tile.band) if tile.band else None,
            csvUrl=f"{API}/layers.csv?kind={tile.kind}&lang={self.lang.prefix}",
        )
        return out

    def alert(self, alert: Alert, fallback_name: str | None = None) -> dict[str, Any]:
        rule = next(r for r in RULES if r.key == alert.rule)
        threshold = self.number(alert.kind, alert.threshold)
        return {
            "rule": alert.rule,
            "kind": alert.kind,
            "id": alert.entity_id,
            "name": pick_name(alert.name, self.lang, fallback_name or short_id(alert.entity_id)),
            "value": alert.value,
            "threshold": alert.threshold,
            "observedAt": alert.observed_at,
            "message": self._(rule.message)
            % {"value": self.number(alert.kind, alert.value), "threshold": threshold},
            "layer": self._(BY_KEY[alert.kind].label),
            "page": self.entity_page(alert.entity_id),
            "dataUrl": entity_url(alert.entity_id),
        }

    def feature(
        self, item: Item, outlook: Mapping[str, int | None] | None = None
    ) -> dict[str, Any]:
        """One entity as a GeoJSON feature; a car park's carries ``likelyFullWithin`` (minutes
        until likely full on arrival, 0 full now, null not within the forecasts' hour or no
        forecast) and its label, from ``outlook`` (DashboardService.likely_full_within)."""
        kind = BY_KEY[item.kind]
        band = kind.band(item.colour_value if kind.colour_attr else item.value)
        feature: dict[str, Any] = {
            "type": "Feature",
            "id": item.id,
            "geometry": item.geometry,
            "properties": {
                "id": item.id,
                "kind": item.kind,
                "name": self.name(item),
                "value": item.value,
                "display": self.number(item.kind, item.value),
                "colourValue": item.colour_value,
                "band": self._(band.label) if band else None,
                "colour": band.colour if band else "#666666",
                "observedAt": item.observed_at,
                "status": item.status,
                "simulated": item.simulated,
                "page": self.entity_page(item.id),
            },
        }
        if item.kind == "carparks":
            minutes = None if outlook is None else outlook.get(item.id)
            known = outlook is not None and item.id in outlook
            feature["properties"] |= {
                "likelyFullWithin": minutes,
                "likelyFull": self.likely_full(minutes) if known else "–",
            }
        return feature

    def likely_full(self, minutes: int | None) -> str:
        if minutes is None:
            return self._("Not likely within the hour")
        if minutes == 0:
            return self._("Full now")
        return self._("Likely full within %(minutes)s min") % {"minutes": minutes}

    def series(self, series: Series) -> dict[str, Any]:
        from smartcity.hub.timeutil import iso_from_us

        kind = BY_KEY[series.kind]
        return {
            "kind": series.kind,
            "window": series.window,
            "aggregate": kind.aggregate,
            "label": self._(kind.tile_label),
            "unit": self._(kind.unit),
            "points": [[iso_from_us(t), v] for t, v in series.points],
            "historyUrl": series.history_url,
        }

    def labels(self) -> dict[str, Any]:
        """Strings the page's script needs (band names and units), translated once."""
        bands = {b.label: self._(b.label) for k in KINDS for b in k.bands}
        return {
            "bands": bands,
            "kinds": {
                k.key: {
                    "label": self._(k.label),
                    "tile": self._(k.tile_label),
                    "unit": self._(k.unit),
                    "decimals": DECIMALS[k.key],
                }
                for k in KINDS
            },
            "order": [k.key for k in KINDS],
            "rules": {r.key: self._(r.message) for r in RULES},
            "connected": self._("Live: connected"),
            "reconnecting": self._("Live: reconnecting…"),
            "lastUpdate": self._("last update %(time)s"),
            "alertsSummary": self._(
                "%(active)s alerts active, %(new)s new since the last summary."
            ),
            "noAlerts": self._("No alerts."),
            "alertsActive": self._("Alerts active: %(num)s"),
            "history": self._("Last 24 hours"),
            "openPage": self._("Open the entity page"),
            "close": self._("Close"),
            "value": self._("Value"),
            "time": self._("Time"),
        }

    def kind_title(self, kind: Kind) -> str:
        return self._(kind.label)
