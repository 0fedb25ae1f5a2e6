"""Helpers of the open data tests (fixtures are in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from smartcity.config import OpenDataSettings, Settings
from smartcity.storage.engine import Database

Act = Callable[..., dict[str, Any]]


def open_settings(db: Database, tmp_path: Path, *, auth: bool, **opendata: Any) -> Settings:
    return Settings(
        database_url=db.url,
        auth_required=auth,
        opendata=OpenDataSettings(data_dir=tmp_path / "opendata", **opendata),
    )


def make_act(client: TestClient, prefix: str = "", headers: dict[str, str] | None = None) -> Act:
    """``act("package_show", id="x")`` → the envelope, after checking the status (200 unless
    ``_status=`` says otherwise)."""

    def act(_action: str, _status: int = 200, **data: Any) -> dict[str, Any]:
        response = client.post(f"{prefix}/api/3/action/{_action}", json=data, headers=headers)
        body: dict[str, Any] = response.json()
        assert response.status_code == _status, body
        assert body["success"] is (_status == 200), body
        return body

    return act


def trilingual(en: str, tc: str, sc: str) -> dict[str, str]:
    return {"en": en, "zh-Hant": tc, "zh-Hans": sc}
