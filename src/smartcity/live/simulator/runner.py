"""The simulator's loop: a deterministic schedule of readings, paced by a token bucket.

Reading k goes to device ``order[k % N]`` (a seeded shuffle of the fleet) with simulated time
``start + k * speed / rate``: the sequence of readings depends only on (seed, devices, rate,
speed, start), never on how fast they could be sent. The token bucket decides only *when*
each one is sent: at most ``rate`` per second on average, with bursts of at most ``burst``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from smartcity.hub.timeutil import iso_from_us, now_us
from smartcity.live.simulator.models import CityModel
from smartcity.live.simulator.places import SimDevice, sending_order
from smartcity.live.simulator.publishers import Credentials, Publisher

# The hub refuses readings more than 5 minutes ahead of its clock: stop a fast clock before.
FUTURE_MARGIN_US = 4 * 60 * 1_000_000


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; starts empty, so over any
    interval of t seconds at most ``burst + rate * t`` tokens are handed out."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate * 0.05)
        self.clock = clock
        self.tokens = 0.0
        self.last = clock()

    def take(self, most: int) -> int:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        n = min(most, int(self.tokens))
        self.tokens -= n
        return n

    def wait_time(self) -> float:
        """Seconds until the next token."""
        return max(0.0, (1.0 - self.tokens) / self.rate)


@dataclass
class Schedule:
    fleet: list[SimDevice]
    seed: int
    rate: float
    speed: float
    start_us: int
    order: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.order = sending_order(len(self.fleet), self.seed)

    def at(self, k: int) -> tuple[SimDevice, int]:
        """The device and simulated time (microseconds, whole milliseconds) of reading k."""
        device = self.fleet[self.order[k % len(self.fleet)]]
        offset_ms = math.floor(k * self.speed * 1000 / self.rate)
        return device, self.start_us + offset_ms * 1000


def readings(
    schedule: Schedule, model: CityModel, first: int, count: int
) -> Iterator[tuple[SimDevice, dict[str, Any]]]:
    """Readings first..first+count-1 as (device, payload); the payload is what a device sends."""
    for k in range(first, first + count):
        device, t_us = schedule.at(k)
        yield device, {"t": iso_from_us(t_us), **model.reading(device, t_us)}


@dataclass
class Progress:
    produced: int
    simulated_us: int
    elapsed_s: float
    sent: int
    acked: int
    failed: int
    pending: int
    finished: str | None = None  # why the run ended, once it has


def run(
    schedule: Schedule,
    model: CityModel,
    credentials: dict[int, Credentials],
    publisher: Publisher,
    *,
    stop: threading.Event,
    duration_s: float | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    every_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
) -> Progress:
    """Send readings until ``duration_s`` worth of them (rate x duration) went out, the
    simulated clock catches up with the present, or ``stop`` is set."""
    bucket = TokenBucket(schedule.rate, clock=clock)
    limit = math.floor(schedule.rate * duration_s) if duration_s is not None else None
    began = clock()
    k = 0
    reason = "stopped"
    last_report = began

    def progress(finished: str | None = None) -> Progress:
        stats = publisher.stats
        _, t_us = schedule.at(max(0, k - 1))
        return Progress(
            k,
            t_us,
            clock() - began,
            stats.sent,
            stats.acked,
            sum(stats.failed.values()),
            publisher.pending(),
            finished,
        )

    while not stop.is_set():
        if limit is not None and k >= limit:
            reason = "duration reached"
            break
        if schedule.at(k)[1] > now_us() + FUTURE_MARGIN_US:
            reason = "the simulated clock reached the present"
            break
        want = 1024 if limit is None else min(1024, limit - k)
        n = bucket.take(want)
        if n == 0:
            stop.wait(min(bucket.wait_time(), 0.05))
        for device, payload in readings(schedule, model, k, n):
            publisher.send(credentials[device.index], payload)
        k += n
        if on_progress is not None and clock() - last_report >= every_s:
            last_report = clock()
            on_progress(progress())
    publisher.flush(10.0)
    final = progress(reason)
    if on_progress is not None:
        on_progress(final)
    return final
