"""The action registry: each CKAN action's name, whether it only reads (GET allowed), its
help text, and the function that runs it. ``read_actions`` and ``write_actions`` register
theirs with ``@action``; later slices (DataStore ...) add modules of their own the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smartcity.opendata.catalogue.access import Principal
from smartcity.opendata.catalogue.service import Upload
from smartcity.opendata.languages import Lang
from smartcity.opendata.runtime import OpenData


@dataclass(frozen=True)
class Call:
    """One action call: who asks, in which language, at which address, with which file."""

    od: OpenData
    principal: Principal
    lang: Lang
    base_url: str
    upload: Upload | None = None


Handler = Callable[[Call, dict[str, Any]], Any]


@dataclass(frozen=True)
class Action:
    name: str
    handler: Handler
    read_only: bool  # CKAN's side_effect_free: may be called with GET
    help: str


ACTIONS: dict[str, Action] = {}


def action(*, read_only: bool) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        name = handler.__name__.rstrip("_")
        ACTIONS[name] = Action(name, handler, read_only, inspect.cleandoc(handler.__doc__ or ""))
        return handler

    return register


def find(name: str) -> Action | None:
    if not _loaded:
        load()
    return ACTIONS.get(name)


_loaded: list[bool] = []


def load() -> None:
    """Import the modules that register actions (once; importing one of them alone, as a
    test may, does not count as loading them all)."""
    _loaded.append(True)
    from smartcity.opendata.ckan import city_actions, read_actions, write_actions  # noqa: F401
    from smartcity.opendata.datastore import actions  # noqa: F401
