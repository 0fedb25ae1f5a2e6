"""Deterministic randomness: every random number is a hash of (seed, what, when).

The simulator never keeps a random generator's state between readings: a value is a pure
function of the seed, the device and the simulated time, so the same seed always gives the
same readings, whatever the rate, the order of sending or a restart in the middle.
"""

from __future__ import annotations

import math

_MASK = (1 << 64) - 1


def mix(*parts: int) -> int:
    """SplitMix64 over the parts: a well-spread 64-bit hash of a tuple of integers."""
    h = 0x9E3779B97F4A7C15
    for part in parts:
        h = (h ^ (part & _MASK)) & _MASK
        h = (h + 0x9E3779B97F4A7C15) & _MASK
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK
        h ^= h >> 31
    return h


def unit(*parts: int) -> float:
    """A uniform number in [0, 1)."""
    return (mix(*parts) >> 11) / float(1 << 53)


def signed(*parts: int) -> float:
    """A uniform number in [-1, 1)."""
    return unit(*parts) * 2.0 - 1.0


def smooth(t_s: float, period_s: float, *parts: int) -> float:
    """Value noise in [-1, 1] that drifts smoothly over ``period_s`` (weather fronts, haze)."""
    x = t_s / period_s
    i = math.floor(x)
    f = x - i
    a = signed(*parts, i)
    b = signed(*parts, i + 1)
    w = (1 - math.cos(math.pi * f)) / 2
    return a + (b - a) * w


def name_key(text: str) -> int:
    """A stable integer for a string (Python's hash() is salted per process)."""
    h = 1469598103934665603
    for byte in text.encode():
        h = ((h ^ byte) * 1099511628211) & _MASK
    return h
