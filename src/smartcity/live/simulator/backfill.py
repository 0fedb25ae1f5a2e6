"""The simulated city's recent past, written straight into the hub's history.

A fresh demo has only the readings of its first minutes: its trend charts would start with one
point and "vs 1 h / 24 h ago" would say nothing for a day. The model gives a reading for any
moment, so before the live readings start the demo asks it for the last ``hours`` (one reading
per device every ``step_s``) and writes them through the hub's temporal service, in process:
temporal writes go to the history (and its hourly rollup) only, never to the latest state, so
the live figures stay the live ones. Each device's history goes in as one temporal upsert.

Attribute and type names are the city @context's IRIs, the same the ingestion writes for the
devices' readings (``provision.registration`` maps each payload key to the attribute of that
name), so the dashboard and the Temporal API find the past and the present as one series.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from smartcity.hub.contexts import city_context
from smartcity.hub.service import EntityService
from smartcity.hub.temporal.service import TemporalService
from smartcity.hub.timeutil import iso_from_us
from smartcity.live.devices.service import DeviceRegistry
from smartcity.live.ingest.readings import Reading, parse_reading
from smartcity.live.ingest.store import write_readings
from smartcity.live.simulator.models import CityModel
from smartcity.live.simulator.places import SimDevice

HOUR_US = 3_600_000_000


def instances(
    device: SimDevice, model: CityModel, start_us: int, end_us: int, step_us: int
) -> dict[str, list[dict[str, Any]]]:
    """The device's readings in [start, end), every step, as temporal instances by IRI."""
    context = city_context()
    out: dict[str, list[dict[str, Any]]] = {}
    t = start_us
    while t < end_us:
        reading = model.reading(device, t)
        for measure in device.measures:
            if measure.key not in reading:
                continue
            inst: dict[str, Any] = {
                "type": "Property",
                "value": reading[measure.key],
                "observedAt": iso_from_us(t),
            }
            if measure.unit:
                inst["unitCode"] = measure.unit
            out.setdefault(context.expand(measure.key), []).append(inst)
        t += step_us
    return out


def backfill(
    fleet: Sequence[SimDevice],
    model: CityModel,
    temporal: TemporalService,
    *,
    end_us: int,
    hours: int = 25,
    step_s: int = 900,
    tenant: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write ``hours`` of simulated history ending at ``end_us``; returns the instances written.

    25 hours by default: "vs 24 h ago" compares with the hour that held now − 24 h."""
    context = city_context()
    step_us = step_s * 1_000_000
    start_us = (end_us - hours * HOUR_US) // step_us * step_us
    written = 0
    for n, device in enumerate(fleet, 1):
        attrs = instances(device, model, start_us, end_us, step_us)
        if attrs:
            type_iri = context.expand(device.entity_type)
            temporal.upsert(tenant, {"id": device.entity_id, "type": [type_iri], "attrs": attrs})
            written += sum(len(v) for v in attrs.values())
        if progress is not None:
            progress(n, len(fleet))
    return written


def present(
    fleet: Sequence[SimDevice],
    model: CityModel,
    registry: DeviceRegistry,
    entities: EntityService,
    *,
    now_us: int,
    per_transaction: int = 500,
) -> int:
    """Each device's reading at ``now_us``, written as the ingestion writes a device's reading
    (latest state and history), before the server answers; returns the readings written.

    The simulator then needs a whole reporting interval to reach every device once, and until
    it does a car park has a name and a capacity but no free spaces: a newcomer's first query
    (the README's) would find entities without their figures. Devices that report on start-up
    are what a real deployment looks like, so the demo starts from here."""
    readings: list[Reading] = []
    for sim in fleet:
        device = registry.get(sim.device_id)
        if device is None:  # not registered (provisioning reported it)
            continue
        raw = {"t": now_us / 1_000_000, **model.reading(sim, now_us)}
        readings.append(parse_reading(device, raw, now_us))
    for start in range(0, len(readings), per_transaction):
        with entities.transaction() as tx:
            write_readings(tx, readings[start : start + per_transaction])
    return len(readings)
