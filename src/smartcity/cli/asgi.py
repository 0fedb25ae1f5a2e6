"""The app factory uvicorn imports in each worker (settings come from the environment)."""

from __future__ import annotations

import os

from fastapi import FastAPI

from smartcity.app import create_app
from smartcity.config import Settings


def app() -> FastAPI:
    auth = os.environ.get("SMARTCITY_AUTH", "1") != "0"
    return create_app(Settings.from_env(auth_required=auth))
