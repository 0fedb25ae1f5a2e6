"""Reading the evaluation's inputs: a wide CSV of speeds and an optional adjacency CSV.

Wide CSV: the first row holds sensor ids; each further row is one time step, one value per
sensor, in any speed unit; 0 (or an empty cell) means missing. There is no time column: the
first row of data is Monday 00:00 unless a start time is given.

Adjacency CSV: one directed road link per row, ``from,to[,weight]`` — traffic flows from
``from`` to ``to`` (so ``from`` is upstream of ``to``). A header row is optional (it is
recognised when its first two cells are not both sensor ids). Weight defaults to 1; links
naming unknown sensors are reported, not silently dropped.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np


class InputError(ValueError):
    """The input file is not in the expected shape; the message says what to fix."""


@dataclass(frozen=True)
class Series:
    ids: list[str]
    values: np.ndarray  # (T, N) float64, NaN = missing
    start: datetime  # time of row 0 (naive, local time)
    step: timedelta

    @property
    def slots_per_day(self) -> int:
        return max(1, round(86_400 / self.step.total_seconds()))

    def calendar(self, steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(slot of day, day of week 0=Monday) for each row (or for ``steps`` rows)."""
        n = self.values.shape[0] if steps is None else steps
        step_s = self.step.total_seconds()
        offset = (
            self.start - self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        ).total_seconds()
        seconds = offset + np.arange(n) * step_s
        slot = (seconds % 86_400 // step_s).astype(np.int64)
        weekday = ((seconds // 86_400).astype(np.int64) + self.start.weekday()) % 7
        return slot, weekday


_STEP = re.compile(r"^\s*(\d+)\s*(s|sec|min|m|h)?\s*$")


def parse_step(text: str) -> timedelta:
    m = _STEP.match(text)
    if not m:
        raise InputError(f"--step {text!r}: expected a duration such as 5min, 30s or 1h")
    n = int(m.group(1))
    unit = m.group(2) or "min"
    seconds = n * {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}[unit]
    if seconds <= 0 or 86_400 % seconds:
        raise InputError(f"--step {text!r}: the step must divide a day (e.g. 5min, 15min, 1h)")
    return timedelta(seconds=seconds)


def parse_start(text: str | None) -> datetime:
    if text is None:
        return datetime(2024, 1, 1)  # a Monday, 00:00
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"--start {text!r}: expected an ISO 8601 time, e.g. 2024-03-04T00:00"
        ) from None
    return dt.replace(tzinfo=None)


def read_wide_csv(path: Path, *, step: timedelta, start: datetime) -> Series:
    try:
        f = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    with f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise InputError(f"{path} is empty: the first row must hold the sensor ids")
        ids = [h.strip() for h in header]
        if ids and ids[0] == "" and len(ids) > 1:
            raise InputError(
                f"{path}: the first cell of the header is empty; remove any time column"
            )
        if len(set(ids)) != len(ids):
            raise InputError(f"{path}: sensor ids in the first row must be unique")
        rows: list[list[float]] = []
        for lineno, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(ids):
                raise InputError(
                    f"{path} line {lineno}: {len(row)} values for {len(ids)} sensors; each row "
                    "must have one value per sensor (no time column)"
                )
            try:
                rows.append([float(c) if c.strip() else 0.0 for c in row])
            except ValueError:
                bad = next(c for c in row if c.strip() and not _is_float(c))
                raise InputError(
                    f"{path} line {lineno}: {bad!r} is not a number (use 0 for missing)"
                ) from None
    if not rows:
        raise InputError(f"{path} has no rows of data after the sensor ids")
    values = np.asarray(rows, dtype=np.float64)
    values[(values == 0) | ~np.isfinite(values)] = np.nan
    return Series(ids, values, start, step)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_adjacency(path: Path, ids: list[str]) -> list[tuple[int, int, float]]:
    """Directed links (upstream index, downstream index, weight)."""
    index = {s: i for i, s in enumerate(ids)}
    try:
        f = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    links: list[tuple[int, int, float]] = []
    unknown: set[str] = set()
    with f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            cells = [c.strip() for c in row]
            if not cells or not any(cells):
                continue
            if len(cells) < 2:
                raise InputError(f"{path} line {lineno}: expected from,to[,weight]")
            a, b = cells[0], cells[1]
            if (
                lineno == 1
                and not (a in index and b in index)
                and a.lower() in ("from", "source", "src")
            ):
                continue  # header
            weight = 1.0
            if len(cells) > 2 and cells[2]:
                try:
                    weight = float(cells[2])
                except ValueError:
                    raise InputError(
                        f"{path} line {lineno}: weight {cells[2]!r} is not a number"
                    ) from None
            missing = {a, b} - index.keys()
            if missing:
                unknown |= missing
                continue
            if a != b and weight > 0:
                links.append((index[a], index[b], weight))
    if unknown:
        sample = ", ".join(sorted(unknown)[:5])
        raise InputError(
            f"{path}: {len(unknown)} sensor id(s) not in the wide CSV's first row ({sample}); "
            "fix the ids or remove those links"
        )
    return links
