"""The blueprint shipped with the package: ``data/blueprint.yaml`` plus ``data/areas/<id>.yaml``.

Read once (``functools.cache``) from package data, so it works from a wheel or an editable install
and never needs the source PDF text. ``check_consistency`` enforces what the Pydantic models
cannot see on their own: ids unique across the whole blueprint, measures pointing at strategies
of their own area, owners naming known organisations.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import yaml
from pydantic import ValidationError

from smartcity.portal.blueprint.model import AREAS, Area, Blueprint, Kpi, Measure


class BlueprintDataError(ValueError):
    """The shipped blueprint data is malformed or inconsistent."""


def _data_root() -> Traversable:
    return resources.files("smartcity.portal.blueprint") / "data"


def _read_yaml(path: Traversable, name: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BlueprintDataError(f"blueprint data file missing: {name}") from None
    except yaml.YAMLError as exc:
        raise BlueprintDataError(f"{name}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise BlueprintDataError(f"{name}: expected a mapping at the top level")
    return data


def _read_statuses(root: Traversable) -> dict[str, Any]:
    """The city's status catalogue: ``statuses.yaml`` (``statuses: [...]``), if it has one."""
    if not (root / "statuses.yaml").is_file():
        return {}
    data = _read_yaml(root / "statuses.yaml", "statuses.yaml")
    statuses = data.get("statuses")
    if not isinstance(statuses, list):
        raise BlueprintDataError("statuses.yaml: expected 'statuses:' with a list of statuses")
    return {"statuses": statuses}


def read_blueprint(root: Traversable | None = None) -> Blueprint:
    """Read and check the data under ``root`` (default: the package's ``data`` folder)."""
    root = root or _data_root()
    top = _read_yaml(root / "blueprint.yaml", "blueprint.yaml")
    if "areas" in top:
        raise BlueprintDataError(
            "blueprint.yaml: 'areas' comes from areas/<id>.yaml, not from here"
        )
    areas: list[Area] = []
    for area_id in AREAS:
        name = f"areas/{area_id}.yaml"
        raw = _read_yaml(root / "areas" / f"{area_id}.yaml", name)
        try:
            area = Area.model_validate(raw)
        except ValidationError as exc:
            raise BlueprintDataError(f"{name}: {exc}") from exc
        if area.id != area_id:
            raise BlueprintDataError(f"{name}: holds area {area.id!r}")
        areas.append(area)
    try:
        blueprint = Blueprint.model_validate({**top, "areas": areas, **_read_statuses(root)})
    except ValidationError as exc:
        raise BlueprintDataError(f"blueprint.yaml: {exc}") from exc
    check_consistency(blueprint)
    return blueprint


def check_consistency(blueprint: Blueprint) -> None:
    """Raise ``BlueprintDataError`` listing every cross-reference problem found."""
    problems: list[str] = []
    if [a.id for a in blueprint.areas] != list(AREAS):
        problems.append(f"areas must be {list(AREAS)} in that order")
    for expected, area in enumerate(blueprint.areas, 1):
        if area.order != expected:
            problems.append(f"area {area.id}: order {area.order}, expected {expected}")

    ids: list[str] = []
    codes = [o.code for o in blueprint.organisations]
    ids_seen_codes = {c for c, n in Counter(codes).items() if n > 1}
    problems += [f"organisation {c!r} listed more than once" for c in sorted(ids_seen_codes)]
    known_codes = set(codes)
    for area in blueprint.areas:
        strategies = {s.id for s in area.strategies}
        ids += [s.id for s in area.strategies]
        for s in area.strategies:
            if not s.id.startswith(f"{area.id}-s"):
                problems.append(f"strategy {s.id} is filed under area {area.id}")
        for m in area.measures:
            ids.append(m.id)
            if m.area != area.id or not re.fullmatch(rf"{area.id}-\d{{2,3}}", m.id):
                problems.append(f"measure {m.id} (area {m.area}) is filed under area {area.id}")
            if m.strategy not in strategies:
                problems.append(f"measure {m.id}: strategy {m.strategy!r} is not in area {area.id}")
            problems += [
                f"measure {m.id}: owner {o!r} is not in organisations"
                for o in m.owners
                if o not in known_codes
            ]
            if len(set(m.owners)) != len(m.owners):
                problems.append(f"measure {m.id}: an owner is listed twice")
        for k in area.kpis:
            ids.append(k.id)
            if k.area != area.id or not k.id.startswith(f"{area.id}-k"):
                problems.append(f"kpi {k.id} (area {k.area}) is filed under area {area.id}")
    problems += [f"id {i!r} is used {n} times" for i, n in Counter(ids).items() if n > 1]
    status_codes = [s.code for s in blueprint.statuses]
    problems += [
        f"status {c!r} listed more than once" for c, n in Counter(status_codes).items() if n > 1
    ]
    problems += [
        f"measure {m.id}: status {m.status!r} is not in statuses.yaml"
        for a in blueprint.areas
        for m in a.measures
        if m.status is not None and m.status not in status_codes
    ]
    if problems:
        raise BlueprintDataError("blueprint data is inconsistent:\n  " + "\n  ".join(problems))


@functools.cache
def load_blueprint() -> Blueprint:
    """The shipped blueprint, validated and checked; read once per process."""
    return read_blueprint()


def area(area_id: str) -> Area:
    for a in load_blueprint().areas:
        if a.id == area_id:
            return a
    raise KeyError(f"no blueprint area {area_id!r}")


def measures() -> list[Measure]:
    """Every measure, area by area in document order."""
    return [m for a in load_blueprint().areas for m in a.measures]


@functools.cache
def _measures_by_id() -> dict[str, Measure]:
    return {m.id: m for m in measures()}


def measure(measure_id: str) -> Measure:
    try:
        return _measures_by_id()[measure_id]
    except KeyError:
        raise KeyError(f"no blueprint measure {measure_id!r}") from None


def kpis() -> list[Kpi]:
    """Every current-situation figure, area by area in document order."""
    return [k for a in load_blueprint().areas for k in a.kpis]
