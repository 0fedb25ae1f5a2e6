"""The site's main navigation. Features add their item at import time (e.g. the dashboard)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


def N_(message: str) -> str:
    """Marks a string for extraction; templates translate it when they render it."""
    return message


@dataclass(frozen=True)
class NavItem:
    key: str  # pages pass ``nav_key`` to mark their item with aria-current
    path: str  # path after the language prefix, e.g. "/search"
    label: str  # msgid, translated in the template
    order: int
    # The registering feature's ``locale`` folder: its label is translated from there on every
    # page, whichever feature renders it (another feature's catalogue does not have it).
    locale_dir: Path | None = None


NAV: list[NavItem] = [
    NavItem("home", "/", N_("Home"), 10),
    NavItem("areas", "/areas", N_("Areas"), 20),
    NavItem("new", "/new", N_("New measures"), 30),
    NavItem("kpis", "/kpis", N_("Key figures"), 40),
    NavItem("search", "/search", N_("Search"), 60),
    NavItem("about", "/about", N_("About and privacy"), 90),
]


def register(item: NavItem) -> None:
    """Add (or replace, by key) a navigation item."""
    NAV[:] = sorted([i for i in NAV if i.key != item.key] + [item], key=lambda i: i.order)
