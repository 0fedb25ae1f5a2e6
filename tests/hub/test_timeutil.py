"""Timestamps: the canonical form round-trips exactly, and the cached fast path agrees with
the full parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcity.hub.errors import BadRequestData
from smartcity.hub.timeutil import _parse, compact_iso_from_us, iso_from_us, parse_datetime_us

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
whole_ms = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).map(lambda dt: (dt - EPOCH) // timedelta(milliseconds=1) * 1000)


@given(whole_ms)
def test_canonical_form_round_trips_exactly(us: int) -> None:
    text = iso_from_us(us)
    assert parse_datetime_us(text, field="t") == us  # fills the cache of seconds
    assert parse_datetime_us(text, field="t") == us  # from the cache
    assert _parse(text, "t") == us


any_us = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).map(lambda dt: (dt - EPOCH) // timedelta(microseconds=1))


@given(any_us)
def test_compact_form_is_exact_and_as_short_as_it_can_be(us: int) -> None:
    # Computed times (aggregation periods, Content-Range) are written as clients write them.
    text = compact_iso_from_us(us)
    assert parse_datetime_us(text, field="t") == us
    fraction = text[20:-1] if text[19] == "." else ""
    assert len(fraction) in (0, 3, 6)
    assert (us % 1_000_000 == 0) == (fraction == "")
    assert (len(fraction) == 6) == (us % 1000 != 0)


@given(whole_ms, st.integers(0, 999))
def test_cached_seconds_serve_other_milliseconds(us: int, ms: int) -> None:
    text = iso_from_us(us)
    parse_datetime_us(text, field="t")
    other = f"{text[:20]}{ms:03d}Z"
    assert parse_datetime_us(other, field="t") == _parse(other, "t")


def test_far_future_is_exact() -> None:  # a float timestamp would be off by a millisecond
    assert parse_datetime_us("6006-01-07T17:49:48.739Z", field="t") == 127364464188739000
    assert iso_from_us(127364464188739000) == "6006-01-07T17:49:48.739Z"


@pytest.mark.parametrize(
    "bad",
    [
        "2026-11-26T08:00:00.1²3Z",  # a digit, but not an ASCII one
        "2026-13-26T08:00:00.123Z",
        "2026-11-26T08:00:61.123Z",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "yesterday",
        20261126,
    ],
)
def test_bad_values_are_refused(bad: object) -> None:
    with pytest.raises(BadRequestData):
        parse_datetime_us(bad, field="t")
