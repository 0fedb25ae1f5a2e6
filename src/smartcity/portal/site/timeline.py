"""The measure page's timeline: audit-trail entries as sentences a citizen can read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from smartcity.portal.measures.schemas import AuditEntry
from smartcity.web.i18n import Formatter

Gettext = Callable[[str], str]
SYSTEM = "system"


@dataclass(frozen=True)
class Event:
    at: dt.datetime
    who: str  # "" when the system made the change
    what: str
    note: str | None


def _text(value: Any, lang_key: str) -> str:
    if isinstance(value, Mapping):
        title = value.get("title", value)
        if isinstance(title, Mapping):
            return str(title.get(lang_key) or title.get("en") or "")
    return "" if value is None else str(value)


def describe(
    entry: AuditEntry,
    _: Gettext,
    fmt: Formatter,
    status_labels: Mapping[str, str],
) -> str:
    old, new, name = entry.old, entry.new, entry.field
    if name == "created":
        return _("Added to the tracker")
    if name == "status":
        return _("Status changed from %(old)s to %(new)s") % {
            "old": status_labels.get(str(old), str(old)),
            "new": status_labels.get(str(new), str(new)),
        }
    if name == "progress":
        return _("Progress changed from %(old)s to %(new)s") % {
            "old": fmt.percent(old or 0),
            "new": fmt.percent(new or 0),
        }
    if name in ("start_date", "end_date"):
        date = fmt.date(dt.date.fromisoformat(new)) if isinstance(new, str) else ""
        if name == "start_date":
            return (
                _("Start date set to %(date)s") % {"date": date}
                if date
                else _("Start date removed")
            )
        return _("End date set to %(date)s") % {"date": date} if date else _("End date removed")
    if name == "milestone":
        return _("Milestone added: %(title)s") % {"title": _text(new, fmt.lang.text)}
    if name == "milestone_done":
        return _("Milestone completed") if new else _("Milestone reopened")
    if name == "parent":
        if new:
            return _("Made part of measure %(id)s") % {"id": new}
        return _("Made a measure of its own")
    if name == "weight":
        return _("Weight in the roll-up changed to %(weight)s") % {"weight": fmt.number(new)}
    if name == "note":
        return _("Progress note")
    if name in ("title", "text", "target", "owners", "is_new", "area", "strategy", "live"):
        return _("Blueprint details updated")
    return _("Changed: %(field)s") % {"field": name}


def events(
    entries: list[AuditEntry], _: Gettext, fmt: Formatter, status_labels: Mapping[str, str]
) -> list[Event]:
    return [
        Event(
            at=e.at,
            who="" if e.user_id is None else e.user,
            what=describe(e, _, fmt, status_labels),
            # Notes on milestones repeat the English title; show editors' notes only.
            note=e.note if e.field not in ("milestone_done",) else None,
        )
        for e in entries
    ]
