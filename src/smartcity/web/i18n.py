"""The site's three languages, language negotiation, message catalogues and locale formatting.

UI strings live in ``locale/<catalogue>/LC_MESSAGES/messages.po`` (gettext). The ``.po`` files are
compiled in memory the first time a language is used, so there is no build step and no ``.mo``
file to forget. A feature may ship its own ``locale`` folder; its catalogue is merged over ours.
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import (
    format_date,
    format_datetime,
    format_skeleton,
    format_time,
    get_datetime_format,
)
from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
HONG_KONG = dt.timezone(dt.timedelta(hours=8), "HKT")  # times are shown in the city's time


@dataclass(frozen=True)
class Lang:
    """One language of the site."""

    prefix: str  # URL prefix: "en", "tc", "sc"
    html: str  # BCP 47 tag for <html lang> and hreflang
    text: str  # key of blueprint Text objects: "en", "zh-Hant", "zh-Hans"
    locale: str  # Babel locale for dates and numbers
    catalogue: str  # folder under locale/
    name: str  # the language's own name, for the language switch

    @property
    def bcp47(self) -> str:
        """The Babel locale as a BCP 47 tag ("en-HK"): what the browser's ``Intl`` is given,
        so it formats dates and numbers as the server does."""
        return self.locale.replace("_", "-")


EN = Lang("en", "en", "en", "en_HK", "en", "English")
TC = Lang("tc", "zh-Hant-HK", "zh-Hant", "zh_Hant_HK", "zh_Hant", "繁體中文")
SC = Lang("sc", "zh-Hans", "zh-Hans", "zh_Hans_CN", "zh_Hans", "简体中文")
LANGS: tuple[Lang, ...] = (EN, TC, SC)
BY_PREFIX = {lang.prefix: lang for lang in LANGS}
DEFAULT = EN


def by_prefix(prefix: str) -> Lang | None:
    return BY_PREFIX.get(prefix)


def _parse_accept_language(header: str) -> list[tuple[str, float]]:
    ranges: list[tuple[str, float]] = []
    for part in header.split(","):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        if not tag:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranges.append((tag, quality))
    # Stable sort keeps the sender's order among equal qualities.
    return sorted(ranges, key=lambda r: -r[1])


def _lang_for_tag(tag: str) -> Lang | None:
    parts = tag.replace("_", "-").split("-")
    if parts[0] == "en":
        return EN
    if parts[0] != "zh":
        return None
    rest = set(parts[1:])
    if rest & {"hant", "hk", "tw", "mo"}:
        return TC
    return SC  # zh, zh-CN, zh-SG, zh-Hans


def negotiate(accept_language: str | None) -> Lang:
    """The site language for an Accept-Language header: the first range we serve wins."""
    for tag, _q in _parse_accept_language(accept_language or ""):
        lang = _lang_for_tag(tag)
        if lang is not None:
            return lang
    return DEFAULT


def _compile(po_path: Path, locale: str) -> gettext.GNUTranslations:
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@lru_cache(maxsize=128)  # languages x (page catalogues + nav items' catalogues)
def translations(lang: Lang, extra_dirs: tuple[Path, ...] = ()) -> gettext.NullTranslations:
    """The compiled catalogue for ``lang``: features' catalogues first, then the framework's."""
    result: gettext.NullTranslations | None = None
    for folder in (*extra_dirs, LOCALE_DIR):
        po = folder / lang.catalogue / "LC_MESSAGES" / f"{DOMAIN}.po"
        if not po.is_file():
            continue
        compiled = _compile(po, lang.catalogue)
        if result is None:
            result = compiled
        else:
            result.add_fallback(compiled)
    return result or gettext.NullTranslations()


def hong_kong(value: dt.datetime) -> dt.datetime:
    """An instant in Hong Kong time (a naive value is taken as UTC, as the database keeps it)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(HONG_KONG)


def _plain_spaces(text: str) -> str:
    """CLDR's narrow and thin spaces ("12:49\u202fpm") as plain ones: browsers' Intl writes
    plain spaces, and the same figure must read the same from the server and the script."""
    return text.replace("\u202f", " ").replace("\u2009", " ")


