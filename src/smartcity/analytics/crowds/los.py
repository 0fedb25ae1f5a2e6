"""Level of service of a crowd (Fruin) and the alert ladder built on it.

Fruin, J. J. (1971), *Pedestrian Planning and Design*, Metropolitan Association of Urban
Designers and Environmental Planners, New York: levels of service A-F for walkways (by space
per person and by flow per unit width) and for queueing (standing) areas. His thresholds are in
square feet per person and persons per foot of width per minute; the metric figures below are
those converted (1 ft² = 0.092903 m², 1 ft = 0.3048 m), as the Transit Capacity and Quality
of Service Manual and the Highway Capacity Manual reproduce them.

Walkways (people moving)::

    LOS  space m²/person (ft²)   flow people/m/min (people/ft/min)
    A    >= 3.25   (35)          <= 23  (7)
    B    2.32-3.25 (25-35)       23-33  (7-10)
    C    1.39-2.32 (15-25)       33-49  (10-15)
    D    0.93-1.39 (10-15)       49-66  (15-20)
    E    0.46-0.93 (5-10)        66-82  (20-25)
    F    < 0.46    (< 5)         > 82   (> 25, unstable)

Queueing and holding areas (people standing or milling: plazas, concourses, platforms)::

    LOS  space m²/person (ft²)
    A    >= 1.21 (13)
    B    0.93-1.21 (10-13)
    C    0.65-0.93 (7-10)
    D    0.28-0.65 (3-7)
    E    0.19-0.28 (2-3)
    F    < 0.19 (< 2)

A walkway's level is the worse of its density level and its flow level. The alert ladder
(the platform's, issue #13): advisory at LOS D, warning at LOS E, critical at LOS F, and
critical wherever 4 or more people per m² are moving, whatever the area's kind: beyond that
density a moving crowd can no longer keep its footing against pressure waves (Fruin 1993,
"The causes and prevention of crowd disasters"; Still, *Introduction to Crowd Science*, 2014).
"""

from __future__ import annotations

from enum import StrEnum

FT2 = 0.09290304  # m² per ft²
FT = 0.3048  # m per ft
# Space per person (m²) at the lower edge of A, B, C, D, E (below the last: F).
WALKWAY_SPACE = tuple(round(ft2 * FT2, 2) for ft2 in (35, 25, 15, 10, 5))  # 3.25 ... 0.46
QUEUE_SPACE = tuple(round(ft2 * FT2, 2) for ft2 in (13, 10, 7, 3, 2))  # 1.21 ... 0.19
# Flow (people per metre of width per minute) at the upper edge of A, B, C, D, E.
WALKWAY_FLOW = tuple(round(ppfm / FT) for ppfm in (7, 10, 15, 20, 25))  # 23 ... 82
LEVELS = "ABCDEF"
CRUSH_DENSITY = 4.0  # people/m², moving: critical
MOVING_SPEED = 0.05  # m/s: slower than this, the crowd is standing still


class Ladder(StrEnum):
    """The alert ladder, lowest first; ``none`` raises nothing."""

    none = "none"
    advisory = "advisory"
    warning = "warning"
    critical = "critical"


# Smart Data Models Alert severity for each rung.
SEVERITY = {Ladder.advisory: "medium", Ladder.warning: "high", Ladder.critical: "critical"}


def _by_space(space: float, edges: tuple[float, ...]) -> str:
    for level, edge in zip(LEVELS, edges, strict=False):
        if space >= edge - 1e-9:  # the edge itself belongs to the better level
            return level
    return "F"


def walkway_los(density: float, flow: float | None = None) -> str:
    """Fruin walkway LOS from density (people/m²) and, when known, flow (people/m/min)."""
    by_density = _by_space(_space(density), WALKWAY_SPACE)
    if flow is None:
        return by_density
    by_flow = next(
        (lv for lv, edge in zip(LEVELS, WALKWAY_FLOW, strict=False) if flow <= edge), "F"
    )
    return max(by_density, by_flow)  # "F" > "A": the worse one


def queue_los(density: float) -> str:
    """Fruin queueing (standing area) LOS from density (people/m²)."""
    return _by_space(_space(density), QUEUE_SPACE)


def ladder(los: str, density: float, speed: float | None) -> Ladder:
    """The rung for a zone at ``los`` with ``density`` people/m² moving at ``speed`` m/s (None:
    not measured, taken as moving: the safe side)."""
    moving = speed is None or speed >= MOVING_SPEED
    if los == "F" or (density >= CRUSH_DENSITY and moving):
        return Ladder.critical
    if los == "E":
        return Ladder.warning
    if los == "D":
        return Ladder.advisory
    return Ladder.none


def _space(density: float) -> float:
    if density < 0:
        raise ValueError(f"density cannot be negative: {density}")
    return float("inf") if density == 0 else 1.0 / density
