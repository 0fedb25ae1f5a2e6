"""The device registry: which device feeds which entity, its credentials, and whether it is silent.

Secrets are 256 random bits stored as SHA-256 digests, as API keys are (security/keys.py): a
random secret cannot be guessed from its digest, so a slow hash (argon2) would buy nothing and
would cost ~50 ms on every reading a device sends.

Every device is mirrored as an NGSI-LD ``Device`` entity (Smart Data Models) in its tenant, so
dashboards show devices like any other city data; ``deviceState`` follows the registry's status.
The mirror is the platform's own entity: its names come from the platform's city @context,
whatever @context the device's readings use, so every device is one type.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    and_,
    bindparam,
    cast,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from smartcity.hub.contexts import ContextStore, city_context
from smartcity.hub.entity import check_uri
from smartcity.hub.errors import AlreadyExists, BadRequestData, NgsiError
from smartcity.hub.service import EntityService
from smartcity.hub.timeutil import iso_from_us, now_us
from smartcity.live.devices.schemas import DeviceCreate, DeviceOut
from smartcity.live.tables import live_devices as D
from smartcity.storage.engine import Database

log = logging.getLogger(__name__)

DEFAULT_TOPIC_PATTERN = "city/{tenant}/devices/{device_id}/readings"
DEFAULT_TENANT_SEGMENT = "default"  # the default tenant ("") in MQTT topics
# Ingesting processes refresh their device cache every REFRESH_SECONDS from the rows changed
# since (so a revoked device is refused within that time everywhere); an id not in the cache
# is looked up in the database at most every MISS_SECONDS.
REFRESH_SECONDS = 5.0
MISS_SECONDS = 5.0
SILENT_FACTOR = 2  # silent after this many expected intervals without a reading


@dataclass(frozen=True)
class AttrMap:
    key: str
    name: str
    iri: str
    unit_code: str | None
    scale: float | None
    offset: float | None


@dataclass(frozen=True)
class Device:
    did: int
    device_id: str
    tenant: str
    name: str
    entity_id: str
    entity_type: str
    type_iri: str
    context: str | None
    attributes: dict[str, AttrMap]
    secret_digest: str
    mqtt_topic: str
    mqtt_auth: str
    interval_s: int
    status: str
    created_at: int
    revoked_at: int | None
    last_seen: int | None

    @property
    def entity_urn(self) -> str:
        return f"urn:ngsi-ld:Device:{self.device_id}"

    def out(self, secret: str | None = None) -> DeviceOut:
        return DeviceOut(
            id=self.device_id,
            name=self.name,
            tenant=self.tenant,
            entity_id=self.entity_id,
            entity_type=self.entity_type,
            context=self.context,
            attributes={
                a.key: {
                    k: v
                    for k, v in (
                        ("name", a.name),
                        ("unitCode", a.unit_code),
                        ("scale", a.scale),
                        ("offset", a.offset),
                    )
                    if v is not None
                }
                for a in self.attributes.values()
            },
            interval_s=self.interval_s,
            mqtt_topic=self.mqtt_topic,
            mqtt_auth=self.mqtt_auth,
            status=self.status,
            created_at=iso_from_us(self.created_at),
            last_seen=iso_from_us(self.last_seen) if self.last_seen else None,
            revoked_at=iso_from_us(self.revoked_at) if self.revoked_at else None,
            secret=secret,
        )


def _silence_us() -> Any:
    """2x the interval in microseconds, in 64 bits (PostgreSQL's integer would overflow)."""
    return cast(D.c.interval_s, BigInteger) * (SILENT_FACTOR * 1_000_000)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def topic_for(pattern: str, tenant: str, device_id: str) -> str:
    return pattern.format(tenant=tenant or DEFAULT_TENANT_SEGMENT, device_id=device_id)


class DeviceRegistry:
    def __init__(
        self,
        db: Database,
        entities: EntityService,
        contexts: ContextStore,
        *,
        topic_pattern: str = DEFAULT_TOPIC_PATTERN,
    ) -> None:
        self.db = db
        self.entities = entities
        self.contexts = contexts
        self.topic_pattern = topic_pattern
        self._cache: dict[str, tuple[float, Device | None]] = {}
        self._refreshed_at = now_us()
        self._verified: dict[str, str] = {}  # secret digest -> the secret, once checked
        self._lock = threading.Lock()

    # -- rows <-> devices ----------------------------------------------------------------------
    def _device(self, row: Any) -> Device:
        ctx = self.contexts.active(row.context)
        attrs = {
            key: AttrMap(
                key,
                a["name"],
                a["iri"],
                a.get("unitCode"),
                a.get("scale"),
                a.get("offset"),
            )
            for key, a in row.attributes.items()
        }
        return Device(
            did=int(row.did),
            device_id=row.device_id,
            tenant=row.tenant,
            name=row.name,
            entity_id=row.entity_id,
            entity_type=row.entity_type,
            type_iri=ctx.expand(row.entity_type),
            context=row.context,
            attributes=attrs,
            secret_digest=row.secret_digest,
            mqtt_topic=row.mqtt_topic,
            mqtt_auth=row.mqtt_auth,
            interval_s=int(row.interval_s),
            status=row.status,
            created_at=int(row.created_at),
            revoked_at=row.revoked_at,
            last_seen=row.last_seen,
        )

    # -- CRUD ----------------------------------------------------------------------------------
    def create(self, spec: DeviceCreate) -> tuple[Device, str]:
        """Register a device; returns it and its secret, which is shown once and never stored."""
        return self.create_many([spec])[0]

    def create_many(self, specs: Sequence[DeviceCreate]) -> list[tuple[Device, str]]:
        """Register devices in one transaction (all or none), e.g. a simulated city's."""
        rows: list[dict[str, Any]] = []
        secrets_by_id: dict[str, str] = {}
        now = now_us()
        for spec in specs:
            check_uri(spec.entity_id, "entity_id")
            ctx = self.contexts.active(spec.context)  # fails clearly if the @context is unusable
            secret = secrets_by_id[spec.id] = f"scd_{secrets.token_urlsafe(32)}"
            rows.append(
                {
                    "device_id": spec.id,
                    "tenant": spec.tenant,
                    "name": spec.name or spec.id,
                    "entity_id": spec.entity_id,
                    "entity_type": spec.entity_type,
                    "context": spec.context,
                    "attributes": {
                        key: {
                            "name": a.name,
                            "iri": ctx.expand(a.name),
                            **{
                                k: v
                                for k, v in (
                                    ("unitCode", a.unitCode),
                                    ("scale", a.scale),
                                    ("offset", a.offset),
                                )
                                if v is not None
                            },
                        }
                        for key, a in spec.attributes.items()
                    },
                    "secret_digest": digest(secret),
                    "mqtt_topic": spec.mqtt_topic
                    or topic_for(self.topic_pattern, spec.tenant, spec.id),
                    "mqtt_auth": spec.mqtt_auth,
                    "interval_s": spec.interval_s,
                    "status": "new",
                    "created_at": now,
                    "updated_at": now,
                }
            )
        if len(secrets_by_id) != len(rows):
            raise BadRequestData("the same device id is registered twice in one request")
        if not rows:
            return []
        try:
            with self.db.write() as conn:
                conn.execute(insert(D), rows)
        except IntegrityError:
            which = rows[0] if len(rows) == 1 else None
            raise AlreadyExists(
                f"device {which['device_id']} (or another device with topic "
                f"{which['mqtt_topic']}) already exists"
                if which
                else "one of these devices (or its MQTT topic) already exists; none was created"
            ) from None
        with self.db.read() as conn:
            found = {
                row.device_id: self._device(row)
                for start in range(0, len(rows), 500)
                for row in conn.execute(
                    select(D).where(
                        D.c.device_id.in_([r["device_id"] for r in rows[start : start + 500]])
                    )
                )
            }
        devices = [found[r["device_id"]] for r in rows]
        with self._lock:
            for device in devices:
                self._cache[device.device_id] = (time.monotonic(), device)
        self._mirror(devices, full=True)
        return [(d, secrets_by_id[d.device_id]) for d in devices]

    def get(self, device_id: str) -> Device | None:
        with self.db.read() as conn:
            row = conn.execute(select(D).where(D.c.device_id == device_id)).first()
        return self._device(row) if row is not None else None

    def cached(self, device_id: str) -> Device | None:
        """The device from this process's cache (the ingestion hot path: no database read for
        known devices; ``refresh`` keeps the cache current)."""
        hit = self._cache.get(device_id)
        now = time.monotonic()
        if hit is not None and (hit[1] is not None or now - hit[0] < MISS_SECONDS):
            return hit[1]
        device = self.get(device_id)
        with self._lock:
            if len(self._cache) > 200_000:  # unknown ids must not grow it without bound
                self._cache.clear()
            self._cache[device_id] = (now, device)
        return device

    def refresh(self) -> int:
        """Reload the cached devices changed since the last refresh (created or revoked
        anywhere); returns how many rows were read."""
        since = self._refreshed_at - 2 * int(REFRESH_SECONDS * 1_000_000)  # clock slack
        self._refreshed_at = now_us()
        with self.db.read() as conn:
            rows = conn.execute(select(D).where(D.c.updated_at >= since)).all()
        now = time.monotonic()
        with self._lock:
            for row in rows:
                if row.device_id in self._cache:
                    self._cache[row.device_id] = (now, self._device(row))
        return len(rows)

    def devices(self, tenant: str | None = None, *, status: str | None = None) -> list[Device]:
        stmt = select(D).order_by(D.c.device_id)
        if tenant is not None:
            stmt = stmt.where(D.c.tenant == tenant)
        if status is not None:
            stmt = stmt.where(D.c.status == status)
        with self.db.read() as conn:
            return [self._device(r) for r in conn.execute(stmt)]

    def revoke(self, device_id: str) -> bool:
        now = now_us()
        with self.db.write() as conn:
            done = conn.execute(
                update(D)
                .where(D.c.device_id == device_id, D.c.revoked_at.is_(None))
                .values(revoked_at=now, status="revoked", updated_at=now)
            ).rowcount
        self._cache.pop(device_id, None)
        if done:
            device = self.get(device_id)
            if device is not None:
                self._mirror([device])
        return bool(done)

    def verify(self, device: Device, secret: str | None) -> bool:
        if not secret or not isinstance(secret, str):
            return False
        # A secret already verified for this digest is recognised without hashing again
        # (compare_digest keeps the comparison constant-time).
        known = self._verified.get(device.secret_digest)
        if known is not None and hmac.compare_digest(known, secret):
            return True
        if not hmac.compare_digest(digest(secret), device.secret_digest):
            return False
        if len(self._verified) > 200_000:
            self._verified.clear()
        self._verified[device.secret_digest] = secret
        return True

    # -- liveness ------------------------------------------------------------------------------
    @staticmethod
    def mark_seen(conn: Connection, seen: dict[int, int]) -> None:
        """Record, inside the ingestion transaction, when each device was last heard from."""
        if seen:
            conn.execute(
                update(D).where(D.c.did == bindparam("b_did")).values(last_seen=bindparam("b_at")),
                # In device order: two nodes' batches lock the same rows in one order, so they
                # wait for each other instead of deadlocking (PostgreSQL, shared ingestion).
                [{"b_did": did, "b_at": at} for did, at in sorted(seen.items())],
            )

    def silent(self, now: int | None = None, tenant: str | None = None) -> list[Device]:
        """Devices not revoked that sent nothing for more than 2x their reporting interval."""
        now = now or now_us()
        heard = func.coalesce(D.c.last_seen, D.c.created_at)
        stmt = (
            select(D)
            .where(
                D.c.revoked_at.is_(None),
                heard + _silence_us() < now,
            )
            .order_by(D.c.device_id)
        )
        if tenant is not None:
            stmt = stmt.where(D.c.tenant == tenant)
        with self.db.read() as conn:
            return [self._device(r) for r in conn.execute(stmt)]

    def check_silence(self, now: int | None = None) -> list[Device]:
        """Bring every device's status (and its Device entity's deviceState) up to date;
        returns the devices whose status changed."""
        now = now or now_us()
        limit = _silence_us()
        silent_now = func.coalesce(D.c.last_seen, D.c.created_at) + limit < now
        stale = and_(
            D.c.revoked_at.is_(None),
            or_(
                and_(silent_now, D.c.status != "silent"),
                and_(~silent_now, D.c.last_seen.is_not(None), D.c.status != "ok"),
            ),
        )
        with self.db.write() as conn:
            rows = conn.execute(select(D).where(stale)).all()
            changed = []
            for row in rows:
                heard = row.last_seen or row.created_at
                status = (
                    "silent" if heard + row.interval_s * SILENT_FACTOR * 1_000_000 < now else "ok"
                )
                conn.execute(update(D).where(D.c.did == row.did).values(status=status))
                changed.append(replace(self._device(row), status=status))
        if changed:
            self._mirror(changed)
        return changed

    # -- the NGSI-LD mirror --------------------------------------------------------------------
    def _mirror(self, devices: list[Device], *, full: bool = False) -> None:
        by_tenant: dict[str, list[dict[str, Any]]] = {}
        # The platform's names, not the device's @context: a device registered without one
        # made a default-context `Device`, a second type beside the Smart Data Models one.
        ctx = city_context()
        for device in devices:

            def prop(value: Any) -> list[dict[str, Any]]:
                return [{"type": "Property", "value": value}]

            attrs: dict[str, list[dict[str, Any]]] = {
                ctx.expand("deviceState"): prop(device.status)
            }
            if full:  # on registration; a status change only touches deviceState and the date
                attrs[ctx.expand("name")] = prop(device.name)
                attrs[ctx.expand("controlledProperty")] = prop(
                    [a.name for a in device.attributes.values()]
                )
                attrs[ctx.expand("controlledAsset")] = [
                    {"type": "Relationship", "object": device.entity_id}
                ]
            if device.last_seen:
                attrs[ctx.expand("dateLastValueReported")] = prop(iso_from_us(device.last_seen))
            by_tenant.setdefault(device.tenant, []).append(
                {"id": device.entity_urn, "type": [ctx.expand("Device")], "attrs": attrs}
            )
        for tenant, docs in by_tenant.items():
            try:
                self.entities.upsert_many(tenant, docs, replace=False)
            except NgsiError as exc:  # the registry stays authoritative; the mirror catches up
                log.warning("could not mirror devices into the hub: %s", exc.detail)


def parse_spec(payload: Any) -> DeviceCreate:
    """Validate a registration payload (used by the CLI, which has no FastAPI validation)."""
    from pydantic import ValidationError

    try:
        return DeviceCreate.model_validate(payload)
    except ValidationError as exc:
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise BadRequestData("; ".join(parts)) from None
