"""Setting up the open data catalogue of the browser tests' shared server through its Action
API (the server runs with --no-auth, so every caller may write). Each module names its own
organisations and datasets and creates them only when they are not there yet, since the
modules share one server."""

from __future__ import annotations

from typing import Any

import httpx


def act(server: str, action: str, **data: Any) -> Any:
    """POST ``action`` with ``data`` as JSON; the action's result (the call must succeed)."""
    r = httpx.post(f"{server}/api/3/action/{action}", json=data, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["result"]


def exists(server: str, action: str, name: str) -> bool:
    """Whether ``action`` (``package_show``, ``organization_show``...) finds ``name``."""
    r = httpx.get(f"{server}/api/3/action/{action}", params={"id": name}, timeout=30)
    return r.status_code == 200
