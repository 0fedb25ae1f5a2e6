"""U+0000 from writers that never pass the HTTP edge (issue #11, finding 4, second wave).

The HTTP API refuses U+0000 before parsing (hub/text.py, tests/hostile/test_strings.py), but
connectors, the simulator and scripts write through ``EntityService`` directly: a NUL from an
outside data feed failed the whole batch on PostgreSQL with a driver error and was stored on
SQLite. The hub's write pipeline now refuses it per entity, alike on both backends.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from smartcity.cli.main import app
from smartcity.hub.contexts import ContextStore
from smartcity.hub.errors import BadRequestData
from smartcity.hub.querying import EntityQuery
from smartcity.hub.service import EntityService
from smartcity.storage.engine import Database

FIX = Path(__file__).parent.parent / "live" / "fixtures"
GOOD = "urn:ngsi-ld:OffStreetParking:HK-tdc1p1"
GLITCH = "urn:ngsi-ld:OffStreetParking:HK-tdc3p1"
NAME = "https://example.org/name"


def entity(entity_id: str, value: str) -> dict:
    return {
        "id": entity_id,
        "type": ["https://example.org/Thing"],
        "attrs": {NAME: [{"type": "Property", "value": value}]},
    }


def test_a_connector_fed_a_nul_writes_the_other_entities(db: Database, client: TestClient) -> None:
    result = CliRunner().invoke(
        app,
        [
            "connect",
            "carparks",
            "--from",
            str(FIX / "td_basic_info_nul.json"),
            "--database",
            db.url,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "U+0000" in result.output  # counted as refused, with the reason
    assert client.get(f"/ngsi-ld/v1/entities/{GOOD}").status_code == 200
    assert client.get(f"/ngsi-ld/v1/entities/{GLITCH}").status_code == 404


def test_every_batch_write_refuses_only_the_entity_with_a_nul(db: Database) -> None:
    service = EntityService(db)
    ok, bad = "urn:ngsi-ld:Thing:ok", "urn:ngsi-ld:Thing:bad"
    created = service.create_many("", [entity(ok, "fine"), entity(bad, "a\x00b")])
    assert created.success == [ok] and [i for i, _ in created.errors] == [bad]
    assert "U+0000" in created.errors[0][1].detail
    upserted = service.upsert_many("", [entity(ok, "x\x00"), entity(bad, "b")], replace=False)
    assert upserted.success == [bad] and [i for i, _ in upserted.errors] == [ok]
    updated = service.update_many("", [entity(ok, "\x00"), entity(bad, "c")], no_overwrite=False)
    assert updated.success == [bad] and [i for i, _ in updated.errors] == [ok]
    with pytest.raises(BadRequestData, match="U\\+0000"):
        service.merge("", entity(ok, "m\x00"))
    with pytest.raises(BadRequestData, match="U\\+0000"):
        service.append_attrs(
            "", ok, {"https://example.org/n\x00": [{"type": "Property", "value": 1}]},
            no_overwrite=False,
        )  # fmt: skip
    assert service.get("", ok)["attrs"][NAME][0]["value"] == "fine"
    assert service.get("", bad)["attrs"][NAME][0]["value"] == "c"


def test_contexts_add_refuses_a_file_with_a_nul(db: Database, tmp_path: Path) -> None:
    document = tmp_path / "ctx.jsonld"
    document.write_text(json.dumps({"@context": {"name": "https://example.org/na\u0000me"}}))
    result = CliRunner().invoke(
        app,
        ["contexts", "add", "https://example.org/c.jsonld", str(document), "--database", db.url],
    )
    assert result.exit_code == 1 and "U+0000" in result.output
    assert ContextStore(db).entries() == []


def test_the_repository_refuses_what_bypasses_the_service(db: Database) -> None:
    """Writers with their own SQL through the write pipeline (device ingestion's batch writer
    does this) meet the same check before any statement, on both backends."""
    from smartcity.hub import repository

    service = EntityService(db)
    ok = "urn:ngsi-ld:Thing:direct"
    service.create("", entity(ok, "fine"))
    with pytest.raises(BadRequestData, match="U\\+0000"), service.transaction() as tx:
        doc = {**entity("urn:ngsi-ld:Thing:nul", "\x00"), "createdAt": "x", "modifiedAt": "x"}
        repository.insert_entities(tx.conn, "", [doc], tx.now)
    old = service.get("", ok)
    new = {**old, "attrs": {NAME: [{"type": "Property", "value": "\ud800"}]}}
    for items in ([(1, old, new)], [(1, old, new), (2, old, new)]):
        with pytest.raises(BadRequestData), service.transaction() as tx:
            repository.update_entities(tx.conn, "", items, tx.now)
    assert service.find("", EntityQuery(), limit=10)[0] == [old]
