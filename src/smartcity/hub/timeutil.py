"""Timestamps: ISO 8601 strings in documents, integer microseconds in indexed columns."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from smartcity.hub.errors import BadRequestData


def now_us() -> int:
    return time.time_ns() // 1000


def iso_from_us(us: int) -> str:
    dt = datetime.fromtimestamp(us / 1_000_000, tz=UTC)
    # Not strftime("%Y"): glibc does not zero-pad years below 1000.
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
        f"{dt.second:02d}.{dt.microsecond // 1000:03d}Z"
    )


def parse_datetime_us(value: object, *, field: str) -> int:
    """Parse an ISO 8601 date-time (with or without offset; naive means UTC) to microseconds."""
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
        return int(dt.timestamp() * 1_000_000)
    except (OverflowError, OSError, ValueError):
        raise BadRequestData(f"{field} is out of range: {value!r}") from None


def normalise_datetime(value: object, *, field: str) -> str:
    """Validate a date-time and return it in the hub's canonical UTC form."""
    return iso_from_us(parse_datetime_us(value, field=field))
