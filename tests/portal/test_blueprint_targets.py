"""Target phrases ("2024 年年初前", "2021 年內", ...) parsed into relation, year, part and date."""

from __future__ import annotations

import datetime as dt
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcity.portal.blueprint.targets import (
    Part,
    Relation,
    TargetPhraseError,
    format_target_zh,
    parse_target,
    target_date,
)


@pytest.mark.parametrize(
    ("phrase", "relation", "year", "part", "date"),
    [
        ("2024 年年初前", "before", 2024, "early", "2024-03-31"),
        ("2021 年內", "during", 2021, None, "2021-12-31"),
        ("於 2022 年或之前", "by", 2022, None, "2022-12-31"),
        ("2022 年完成", "by", 2022, None, "2022-12-31"),
        ("於2022年中前", "before", 2022, "mid", "2022-06-30"),
        ("在 2024 年年底", "by", 2024, "late", "2024-12-31"),
        ("預計2022年", "by", 2022, None, "2022-12-31"),
        ("於 2020 年", "during", 2020, None, "2020-12-31"),
        ("2030年", "by", 2030, None, "2030-12-31"),
        ("2050年前", "before", 2050, None, "2049-12-31"),
        ("已在2018年開始", "from", 2018, None, "2018-01-01"),
        ("自2017-18年度起", "from", 2017, None, "2017-04-01"),
        ("2018-19 年度已開始", "from", 2018, None, "2018-04-01"),
        ("2023 年下半年", "by", 2023, "second-half", "2023-12-31"),
        ("2023 年第一季內", "during", 2023, "q1", "2023-03-31"),
    ],
)
def test_blueprint_phrases(
    phrase: str, relation: str, year: int, part: str | None, date: str
) -> None:
    parsed = parse_target(phrase)
    assert (parsed.relation, parsed.year, parsed.part, parsed.date.isoformat()) == (
        relation,
        year,
        part,
        date,
    )


def test_within_years_counts_from_publication() -> None:
    parsed = parse_target("3 年內")
    assert (parsed.relation, parsed.within_years, parsed.date) == (
        "within",
        3,
        dt.date(2023, 12, 31),
    )
    assert parse_target("兩年內").within_years == 2


@pytest.mark.parametrize(
    "phrase",
    [
        "",
        "明年",
        "2024",
        "0000 年",
        "2101 年前",
        "2024 年年初後",
        "2017-19 年度起",
        "2017-18 年度上半年",
        "0 年內",
    ],
)
def test_other_phrases_are_rejected(phrase: str) -> None:
    with pytest.raises(TargetPhraseError):
        parse_target(phrase)


relations = st.sampled_from(["before", "by", "during", "from"])
parts = st.none() | st.sampled_from(get_args(Part))


@given(relation=relations, year=st.integers(2000, 2100), part=parts)
def test_canonical_phrase_round_trips(relation: Relation, year: int, part: Part | None) -> None:
    parsed = parse_target(format_target_zh(relation, year, part))
    assert (parsed.relation, parsed.year, parsed.part) == (relation, year, part)
    assert parsed.date == target_date(relation, year, part)


@given(year=st.integers(2000, 2100), part=parts)
def test_dates_fall_where_the_words_say(year: int, part: Part | None) -> None:
    start = target_date("from", year, part)
    end = target_date("by", year, part)
    assert start.year == end.year == year and start <= end
    assert target_date("during", year, part) == end
    before = target_date("before", year, part)
    assert before == (dt.date(year - 1, 12, 31) if part is None else end)


@given(st.text(max_size=12) | st.from_regex(r"[自於在]?\d{4}(-\d\d)? ?年度?.{0,4}", fullmatch=True))
def test_parser_never_fails_unexpectedly(phrase: str) -> None:
    try:
        parsed = parse_target(phrase)
    except TargetPhraseError:
        return
    assert parsed.relation in get_args(Relation)
