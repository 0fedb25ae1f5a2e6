"""Setting up the simulated city before it sends anything, the way a city deploys devices:

1. the @context naming its types and attributes: the platform's city context, built into the
   hub (hub/contexts.py), the same the connectors, the portal and the dashboard use;
2. the static part of each entity (name, location, capacity, district), written once like an
   IoT agent's static attributes, and the bus stops and routes the bus panels refer to;
3. each device in the registry, with its own secret.

Secrets are shown only once by the registry, so they are kept in a state file under
``$SMARTCITY_HOME/simulator/`` (mode 0600), one per target (database or hub URL); a second run
reuses the registrations instead of creating new ones.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import httpx

from smartcity.config import smartcity_home
from smartcity.hub.contexts import (
    CITY_CONTEXT_PATH,
    CITY_CONTEXT_URL,
    ContextStore,
    city_document,
    city_terms,
)
from smartcity.hub.errors import NgsiError
from smartcity.hub.provenance import SIMULATOR_PROVIDER
from smartcity.hub.service import EntityService
from smartcity.live.connectors.base import ConnectorResult, languages, point, prop, rel
from smartcity.live.connectors.sink import HubSink, LocalSink, SinkError, WriteSummary, deliver
from smartcity.live.devices.service import DeviceRegistry, parse_spec
from smartcity.live.simulator.places import SimDevice
from smartcity.live.simulator.publishers import Credentials

PROVIDER = SIMULATOR_PROVIDER


class ProvisionError(Exception):
    """Setting up failed as a whole; the message says what to do."""


def terms() -> dict[str, str]:
    """Every type and attribute name the simulator uses -> its IRI: the city @context's terms
    (a name missing there fails the simulator's tests, not a run)."""
    return city_terms()


def static_entity(d: SimDevice) -> dict[str, Any]:
    """The parts of a device's entity that do not change (name, where, how big)."""
    entity: dict[str, Any] = {
        "id": d.entity_id,
        "type": d.entity_type,
        "location": {"type": "GeoProperty", "value": d.location}
        if d.geometry
        else point(d.lon, d.lat),
        "dataProvider": {"type": "Property", "value": PROVIDER},
    }
    p = d.params
    names = p.get("names")
    entity["name"] = (
        languages(names.get("en"), names.get("zh-Hant"), names.get("zh-Hans"))
        if names
        else {"type": "Property", "value": d.name}
    )
    if "district" in p:
        entity["address"] = {
            "type": "Property",
            "value": {"addressLocality": p["district"], "addressCountry": "HK"},
        }
    if d.kind == "carpark":
        entity["totalSpotNumber"] = {"type": "Property", "value": int(p["spaces"])}
    elif d.kind == "traffic":
        entity["roadName"] = {"type": "Property", "value": p["road_name"]}
    elif d.kind == "bin":
        entity["storedWasteKind"] = {"type": "Property", "value": p["waste"]}
    elif d.kind == "toilet":
        entity["totalCubicles"] = {"type": "Property", "value": int(p["cubicles"])}
    elif d.kind == "bus":
        entity["hasStop"] = rel(p["stop_id"])
        entity["hasRoute"] = rel(p["route_id"])
        entity["headSign"] = prop(p["head_sign"])
    return entity


def static_entities(fleet: list[SimDevice]) -> list[dict[str, Any]]:
    """Each device's entity, then the bus stops and routes the bus panels' entities point to
    (Smart Data Models GtfsStop and GtfsRoute, as the bus connectors write them)."""
    out = [static_entity(d) for d in fleet]
    routes: dict[str, dict[str, Any]] = {}
    for d in fleet:
        if d.kind != "bus":
            continue
        p = d.params
        out.append(
            {
                "id": p["stop_id"],
                "type": "GtfsStop",
                "name": prop(p["stop_name"]),
                "code": prop(p["stop_code"]),
                "location": point(d.lon, d.lat),
                "dataProvider": prop(PROVIDER),
            }
        )
        routes[p["route_id"]] = {
            "id": p["route_id"],
            "type": "GtfsRoute",
            "shortName": prop(p["route"]),
            "routeType": prop(3),  # GTFS route_type 3 = bus
            "name": prop(p["route_name"]),
            "dataProvider": prop(PROVIDER),
        }
    return out + [routes[key] for key in sorted(routes)]


def registration(d: SimDevice, context_url: str, interval_s: int) -> dict[str, Any]:
    return {
        "id": d.device_id,
        "name": d.name,
        "tenant": "",
        "entity_id": d.entity_id,
        "entity_type": d.entity_type,
        "context": context_url,
        "attributes": {
            m.key: {"name": m.key, **({"unitCode": m.unit} if m.unit else {})} for m in d.measures
        },
        "interval_s": interval_s,
    }


def reporting_interval(devices: int, rate: float) -> int:
    """Each device reports once per round of the fleet: devices / rate seconds."""
    return max(10, min(7 * 86400, math.ceil(devices / rate)))


# -- the state file -------------------------------------------------------------------------
class State:
    def __init__(self, target: str, folder: Path | None = None) -> None:
        folder = folder or smartcity_home() / "simulator"
        slug = hashlib.sha256(target.encode()).hexdigest()[:16]
        self.path = folder / f"{slug}.json"
        self.target = target
        self.data: dict[str, Any] = {"target": target, "context": None, "devices": {}}
        if self.path.exists():
            self.data = json.loads(self.path.read_text(encoding="utf-8"))

    @property
    def devices(self) -> dict[str, dict[str, str]]:
        devices: dict[str, dict[str, str]] = self.data["devices"]
        return devices

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(self.data, out)
        os.replace(tmp, self.path)


# -- where registrations go -----------------------------------------------------------------
class Registrar(Protocol):
    def host_context(self, known: str | None) -> str: ...

    def registered(self) -> set[str]: ...

    def register(self, payload: dict[str, Any]) -> tuple[str, str]: ...

    def provision(self, result: ConnectorResult) -> WriteSummary: ...


class LocalRegistrar:
    """In process, into the configured database (the demo, or `simulate` without --hub)."""

    def __init__(
        self, registry: DeviceRegistry, entities: EntityService, contexts: ContextStore
    ) -> None:
        self.registry = registry
        self.entities = entities
        self.contexts = contexts

    def host_context(self, known: str | None) -> str:
        # Built into the hub: found by its path whatever the host name, nothing to store.
        return CITY_CONTEXT_URL

    def registered(self) -> set[str]:
        return {d.device_id for d in self.registry.devices("")}

    def register(self, payload: dict[str, Any]) -> tuple[str, str]:
        device, secret = self.registry.create(parse_spec(payload))
        return secret, device.mqtt_topic

    def provision(self, result: ConnectorResult) -> WriteSummary:
        return deliver(result, LocalSink(self.entities))


class ApiRegistrar:
    """Through a running hub's API (needs a write key)."""

    def __init__(self, hub: str, key: str | None) -> None:
        self.hub = hub.rstrip("/")
        self.key = key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(base_url=self.hub, timeout=30.0, headers=headers)

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ProvisionError(
                f"cannot reach the hub at {self.hub} ({type(exc).__name__}); is it running?"
            ) from None
        if response.status_code in (401, 403):
            raise ProvisionError(
                f"the hub refused the key ({response.status_code}): pass --key with a write key "
                "(smartcity keys create NAME --scope write)"
            )
        return response

    def host_context(self, known: str | None) -> str:
        if self._call("GET", CITY_CONTEXT_PATH).status_code == 200:
            return self.hub + CITY_CONTEXT_PATH  # a smartcity hub: its built-in city context
        if known and self._call("GET", known).status_code == 200:
            return known
        # Another NGSI-LD broker: host the same document there (clause 5.13).
        response = self._call("POST", "/ngsi-ld/v1/jsonldContexts", json=city_document())
        if response.status_code != 201:
            raise ProvisionError(f"the hub refused the @context: {response.text[:300]}")
        return self.hub + response.headers["Location"]

    def registered(self) -> set[str]:
        response = self._call("GET", "/api/v1/devices", params={"tenant": ""})
        if response.status_code != 200:
            raise ProvisionError(f"listing devices failed: {response.text[:300]}")
        return {d["id"] for d in response.json()}

    def register(self, payload: dict[str, Any]) -> tuple[str, str]:
        response = self._call("POST", "/api/v1/devices", json=payload)
        if response.status_code != 201:
            raise ProvisionError(
                f"registering {payload['id']} failed ({response.status_code}): "
                f"{response.text[:300]}"
            )
        body = response.json()
        return body["secret"], body["mqtt_topic"]

    def provision(self, result: ConnectorResult) -> WriteSummary:
        try:
            return deliver(result, HubSink(self.hub, self.key))
        except SinkError as exc:
            raise ProvisionError(str(exc)) from None


def prepare(
    fleet: list[SimDevice],
    registrar: Registrar,
    state: State,
    *,
    interval_s: int,
    register: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[int, Credentials]:
    """Make sure every device of the fleet is registered and its entity exists; returns the
    credentials each device sends with, by fleet index."""
    tick = progress or (lambda _stage, _done, _total: None)
    if register:
        try:
            state.data["context"] = registrar.host_context(state.data.get("context"))
        except NgsiError as exc:
            raise ProvisionError(f"the @context was refused: {exc.detail}") from None
        state.save()
        result = ConnectorResult(entities=static_entities(fleet), context=terms())
        tick("entities", 0, 1)
        summary = registrar.provision(result)
        if summary.errors:
            first = next(iter(summary.errors))
            raise ProvisionError(
                f"the hub refused {sum(summary.errors.values())} entities: {first}"
            )
        tick("entities", 1, 1)
        existing = registrar.registered()
        orphans = [
            d.device_id
            for d in fleet
            if d.device_id in existing and d.device_id not in state.devices
        ]
        if orphans:
            raise ProvisionError(
                f"{len(orphans)} devices (e.g. {orphans[0]}) are registered but their secrets "
                f"are not in {state.path}: they were registered by another simulator state. "
                "Point SMARTCITY_HOME at that state, or revoke and use a fresh database"
            )
        todo = [d for d in fleet if d.device_id not in existing]
        for n, d in enumerate(todo, 1):
            secret, topic = registrar.register(registration(d, state.data["context"], interval_s))
            state.devices[d.device_id] = {"secret": secret, "topic": topic}
            if n % 500 == 0 or n == len(todo):
                state.save()  # a Ctrl-C during a long registration keeps what was done
                tick("devices", n, len(todo))
    missing = [d.device_id for d in fleet if d.device_id not in state.devices]
    if missing:
        raise ProvisionError(
            f"{len(missing)} devices (e.g. {missing[0]}) have no registration in {state.path}; "
            "run once with --register"
        )
    return {
        d.index: Credentials(
            d.device_id, state.devices[d.device_id]["secret"], state.devices[d.device_id]["topic"]
        )
        for d in fleet
    }
