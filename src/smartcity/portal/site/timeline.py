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
    # Set when the note is not in the page's language: the note's language (html lang) and
    # a label saying so, e.g. "(in English)".
    note_lang: str | None = None
    note_label: str | None = None


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
    if name in ("start", "end", "start_date", "end_date"):  # audited as start / end
        before, after = _date(old, fmt), _date(new, fmt)
        start = name.startswith("start")
        if before and after:
            message = (
                _("Start date changed from %(old)s to %(new)s")
                if start
                else _("End date changed from %(old)s to %(new)s")
            )
            return message % {"old": before, "new": after}
        if after:
            message = _("Start date set to %(date)s") if start else _("End date set to %(date)s")
            return message % {"date": after}
        return _("Start date removed") if start else _("End date removed")
    if name == "milestone":
        return _("Milestone added: %(title)s") % {"title": _text(new, fmt.lang.text)}
    if name == "milestone_done":
        return _("Milestone completed") if new else _("Milestone reopened")
    if name in ("parent", "parent_id"):
        if new:
            return _("Made part of measure %(id)s") % {"id": new}
        return _("Made a measure of its own")
    if name == "weight":
        if old is not None:
            return _("Weight in the roll-up changed from %(old)s to %(new)s") % {
                "old": fmt.number(old),
                "new": fmt.number(new),
            }
        return _("Weight in the roll-up changed to %(weight)s") % {"weight": fmt.number(new)}
    if name == "note":
        return _("Progress note")
    if name in ("title", "text", "target", "owners", "is_new", "area", "strategy", "live"):
        return _("Blueprint details updated")
    # A field this page has no sentence for: its name in the reader's language, old → new.
    label = _(FIELD_NAMES[name]) if name in FIELD_NAMES else name
    return _("%(field)s changed from %(old)s to %(new)s") % {
        "field": label,
        "old": _value(old, fmt) or _("(none)"),
        "new": _value(new, fmt) or _("(none)"),
    }


# The audit trail's field names as readers know them (extracted for translation by name).
FIELD_NAMES = {
    "status": "Status",
    "progress": "Progress",
    "start": "Start date",
    "end": "End date",
    "weight": "Weight in the roll-up",
    "parent": "Part of",
    "note": "Note",
}


def _date(value: Any, fmt: Formatter) -> str:
    if not isinstance(value, str) or not value:
        return ""
    try:
        return fmt.date(dt.date.fromisoformat(value))
    except ValueError:
        return value


def _value(value: Any, fmt: Formatter) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return fmt.number(value)
    if isinstance(value, str):
        return _date(value, fmt)
    return _text(value, fmt.lang.text)


NOTE_FALLBACK = ("en", "zh-Hant", "zh-Hans")  # the default language first
HTML_LANG = {"en": "en", "zh-Hant": "zh-Hant-HK", "zh-Hans": "zh-Hans"}
SEEDED = "blueprint"  # the note of a status ``blueprint load`` seeded (measures/loader.py)


def _note(e: AuditEntry, _: Gettext, lang_key: str) -> tuple[str | None, str | None, str | None]:
    """(note, its html lang, a label) for the page's language: the note in that language, or
    the default language's, marked as such; older notes have no language and show as is."""
    if e.field == "milestone_done":
        return None, None, None  # the note repeats the milestone's English title
    if e.user_id is None and e.note == SEEDED:
        return _("From what the blueprint says about this measure."), None, None
    if not e.notes:
        return e.note, None, None
    if e.notes.get(lang_key):
        return e.notes[lang_key], None, None
    labels = {
        "en": _("(in English: no translation was given)"),
        "zh-Hant": _("(in Traditional Chinese: no translation was given)"),
        "zh-Hans": _("(in Simplified Chinese: no translation was given)"),
    }
    for key in NOTE_FALLBACK:
        if e.notes.get(key):
            return e.notes[key], HTML_LANG[key], labels[key]
    return e.note, None, None


def events(
    entries: list[AuditEntry], _: Gettext, fmt: Formatter, status_labels: Mapping[str, str]
) -> list[Event]:
    out = []
    for e in entries:
        note, note_lang, note_label = _note(e, _, fmt.lang.text)
        out.append(
            Event(
                at=e.at,
                who="" if e.user_id is None else e.user,
                what=describe(e, _, fmt, status_labels),
                note=note,
                note_lang=note_lang,
                note_label=note_label,
            )
        )
    return out
