"""Timestamps: ISO 8601 strings in documents, integer microseconds in indexed columns."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from smartcity.hub.errors import BadRequestData

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_MIN_US = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_US
_MAX_US = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // _ONE_US


def now_us() -> int:
    return time.time_ns() // 1000


def iso_from_us(us: int) -> str:
    dt = _EPOCH + timedelta(microseconds=us)  # exact, unlike fromtimestamp(us / 1e6)
    # Not strftime("%Y"): glibc does not zero-pad years below 1000.
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
        f"{dt.second:02d}.{dt.microsecond // 1000:03d}Z"
    )


def compact_iso_from_us(us: int) -> str:
    """A time the hub computed (an aggregation period, a Content-Range) as clients write
    them: no fraction for whole seconds (2020-08-01T12:00:00Z), else milliseconds, else
    microseconds, so that the text is exact."""
    text = iso_from_us(us)
    if us % 1_000_000 == 0:
        return f"{text[:19]}Z"
    if us % 1000:
        return f"{text[:-1]}{us % 1000:03d}Z"
    return text


# Seconds of canonical timestamps already parsed ("2026-11-26T08:00:00" -> microseconds).
# Instances written together share their seconds: parsing each observedAt in full was 4 % of
# the ingestion writer (py-spy).
_SECONDS: dict[str, int] = {}


def parse_datetime_us(value: object, *, field: str) -> int:
    """Parse an ISO 8601 date-time (with or without offset; naive means UTC) to microseconds."""
    if (
        isinstance(value, str)
        and len(value) == 24
        and value[19] == "."
        and value[23] == "Z"
        and value[20:23].isascii()
        and value[20:23].isdigit()
    ):  # the hub's own form, as iso_from_us writes it: the second's part is cached
        ms = int(value[20:23]) * 1000
        base = _SECONDS.get(value[:19])
        if base is None:
            base = _parse(value, field) - ms
            if len(_SECONDS) > 4096:
                _SECONDS.clear()
            _SECONDS[value[:19]] = base
        return base + ms
    return _parse(value, field)


def _parse(value: object, field: str) -> int:
    if not isinstance(value, str) or len(value) < 10 or len(value) > 64:
        raise BadRequestData(f"{field} must be an ISO 8601 date-time string, got {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequestData(
            f"{field} must be an ISO 8601 date-time such as 2026-11-26T08:00:00Z, got {value!r}"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        us = (dt - _EPOCH) // _ONE_US  # exact (a float timestamp drifts after year 2500)
    except (OverflowError, OSError, ValueError):
        raise BadRequestData(f"{field} is out of range: {value!r}") from None
    if not _MIN_US <= us <= _MAX_US:  # e.g. 0001-01-01T00:00:00+01:00, before year 1 in UTC
        raise BadRequestData(f"{field} is out of range: {value!r}")
    return us


def normalise_datetime(value: object, *, field: str) -> str:
    """Validate a date-time and return it in the hub's canonical UTC form."""
    return iso_from_us(parse_datetime_us(value, field=field))