class Formatter:
    """Locale-aware formatting of dates and numbers for templates."""

    def __init__(self, lang: Lang) -> None:
        self.lang = lang
        self.locale = Locale.parse(lang.locale)

    def date(self, value: dt.date | dt.datetime | str | None, fmt: str = "long") -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            return self.partial_date(value)
        if isinstance(value, dt.datetime):  # the day it was in Hong Kong, not in UTC
            return format_date(hong_kong(value).date(), fmt, locale=self.locale)
        return format_date(value, fmt, locale=self.locale)

    def datetime(self, value: dt.datetime | None, fmt: str = "medium") -> str:
        if value is None:
            return ""
        return _plain_spaces(format_datetime(value, fmt, locale=self.locale, tzinfo=HONG_KONG))

    def moment(self, value: dt.datetime | None) -> str:
        """A reading's date and time in Hong Kong: the locale's medium date and short time
        ("2 Dec 2026, 12:49 pm", "2026年12月2日 下午12:49"). The browser writes the same with
        ``Intl.DateTimeFormat(lang.bcp47, {dateStyle: "medium", timeStyle: "short",
        timeZone: "Asia/Hong_Kong"})`` (the dashboard's script), so a figure reads the same
        whether the server rendered it or a live update rewrote it."""
        if value is None:
            return ""
        local = hong_kong(value)
        pattern = str(get_datetime_format("medium", locale=self.locale))
        text = pattern.replace("'", "").format(
            format_time(local, "short", locale=self.locale),
            format_date(local.date(), "medium", locale=self.locale),
        )
        return _plain_spaces(text)

    def partial_date(self, value: str) -> str:
        """ "2020", "2020-06" or "2020-06-30" as the locale writes a year, month or day."""
        parts = value.split("-")
        try:
            if len(parts) == 1:
                return format_skeleton("y", dt.date(int(parts[0]), 1, 1), locale=self.locale)
            if len(parts) == 2:
                day = dt.date(int(parts[0]), int(parts[1]), 1)
                return format_skeleton("yMMMM", day, locale=self.locale)
            return format_date(dt.date.fromisoformat(value), "long", locale=self.locale)
        except ValueError:
            return value

    def list(self, items: Sequence[str]) -> str:
        """ "A, B and C" / "A、B和C" as the locale joins a list."""
        return format_list(list(items), locale=self.locale) if items else ""

    def number(self, value: float | int | None) -> str:
        if value is None:
            return ""
        return format_decimal(value, locale=self.locale)

    def progress(self, value: float | int | None) -> str:
        """A progress 0-100 with one decimal ("0.3%", "42.5%"), so that one measure's step in
        a blueprint of 138 shows in the overall figure instead of rounding away."""
        if value is None:
            return ""
        return format_percent(float(value) / 100, "#,##0.0%", locale=self.locale)

    def amount(self, value: float | int, unit: str) -> str:
        """A large amount as the blueprint writes it in each language: "HK$2,843 billion" /
        "28,430 億港元" (Chinese counts in 萬 and 億, English in millions and billions), never a
        13-digit figure. Small values, and units other than money, are plain numbers."""
        if self.lang.text == "en":
            scales = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million")]
            prefix = unit.endswith("$")  # "HK$2,843 billion", but "2.3 million hotspots"
        elif self.lang.text == "zh-Hant":
            scales = [(10**12, "萬億"), (10**8, "億"), (10**4, "萬")]
            prefix = False
        else:
            scales = [(10**12, "万亿"), (10**8, "亿"), (10**4, "万")]
            prefix = False
        for size, word in scales:
            # The larger word only when the figure is whole in it: "9 萬億", but "28,430 億"
            # (not "2.843 萬億"), as the blueprint writes them.
            # 萬 only from a million up ("1,200 萬"), as the blueprint writes "37 000 個".
            if abs(value) >= max(size, 10**6) and (size != scales[0][0] or value % size == 0):
                number = format_decimal(value / size, "#,##0.###", locale=self.locale)
                if self.lang.text == "en":
                    figure = f"{number} {word}"
                    return f"{unit}{figure}" if prefix else f"{figure} {unit}".rstrip()
                return f"{number} {word}{unit}"
        number = format_decimal(value, locale=self.locale)
        return f"{unit}{number}" if prefix else f"{number} {unit}".rstrip()

    def percent(self, value: float | int | None) -> str:
        """``value`` is 0-100."""
        if value is None:
            return ""
        return format_percent(float(value) / 100, locale=self.locale)
