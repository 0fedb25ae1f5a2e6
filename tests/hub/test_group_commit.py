"""Group commit (hub/group_commit.py): single-entity writes arriving together share one
transaction; each still succeeds or fails on its own, and none is lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from sqlalchemy import func, select

from smartcity.config import Settings
from smartcity.hub.changes import Change
from smartcity.hub.errors import ResourceNotFound
from smartcity.hub.group_commit import GroupCommit
from smartcity.hub.runtime import Hub, build_hub
from smartcity.storage import schema
from smartcity.storage.engine import Database

SPEED = "https://uri.etsi.org/ngsi-ld/default-context/speed"


def detector(n: int) -> dict[str, object]:
    return {
        "id": f"urn:ngsi-ld:Detector:{n}",
        "type": ["https://uri.etsi.org/ngsi-ld/default-context/Detector"],
        "attrs": {SPEED: [{"type": "Property", "value": 0}]},
    }


@pytest.fixture
def hub(db: Database) -> Hub:
    return build_hub(Settings(database_url=db.url, auth_required=False), db)


def test_items_queued_behind_a_running_batch_are_committed_together() -> None:
    batches: list[list[int]] = []
    first_running = threading.Event()
    release = threading.Event()

    def run(items: Sequence[int]) -> list[BaseException | None]:
        batches.append(list(items))
        if len(batches) == 1:
            first_running.set()
            release.wait(5)
        return [ValueError(f"odd {i}") if i % 2 else None for i in items]

    group: GroupCommit[int] = GroupCommit(run)
    errors: dict[int, str] = {}

    def submit(i: int) -> None:
        try:
            group.submit(i)
        except ValueError as exc:
            errors[i] = str(exc)

    threads = [threading.Thread(target=submit, args=(0,))]
    threads[0].start()
    assert first_running.wait(5)
    threads += [threading.Thread(target=submit, args=(i,)) for i in range(1, 6)]
    for t in threads[1:]:
        t.start()
    time.sleep(0.2)  # all five queue up behind the running batch
    release.set()
    for t in threads:
        t.join(5)
    assert batches[0] == [0]
    assert sorted(batches[1]) == [1, 2, 3, 4, 5] and len(batches) == 2
    assert errors == {1: "odd 1", 3: "odd 3", 5: "odd 5"}  # each item's own outcome


def test_concurrent_patches_all_land_with_their_history(hub: Hub) -> None:
    hub.entities.upsert_many("", [detector(n) for n in range(4)], replace=True)
    transactions: list[int] = []
    hub.feed.on_commit(lambda changes: transactions.append(len(changes)))
    failures: list[BaseException] = []

    def patch(worker: int) -> None:
        for k in range(25):
            n = (worker + k) % 4
            try:
                hub.entities.patch_attr(
                    "",
                    f"urn:ngsi-ld:Detector:{n}",
                    SPEED,
                    {"type": "Property", "value": k},
                    "speed",
                )
                if k % 10 == 0:  # a write that must fail alone, amid the others
                    hub.entities.patch_attr(
                        "", "urn:ngsi-ld:Detector:missing", SPEED, {"value": 1}, "speed"
                    )
            except ResourceNotFound:
                pass
            except BaseException as exc:  # anything else is a bug
                failures.append(exc)

    threads = [threading.Thread(target=patch, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    assert sum(transactions) == 8 * 25  # every accepted write was told, once
    with hub.db.read() as conn:  # every write is in the temporal evolution
        rows = conn.execute(select(func.count()).select_from(schema.attr_history)).scalar_one()
    assert rows == 4 + 8 * 25  # the creations and every patch


def test_a_database_error_fails_only_the_write_that_caused_it(hub: Hub) -> None:
    hub.entities.upsert_many("", [detector(1)], replace=True)
    told: list[Sequence[Change]] = []
    hub.feed.on_commit(told.append)

    def bad(old: dict[str, object], _iso: str) -> tuple[dict[str, object], dict[str, object]]:
        raise RuntimeError("a bug in one write")

    with pytest.raises(RuntimeError):
        hub.entities._modify("", "urn:ngsi-ld:Detector:1", bad)  # type: ignore[arg-type]
    hub.entities.patch_attr(
        "", "urn:ngsi-ld:Detector:1", SPEED, {"type": "Property", "value": 7}, "speed"
    )
    doc = hub.entities.get("", "urn:ngsi-ld:Detector:1")
    assert doc["attrs"][SPEED][0]["value"] == 7
    assert len(told) == 1
