"""The status catalogue as database rows: the city's ``data/statuses.yaml`` (blueprint model
``Status``), which ``blueprint load`` upserts (migration 0005 seeded the same first rows).

``INITIAL_STATUS`` is where a measure starts when nothing says otherwise (a measure added by
``blueprint import``, or a seeded status the city's catalogue does not have).
"""

from __future__ import annotations

from typing import Any

from smartcity.portal.blueprint.model import Blueprint

INITIAL_STATUS = "planned"


def status_rows(blueprint: Blueprint) -> list[dict[str, Any]]:
    return [
        {
            "code": s.code,
            "label": s.label.model_dump(by_alias=True),
            "default_progress": s.default_progress,
            "ord": i,
        }
        for i, s in enumerate(blueprint.statuses, 1)
    ]


def initial_status(codes: list[str]) -> str:
    """The catalogue's starting status: ``planned`` if it has one, else its first."""
    return INITIAL_STATUS if INITIAL_STATUS in codes or not codes else codes[0]
