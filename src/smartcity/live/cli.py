"""``smartcity devices ...`` (the registry) and ``smartcity ingest mqtt`` (a standalone
MQTT subscriber)."""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from smartcity.commandline import DatabaseOpt, open_database

if TYPE_CHECKING:
    from smartcity.live.ingest.runtime import Ingest

devices_app = typer.Typer(
    help="The device registry (devices that send readings).", no_args_is_help=True
)
ingest_app = typer.Typer(help="Device ingestion processes.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _ingest(database: str | None) -> Ingest:
    from smartcity.config import Settings
    from smartcity.hub.runtime import build_hub
    from smartcity.live.ingest.runtime import build_ingest

    db = open_database(database, current=True)
    hub = build_hub(Settings(database_url=db.url), db)
    return build_ingest(hub)


def _parse_map(items: list[str]) -> dict[str, dict[str, object]]:
    """``temp=temperature:CEL:0.1`` -> {"temp": {"name": "temperature", "unitCode": "CEL",
    "scale": 0.1}} (unit, scale and offset optional: ``key=name``, ``key=name:unit``)."""
    out: dict[str, dict[str, object]] = {}
    for item in items:
        key, sep, rest = item.partition("=")
        if not sep or not rest:
            raise typer.BadParameter(f"--attr {item!r}: expected KEY=NAME[:UNIT[:SCALE[:OFFSET]]]")
        parts = rest.split(":")
        spec: dict[str, object] = {"name": parts[0]}
        try:
            if len(parts) > 1 and parts[1]:
                spec["unitCode"] = parts[1]
            if len(parts) > 2 and parts[2]:
                spec["scale"] = float(parts[2])
            if len(parts) > 3 and parts[3]:
                spec["offset"] = float(parts[3])
        except ValueError:
            raise typer.BadParameter(f"--attr {item!r}: scale and offset are numbers") from None
        out[key] = spec
    return out


@devices_app.command("create")
def devices_create(
    device_id: Annotated[str, typer.Argument(help="Device id, e.g. aq-tai-po-01")],
    entity: Annotated[str, typer.Option(help="Entity it feeds, e.g. urn:ngsi-ld:Foo:1")] = "",
    entity_type: Annotated[str, typer.Option("--type", help="Entity type")] = "",
    attr: Annotated[
        list[str] | None,
        typer.Option(help="KEY=NAME[:UNIT[:SCALE[:OFFSET]]], e.g. temp=temperature:CEL (repeat)"),
    ] = None,
    interval: Annotated[int, typer.Option(help="Expected reporting interval, seconds")] = 300,
    tenant: Annotated[str, typer.Option(help="Tenant ('' = default)")] = "",
    name: Annotated[str | None, typer.Option(help="Human-readable name")] = None,
    context: Annotated[str | None, typer.Option(help="@context URL for the names")] = None,
    mqtt_auth: Annotated[str, typer.Option(help="secret or broker")] = "secret",
    from_file: Annotated[
        Path | None, typer.Option("--from", help="A JSON registration (as POST /api/v1/devices)")
    ] = None,
    database: DatabaseOpt = None,
) -> None:
    """Register a device; its secret is printed once."""
    from smartcity.hub.errors import NgsiError
    from smartcity.live.devices.service import parse_spec

    if from_file is not None:
        payload = json.loads(from_file.read_text(encoding="utf-8-sig"))
        payload.setdefault("id", device_id)
    else:
        payload = {
            "id": device_id,
            "entity_id": entity,
            "entity_type": entity_type,
            "attributes": _parse_map(attr or []),
            "interval_s": interval,
            "tenant": tenant,
            "name": name,
            "context": context,
            "mqtt_auth": mqtt_auth,
        }
    try:
        device, secret = _ingest(database).registry.create(parse_spec(payload))
    except NgsiError as exc:
        err.print(f"[red]error:[/] {exc.detail}")
        raise typer.Exit(1) from None
    console.print(
        f"device {device.device_id} -> {device.entity_id}, MQTT topic {device.mqtt_topic}"
    )
    console.print("secret (shown once; send as 'Authorization: Bearer <secret>' or MQTT 'key'):")
    print(secret)


@devices_app.command("list")
def devices_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant")] = None,
    silent: Annotated[bool, typer.Option("--silent", help="Only silent devices")] = False,
    database: DatabaseOpt = None,
) -> None:
    """List devices (silent: nothing received for more than 2x their interval)."""
    registry = _ingest(database).registry
    devices = registry.silent(tenant=tenant) if silent else registry.devices(tenant)
    table = Table("id", "tenant", "entity", "status", "last seen", "interval")
    for d in devices:
        out = d.out()
        table.add_row(
            d.device_id, d.tenant, d.entity_id, d.status, out.last_seen or "-", f"{d.interval_s}s"
        )
    console.print(table)


@devices_app.command("show")
def devices_show(device_id: str, database: DatabaseOpt = None) -> None:
    """Show one device (never its secret)."""
    device = _ingest(database).registry.get(device_id)
    if device is None:
        err.print(f"[red]error:[/] no device {device_id}; see `smartcity devices list`")
        raise typer.Exit(1)
    print(json.dumps(device.out().model_dump(exclude={"secret"}), indent=2, ensure_ascii=False))


@devices_app.command("revoke")
def devices_revoke(device_id: str, database: DatabaseOpt = None) -> None:
    """Revoke a device's credentials (its readings are refused from then on)."""
    if not _ingest(database).registry.revoke(device_id):
        err.print(f"[red]error:[/] no active device {device_id}; see `smartcity devices list`")
        raise typer.Exit(1)
    console.print(f"revoked {device_id}")


@ingest_app.command("mqtt")
def ingest_mqtt(
    url: Annotated[
        str | None, typer.Option(help="Broker, e.g. mqtt://127.0.0.1:1883 ($SMARTCITY_MQTT_URL)")
    ] = None,
    database: DatabaseOpt = None,
) -> None:
    """Run the MQTT subscriber alone (e.g. beside `serve --workers N`), until Ctrl-C."""
    import os

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if url:
        os.environ["SMARTCITY_MQTT_URL"] = url
    if not os.environ.get("SMARTCITY_MQTT_URL"):
        err.print("[red]error:[/] give --url mqtt://HOST:PORT or set SMARTCITY_MQTT_URL")
        raise typer.Exit(2)
    ingest = _ingest(database)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    ingest.start()
    assert ingest.mqtt is not None
    if not ingest.mqtt.wait_connected(15):
        err.print(f"[yellow]warning:[/] not connected to {ingest.config.mqtt_url} yet; retrying")
    console.print(f"ingesting {ingest.mqtt.filter} from {ingest.config.mqtt_url}")
    while not stop.wait(30):
        logging.getLogger("smartcity.ingest").info("metrics %s", ingest.metrics.snapshot())
    ingest.stop()
    console.print(f"stopped; {ingest.metrics.snapshot()}")
