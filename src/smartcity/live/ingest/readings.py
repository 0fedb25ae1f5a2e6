"""A device's compact reading (``{"t": ..., "temperature": 21.5}``) -> attribute instances.

Rules, the same for HTTP and MQTT:

* ``t`` is an ISO 8601 date-time or epoch seconds (a number); without it the reading is placed
  at the time it arrived (such a reading cannot be de-duplicated if it is resent). Times keep
  millisecond precision, which is also the unit of the duplicate check (device + t).
* A reading more than ``MAX_FUTURE`` ahead of the hub's clock is refused: it would pin the
  latest value until the clock caught up.
* Keys the device's registration does not map are ignored (and reported), so firmware that adds
  a field keeps working. Values are JSON numbers, strings or booleans; ``scale``/``offset``
  apply to numbers only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from smartcity.hub.errors import BadRequestData
from smartcity.hub.text import NUL, NUL_HINT
from smartcity.hub.timeutil import iso_from_us, parse_datetime_us
from smartcity.live.devices.service import Device

MAX_FUTURE_US = 5 * 60 * 1_000_000
# Epoch seconds accepted for "t": 1970 .. 9999.
_MAX_EPOCH_S = 253_402_300_799


class Rejected(Exception):
    """A reading (or message) refused; ``reason`` is the metrics label, ``detail`` for people."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class Reading:
    device: Device
    t: int  # microseconds since the epoch, whole milliseconds
    observed_at: str  # t as the hub writes it
    values: dict[str, dict[str, Any]]  # attribute IRI -> instance (stored layout)
    ignored: list[str] = field(default_factory=list)
    received: int = 0  # when it arrived (microseconds), for the latency figures


_SECONDS: dict[int, str] = {}


def _iso(t: int) -> str:
    """iso_from_us for whole milliseconds, with the date and time of each second cached
    (readings arrive in bursts within the same seconds; formatting was ~8% of the MQTT thread)."""
    second, ms = divmod(t // 1000, 1000)
    prefix = _SECONDS.get(second)
    if prefix is None:
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        prefix = _SECONDS[second] = iso_from_us(second * 1_000_000)[:-5]
    return f"{prefix}.{ms:03d}Z"


def parse_time(raw: Any, now: int) -> int:
    if raw is None:
        t = now
    elif isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise Rejected("bad_timestamp", "t must be an ISO 8601 date-time or epoch seconds")
    elif isinstance(raw, str):
        try:
            t = parse_datetime_us(raw, field="t")
        except BadRequestData as exc:
            raise Rejected("bad_timestamp", exc.detail) from None
    else:
        if not math.isfinite(raw) or not 0 <= raw <= _MAX_EPOCH_S:
            raise Rejected("bad_timestamp", f"t {raw!r} is not epoch seconds between 1970 and 9999")
        t = round(raw * 1000) * 1000
    t -= t % 1000
    if t > now + MAX_FUTURE_US:
        raise Rejected(
            "future_timestamp",
            f"t {iso_from_us(t)} is more than 5 minutes ahead of the hub's clock "
            f"({iso_from_us(now)}); check the device's clock",
        )
    if t < 0:
        raise Rejected("bad_timestamp", "t is before 1970")
    return t


def parse_reading(device: Device, raw: Any, now: int) -> Reading:
    if not isinstance(raw, dict):
        raise Rejected("malformed", 'a reading must be a JSON object such as {"t": ..., ...}')
    t = parse_time(raw.get("t"), now)
    observed_at = _iso(t)
    values: dict[str, dict[str, Any]] = {}
    ignored: list[str] = []
    for key, value in raw.items():
        if key == "t" or key == "key":
            continue
        m = device.attributes.get(key)
        if m is None:
            ignored.append(key)
            continue
        if isinstance(value, bool | str):
            if m.scale is not None or m.offset is not None:
                raise Rejected("bad_value", f"{key} must be a number (it has a scale/offset)")
            if isinstance(value, str) and len(value) > 1024:
                raise Rejected("bad_value", f"{key} is longer than 1024 characters")
            if isinstance(value, str) and NUL in value:
                raise Rejected("bad_value", f"{key} holds {NUL_HINT}")
        elif isinstance(value, int | float):
            if not math.isfinite(value):
                raise Rejected("bad_value", f"{key} must be a finite number")
            if m.scale is not None:
                value = value * m.scale
            if m.offset is not None:
                value = value + m.offset
        else:
            raise Rejected(
                "bad_value",
                f"{key} must be a number, string or boolean, got {type(value).__name__}",
            )
        inst: dict[str, Any] = {"type": "Property", "value": value, "observedAt": observed_at}
        if m.unit_code is not None:
            inst["unitCode"] = m.unit_code
        values[m.iri] = inst
    if not values:
        known = ", ".join(sorted(device.attributes))
        raise Rejected("no_values", f"the reading has none of the device's keys ({known})")
    return Reading(device, t, observed_at, values, ignored, now)
