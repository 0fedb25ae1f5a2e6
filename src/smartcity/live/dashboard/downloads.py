"""Every table of the dashboard as CSV: the same rows the page shows, all of them.

Column names are stable English keys (a script reading the file must not depend on the page's
language); names, units, levels and messages are in the language asked for. Times are ISO 8601
in Hong Kong time (``2026-12-02T12:49:00+08:00``), as the page shows them, with the UTC
instant beside them for whoever joins the file with the NGSI-LD API's data. The file starts
with a UTF-8 byte order mark, so spreadsheet programs open Chinese names correctly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from smartcity.live.dashboard.kinds import BY_KEY, RULES, DashboardConfig, Kind
from smartcity.live.dashboard.service import Alert, EntityDetail, Series
from smartcity.live.dashboard.state import Item
from smartcity.live.dashboard.views import View, parse_time
from smartcity.web.i18n import hong_kong

BOM = "\ufeff"


def local_iso(value: str | None) -> str:
    """An ISO instant as Hong Kong time with its offset; '' when there is none."""
    parsed = parse_time(value)
    return hong_kong(parsed).isoformat(timespec="seconds") if parsed else ""


def number(value: float | None) -> str:
    """A figure as a plain number a spreadsheet reads (no grouping, no rounding)."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def layer(
    v: View, kind: Kind, items: Sequence[Item], outlook: Mapping[str, int | None] | None = None
) -> str:
    """The layer's table; car parks with the page's "likely full on arrival" column as
    minutes (``likely_full_within_min``: 0 full now, empty not within the hour)."""
    rows = []
    for item in items:
        feature = v.feature(item, outlook)["properties"]
        row = [item.id, feature["name"], number(item.value), v._(kind.unit),
               feature["band"] or "", local_iso(item.observed_at), item.observed_at or "",
               "yes" if item.simulated else "no"]  # fmt: skip
        if kind.key == "carparks":
            row.append(number(feature["likelyFullWithin"]))
        rows.append(row)
    header = ["id", "name", "value", "unit", "level", "time_hkt", "observed_at_utc", "simulated"]
    if kind.key == "carparks":
        header.append("likely_full_within_min")
    return render(header, rows)


def series(v: View, s: Series) -> str:
    from smartcity.hub.timeutil import iso_from_us

    kind = BY_KEY[s.kind]
    rows = [
        [local_iso(iso_from_us(t)), iso_from_us(t), number(value), v._(kind.unit)]
        for t, value in s.points
    ]
    return render(["hour_hkt", "hour_utc", "value", "unit"], rows)


def alerts(v: View, found: Sequence[Alert]) -> str:
    rows = []
    for a in found:
        shown = v.alert(a)
        rows.append([shown["layer"], a.entity_id, shown["name"], a.rule, number(a.value),
                     number(a.threshold), shown["message"], local_iso(a.observed_at),
                     a.observed_at or ""])  # fmt: skip
    header = ["layer", "id", "name", "rule", "value", "threshold", "message", "time_hkt",
              "observed_at_utc"]  # fmt: skip
    return render(header, rows)


def thresholds(v: View, config: DashboardConfig) -> str:
    rows = [
        [v._(BY_KEY[r.kind].label), r.key, r.op, number(config.thresholds[r.key])] for r in RULES
    ]
    return render(["layer", "rule", "operator", "threshold"], rows)


def attributes(detail: EntityDetail) -> str:
    import orjson

    rows = []
    for name, value, unit, at in detail.attributes:
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        rows.append([name, text, unit or "", local_iso(at), at or ""])
    return render(["attribute", "value", "unit", "time_hkt", "observed_at_utc"], rows)


def history(v: View, detail: EntityDetail) -> str:
    unit = v._(detail.kind.unit) if detail.kind else ""
    rows = [[local_iso(t), t, number(value), unit] for t, value in detail.history]
    return render(["time_hkt", "observed_at_utc", "value", "unit"], rows)
