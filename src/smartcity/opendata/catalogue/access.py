"""Who may see and change what: CKAN's rules, with the platform's API keys as users.

A request acts as a *principal*: anonymous, or the user named by its API key (the name given
to ``smartcity keys create``). A user's role in each organisation is ``member`` (sees the
organisation's private datasets), ``editor`` (also creates and edits its datasets) or
``admin`` (also edits the organisation and its members); sysadmins may do everything.
Under ``serve --no-auth`` every request is a sysadmin, as every write is allowed there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from smartcity.opendata.catalogue import tables as t
from smartcity.opendata.errors import NotAuthorized

RANK = {"member": 1, "editor": 2, "admin": 3}


@dataclass(frozen=True)
class Principal:
    name: str | None  # the user; None: anonymous
    sysadmin: bool = False
    roles: Mapping[str, str] = field(default_factory=dict)  # organisation id → capacity
    can_write: bool = True  # False for a read-only key
    actor: str = "anonymous"  # who the audit trail names

    @property
    def anonymous(self) -> bool:
        return self.name is None and not self.sysadmin

    def role_in(self, organisation_id: str) -> str | None:
        return "admin" if self.sysadmin else self.roles.get(organisation_id)

    def has_role(self, organisation_id: str, capacity: str) -> bool:
        role = self.role_in(organisation_id)
        return role is not None and RANK[role] >= RANK[capacity]

    def reads_private_of(self) -> frozenset[str] | None:
        """The organisations whose private datasets this principal sees; None: all."""
        return None if self.sysadmin else frozenset(self.roles)

    def may_see(self, owner_org: str, state: str, private: bool) -> bool:
        if self.sysadmin:
            return True
        if state == "deleted":
            return False
        if state == "draft":
            return self.has_role(owner_org, "editor")
        return not private or self.has_role(owner_org, "member")

    def require(self, organisation_id: str, capacity: str, what: str) -> None:
        """Raise NotAuthorized unless this principal is ``capacity`` or above there."""
        self.require_writer(what)
        if not self.has_role(organisation_id, capacity):
            who = self.name or "an anonymous user"
            raise NotAuthorized(
                f"{who} may not {what}: it needs the role {capacity} (or admin) in the "
                "organization; an organization admin can grant it with "
                "organization_member_create"
                if self.name
                else f"{who} may not {what}: send an API key (Authorization: <key>)"
            )

    def require_sysadmin(self, what: str) -> None:
        self.require_writer(what)
        if not self.sysadmin:
            raise NotAuthorized(
                f"{self.name or 'an anonymous user'} may not {what}: only sysadmins may "
                "(smartcity opendata sysadmin add NAME)"
            )

    def require_writer(self, what: str) -> None:
        if self.name is None and not self.sysadmin:
            raise NotAuthorized(
                f"you may not {what} without an API key: send 'Authorization: <key>'"
            )
        if not self.can_write:
            raise NotAuthorized(f"the API key is read-only: it may not {what}")


NO_AUTH = Principal(None, sysadmin=True, actor="anonymous (--no-auth)")
ANONYMOUS = Principal(None)


def principal_for(conn: Connection, name: str, *, can_write: bool, actor: str) -> Principal:
    """The principal of the user ``name`` (an API key's name), with its roles."""
    sysadmin = conn.execute(
        select(t.users.c.sysadmin).where(t.users.c.name == name)
    ).scalar_one_or_none()
    roles = {
        row.organisation_id: row.capacity
        for row in conn.execute(
            select(t.members.c.organisation_id, t.members.c.capacity).where(
                t.members.c.user_name == name
            )
        )
    }
    return Principal(name, bool(sysadmin), roles, can_write, actor)
