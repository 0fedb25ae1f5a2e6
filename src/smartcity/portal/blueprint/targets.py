"""Target phrases of the blueprint ("2024 年年初前", "2021 年內", ...) as structured fields.

Used when the data files are written and by the tests that check them; the portal itself only
reads the stored ``Target`` records. ``date`` is the last day a target allows (the first day for
``from``), so measures can be sorted and flagged as overdue:

* no part: the whole calendar year; ``before`` (前) without a part means before that year began
  ("2050 年前" -> 2049-12-31).
* with a part, ``before`` and ``by`` both end with that part ("2024 年年初前", officially "by
  early 2024" -> 2024-03-31): early = Q1, mid = June, late = Q4.
* a financial year ("2017-18 年度", April to March) starts on 1 April of its first year.
* ``within`` counts whole years from the end of the publication year (December 2020).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

Relation = Literal["before", "by", "during", "from", "within"]
Part = Literal["early", "mid", "late", "first-half", "second-half", "q1", "q2", "q3", "q4"]

# (first month, last month) each part covers.
PART_MONTHS: dict[str, tuple[int, int]] = {
    "early": (1, 3),
    "mid": (6, 6),
    "late": (10, 12),
    "first-half": (1, 6),
    "second-half": (7, 12),
    "q1": (1, 3),
    "q2": (4, 6),
    "q3": (7, 9),
    "q4": (10, 12),
}
_PART_ZH = {"初": "early", "中": "mid", "底": "late", "末": "late"}
_QUARTERS = {"一": "q1", "二": "q2", "三": "q3", "四": "q4"}
_CN_DIGITS = {
    "一": 1,
    "兩": 2,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}

_YEAR_PHRASE = re.compile(
    r"^(?P<pre>自|於|在|已在|預計)?\s*"
    r"(?P<year>\d{4})(?:\s*-\s*(?P<fy>\d{2}))?\s*年(?P<fyflag>度)?\s*"
    r"(?:年?(?P<part>[初中底末])|(?P<half>[上下])半年|第(?P<q>[一二三四])季度?)?\s*"
    r"(?P<post>或之前|前|內|起|已開始|開始|完成|落成)?$"
)
_WITHIN_PHRASE = re.compile(r"^(?P<n>\d{1,2}|[一兩二三四五六七八九])\s*年內$")


class TargetPhraseError(ValueError):
    """The phrase is not one of the target forms the blueprint uses."""


@dataclass(frozen=True)
class ParsedTarget:
    relation: Relation
    year: int | None
    part: Part | None
    within_years: int | None
    date: dt.date
    financial_year: bool = False


def _month_end(year: int, month: int) -> dt.date:
    first_of_next = dt.date(year + month // 12, month % 12 + 1, 1)
    return first_of_next - dt.timedelta(days=1)


def target_date(
    relation: Relation,
    year: int | None,
    part: Part | None = None,
    *,
    within_years: int | None = None,
    financial_year: bool = False,
    published: dt.date = dt.date(2020, 12, 31),
) -> dt.date:
    """The last day a target allows (the first day for ``from``); see the module docstring."""
    if relation == "within":
        if within_years is None:
            raise TargetPhraseError("'within' needs within_years")
        return published.replace(year=published.year + within_years)
    if year is None:
        raise TargetPhraseError(f"{relation!r} needs a year")
    if financial_year:
        if part is not None:
            raise TargetPhraseError("a financial year takes no part")
        return dt.date(year, 4, 1) if relation == "from" else dt.date(year + 1, 3, 31)
    if part is None:
        if relation == "from":
            return dt.date(year, 1, 1)
        return dt.date(year - 1, 12, 31) if relation == "before" else dt.date(year, 12, 31)
    first, last = PART_MONTHS[part]
    return dt.date(year, first, 1) if relation == "from" else _month_end(year, last)


def parse_target(phrase: str) -> ParsedTarget:
    """Parse a target phrase as written in the blueprint, e.g. "2024 年年初前"."""
    text = phrase.strip()
    within = _WITHIN_PHRASE.match(text)
    if within:
        raw = within["n"]
        n = int(raw) if raw.isdigit() else _CN_DIGITS[raw]
        if n < 1:
            raise TargetPhraseError(f"not a target phrase: {phrase!r}")
        return ParsedTarget("within", None, None, n, target_date("within", None, within_years=n))
    m = _YEAR_PHRASE.match(text)
    if not m:
        raise TargetPhraseError(f"not a target phrase: {phrase!r}")
    year = int(m["year"])
    if not 2000 <= year <= 2100:  # the range ``Target.year`` accepts
        raise TargetPhraseError(f"year out of range: {phrase!r}")
    financial_year = m["fy"] is not None
    if financial_year and (int(m["fy"]) != (year + 1) % 100 or not m["fyflag"]):
        raise TargetPhraseError(f"not a financial year: {phrase!r}")
    part: Part | None = None
    if m["part"]:
        part = _PART_ZH[m["part"]]  # type: ignore[assignment]
    elif m["half"]:
        part = "first-half" if m["half"] == "上" else "second-half"
    elif m["q"]:
        part = _QUARTERS[m["q"]]  # type: ignore[assignment]
    if financial_year and part is not None:
        raise TargetPhraseError(f"a financial year takes no part: {phrase!r}")
    pre, post = m["pre"], m["post"]
    relation: Relation
    if post == "或之前" or post in ("完成", "落成"):
        relation = "by"
    elif post == "前":
        relation = "before"
    elif post == "內":
        relation = "during"
    elif post in ("起", "開始", "已開始") or pre == "自":
        relation = "from"
    elif pre == "於" and part is None:
        relation = "during"  # "於 2020 年推展": in the course of that year
    else:
        relation = "by"  # a bare year, "預計 2022 年", "在 2024 年年底"
    date = target_date(relation, year, part, financial_year=financial_year)
    return ParsedTarget(relation, year, part, None, date, financial_year)


def format_target_zh(
    relation: Relation, year: int | None, part: Part | None = None, within_years: int | None = None
) -> str:
    """The canonical phrase for a target; ``parse_target`` reads it back unchanged."""
    if relation == "within":
        return f"{within_years} 年內"
    part_zh = {
        None: "",
        "early": "年初",
        "mid": "年中",
        "late": "年底",
        "first-half": "上半年",
        "second-half": "下半年",
        "q1": "第一季",
        "q2": "第二季",
        "q3": "第三季",
        "q4": "第四季",
    }[part]
    suffix = {"before": "前", "by": "或之前", "during": "內", "from": "起"}[relation]
    return f"{year} 年{part_zh}{suffix}"
