"""EntityMaps (clauses 4.21, 5.2.39, 5.14): which entities a query found, and where.

A client asks for one with ``entityMap=true`` on Query Entities (or Retrieve Entity): the hub
stores the map of every entity the query selects (up to ``MAX_MAPPED``) to where it is held,
``"@none"`` for the hub itself and the registration ids of the context sources that
answered for it, and names it in the ``NGSILD-EntityMap`` response header. Later requests of
the same query (the next pages) send that header back: the hub then reads only the entities
of the map, so entities created or changed to match meanwhile do not shift the pages, and only
the sources the map names are asked.

Maps live in the database (table ``entity_maps``), so every server process reads the same;
they expire ``DEFAULT_LIFETIME_US`` after their creation unless PATCHed with a later
``expiresAt``, and expired ones are deleted as new ones are made.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, insert, select, update

from smartcity.hub.errors import BadRequestData, ResourceNotFound
from smartcity.hub.timeutil import iso_from_us, now_us, parse_datetime_us
from smartcity.storage import schema
from smartcity.storage.engine import Database

Doc = dict[str, Any]
LOCAL = "@none"
DEFAULT_LIFETIME_US = 3600 * 1_000_000  # an hour: long enough to page through a result
MAX_MAPPED = 10_000  # entities per map: a map is read back as one id list
PREFIX = "urn:ngsi-ld:EntityMap:"
HEADER = "NGSILD-EntityMap"
PATH = "/ngsi-ld/v1/entityMap/"
T = schema.entity_maps


@dataclass(frozen=True)
class EntityMap:
    id: str
    expires_at: int
    entities: dict[str, list[str]]  # entity id -> ["@none"] and/or registration ids
    linked: dict[str, str]  # registration id -> the source's own EntityMap (none kept here)

    def local_ids(self) -> list[str]:
        return [e for e, where in self.entities.items() if LOCAL in where]

    def registrations(self) -> set[str]:
        return {r for where in self.entities.values() for r in where if r != LOCAL}

    def render(self) -> Doc:
        return {
            "id": self.id,
            "type": "EntityMap",
            "expiresAt": iso_from_us(self.expires_at),
            "entityMap": self.entities,
            "linkedMaps": self.linked,
        }


def location(map_id: str) -> str:
    return PATH + map_id


def map_id_of_header(value: str) -> str:
    """The map an ``NGSILD-EntityMap`` request header names: its id or its location."""
    text = value.strip()
    if PATH in text:
        text = text.split(PATH, 1)[1]
    if not text.startswith(PREFIX):
        raise BadRequestData(
            f"{HEADER} must name an EntityMap this hub returned ({PATH}{PREFIX}...), got {value!r}"
        )
    return text


class EntityMapService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, tenant: str, entities: Iterable[tuple[str, str]]) -> EntityMap:
        """A new map of (entity id, where) pairs, in the order the query found them."""
        mapped: dict[str, list[str]] = {}
        for entity_id, where in entities:
            places = mapped.setdefault(entity_id, [])
            if where not in places:
                places.append(where)
        if len(mapped) > MAX_MAPPED:
            raise BadRequestData(
                f"the query selects {len(mapped)} entities; an EntityMap holds at most "
                f"{MAX_MAPPED}: narrow the query or leave entityMap out"
            )
        now = now_us()
        found = EntityMap(f"{PREFIX}{uuid.uuid4()}", now + DEFAULT_LIFETIME_US, mapped, {})
        doc = {"entityMap": found.entities, "linkedMaps": found.linked}
        with self.db.write() as conn:
            conn.execute(delete(T).where(T.c.expires_at <= now))
            conn.execute(
                insert(T).values(
                    tenant=tenant,
                    map_id=found.id,
                    doc=doc,
                    created_at=now,
                    expires_at=found.expires_at,
                )
            )
        return found

    def get(self, tenant: str, map_id: str) -> EntityMap:
        with self.db.read() as conn:
            row = conn.execute(
                select(T.c.doc, T.c.expires_at).where(self._live(tenant, map_id))
            ).first()
        if row is None:
            raise ResourceNotFound(
                f"EntityMap {map_id} does not exist or has expired; run the query again "
                "without the NGSILD-EntityMap header (with entityMap=true for a new one)"
            )
        return EntityMap(map_id, row.expires_at, row.doc["entityMap"], row.doc["linkedMaps"])

    def update(self, tenant: str, map_id: str, fragment: Any) -> None:
        """Partial update (clause 5.14.2): entityMap and linkedMaps are the system's, so the
        client may change expiresAt only."""
        if not isinstance(fragment, dict):
            raise BadRequestData("the body must be a JSON object (an EntityMap fragment)")
        fragment = {k: v for k, v in fragment.items() if k != "@context"}
        if fragment.get("id", map_id) != map_id:
            raise BadRequestData(f"the body's id {fragment['id']!r} differs from the URL's")
        if fragment.get("type", "EntityMap") != "EntityMap":
            raise BadRequestData(f"type must be EntityMap, got {fragment['type']!r}")
        unknown = sorted(set(fragment) - {"id", "type", "expiresAt"})
        if unknown:
            raise BadRequestData(
                f"{', '.join(unknown)} cannot be changed: entityMap and linkedMaps are kept by "
                "the hub; a PATCH may set expiresAt"
            )
        if "expiresAt" not in fragment:
            return
        expires = parse_datetime_us(fragment["expiresAt"], field="expiresAt")
        if expires <= now_us():
            raise BadRequestData("expiresAt must be in the future (DELETE removes a map now)")
        with self.db.write() as conn:
            done = conn.execute(
                update(T).where(self._live(tenant, map_id)).values(expires_at=expires)
            ).rowcount
        if not done:
            self.get(tenant, map_id)  # raises ResourceNotFound

    def delete(self, tenant: str, map_id: str) -> None:
        with self.db.write() as conn:
            done = conn.execute(delete(T).where(self._live(tenant, map_id))).rowcount
        if not done:
            raise ResourceNotFound(f"EntityMap {map_id} does not exist or has expired")

    @staticmethod
    def _live(tenant: str, map_id: str) -> Any:
        return and_(T.c.tenant == tenant, T.c.map_id == map_id, T.c.expires_at > now_us())
