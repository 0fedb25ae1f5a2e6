"""The status catalogue: what a measure's status may be, and the progress each one implies.

``blueprint load`` upserts it (migration 0005 seeds the same rows). ``ongoing`` is for the
blueprint's many "continue to ..." measures: in place and continuing, hence 100 %.
``suspended`` has no default: choosing it keeps the progress reached so far.
"""

from __future__ import annotations

from typing import Any

STATUSES: list[dict[str, Any]] = [
    {
        "code": "planned",
        "label": {"en": "Planned", "zh-Hant": "計劃中", "zh-Hans": "计划中"},
        "default_progress": 0.0,
        "ord": 1,
    },
    {
        "code": "in_progress",
        "label": {"en": "In progress", "zh-Hant": "進行中", "zh-Hans": "进行中"},
        "default_progress": 50.0,
        "ord": 2,
    },
    {
        "code": "completed",
        "label": {"en": "Completed", "zh-Hant": "已完成", "zh-Hans": "已完成"},
        "default_progress": 100.0,
        "ord": 3,
    },
    {
        "code": "ongoing",
        "label": {"en": "Ongoing", "zh-Hant": "持續推行", "zh-Hans": "持续推行"},
        "default_progress": 100.0,
        "ord": 4,
    },
    {
        "code": "suspended",
        "label": {"en": "Suspended", "zh-Hant": "暫停", "zh-Hans": "暂停"},
        "default_progress": None,
        "ord": 5,
    },
]
INITIAL_STATUS = "planned"
