"""A portal account as the rest of the portal sees it (never with its password hash)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict

Role = Literal["admin", "editor", "moderator"]
ROLES: tuple[Role, ...] = ("admin", "editor", "moderator")


class User(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    username: str
    role: Role
    department: str | None = None  # organisation code; editors may only edit its measures
    display_name: str | None = None
    active: bool = True
    created_at: dt.datetime

    @property
    def name(self) -> str:
        """What to show: the display name, else the username."""
        return self.display_name or self.username

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
