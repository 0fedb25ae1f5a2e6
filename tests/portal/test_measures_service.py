"""MeasureService on both backends: loading, search, roll-up, audit trail, permissions."""

from __future__ import annotations

import datetime as dt

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select, text, update

from smartcity.portal import tables as t
from smartcity.portal.blueprint.model import Blueprint, Text
from smartcity.portal.measures.errors import Forbidden, InvalidUpdate, NotFound
from smartcity.portal.measures.loader import load
from smartcity.portal.measures.sample import sample_blueprint, sample_data
from smartcity.portal.measures.service import MeasureService
from smartcity.portal.users.model import User
from smartcity.storage.engine import Database

TABLES = [
    t.organisations,
    t.areas,
    t.strategies,
    t.statuses,
    t.measures,
    t.progress,
    t.milestones,
    t.live_links,
    t.kpis,
    t.audit,
]

# Cheap argon2 parameters: the real ones cost ~1 s per hash on the test machine.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def _user(role: str = "admin", department: str | None = None, uid: int = 0) -> User:
    return User(
        id=uid,
        username=f"{role}{uid}",
        role=role,  # type: ignore[arg-type]
        department=department,
        created_at=dt.datetime.now(dt.UTC),
    )


@pytest.fixture
def svc(db: Database) -> MeasureService:
    load(db, sample_blueprint())
    return MeasureService(db)


@pytest.fixture
def admin(db: Database, svc: MeasureService) -> User:
    from smartcity.portal.users.service import UserService

    return UserService(db, hasher=FAST).create(
        "admin", "correct horse battery", "admin", display_name="Ada"
    )


@pytest.fixture
def td_editor(db: Database, svc: MeasureService) -> User:
    from smartcity.portal.users.service import UserService

    return UserService(db, hasher=FAST).create("td-ed", "correct horse battery", "editor", "TD")


def _snapshot(db: Database) -> dict[str, list[tuple[object, ...]]]:
    with db.read() as conn:
        return {
            tbl.name: sorted((tuple(str(v) for v in r) for r in conn.execute(select(tbl))), key=str)
            for tbl in TABLES
        }


def test_load_twice_changes_nothing_and_keeps_progress(
    db: Database, svc: MeasureService, admin: User
) -> None:
    svc.update_progress("living-01", user=admin, status="completed", note="done")
    svc.set_parent("mobility-02", "mobility-01", user=admin, weight=2)
    before = _snapshot(db)
    report = load(db, sample_blueprint())
    assert not report.changed
    assert _snapshot(db) == before
    m = svc.get_measure("living-01")
    assert (m.status, m.own_progress) == ("completed", 100.0)
    assert svc.get_measure("mobility-02").parent == "mobility-01"


def test_links_stored_before_a_new_link_member_are_not_a_change(
    db: Database, svc: MeasureService
) -> None:
    # Links written by an older release lack members added since (``scale``): a reload of the
    # same data must not record a change on every measure's timeline.
    with db.write() as conn:
        for row in conn.execute(select(t.live_links)).all():
            older = {k: v for k, v in row.link.items() if k != "scale"}
            conn.execute(
                update(t.live_links)
                .where(t.live_links.c.measure_id == row.measure_id, t.live_links.c.ord == row.ord)
                .values(link=older)
            )
    assert not load(db, sample_blueprint()).changed
    assert [e.field for e in svc.timeline("mobility-01")].count("live") == 1  # created only


def test_reload_updates_texts_inserts_new_measures_and_audits(
    db: Database, svc: MeasureService, admin: User
) -> None:
    svc.update_progress("living-01", user=admin, progress=40)
    data = sample_data()
    living = data["areas"][1]
    living["measures"][0]["title"]["en"] = "Wi-Fi connected city (revised)"
    new = dict(living["measures"][1], id="living-03", is_new=True)
    living["measures"].append(new)
    report = load(db, Blueprint.model_validate(data))
    assert report.inserted["measures"] == 1 and report.updated["measures"] == 1
    m = svc.get_measure("living-01")
    assert m.title.en == "Wi-Fi connected city (revised)"
    assert m.own_progress == 40.0  # an editor's work survives a reload
    assert svc.get_measure("living-03").status == "planned"
    title_change = [e for e in svc.timeline("living-01") if e.field == "title"]
    assert title_change[0].user == "system" and title_change[0].user_id is None
    assert title_change[0].old["en"] == "Wi-Fi connected city"


def test_search_matches_chinese_and_english(svc: MeasureService) -> None:
    assert [m.id for m in svc.list_measures(q="泊車")] == ["mobility-01", "mobility-02"]
    assert [m.id for m in svc.list_measures(q="泊车")] == ["mobility-01", "mobility-02"]
    assert [m.id for m in svc.list_measures(q="PARKING vacancy")] == ["mobility-01"]
    assert [m.id for m in svc.list_measures(q="ｗｉ－ｆｉ")] == ["living-01"]  # full-width
    assert svc.list_measures(q="100%") == []  # LIKE wildcards are escaped
    assert svc.list_measures(q="_") == []
    assert [m.id for m in svc.list_measures(q="wi-fi.hk")] == ["living-01"]
    # Spaces and hyphens inside a phrase do not matter ("wifi" is "Wi-Fi").
    assert [m.id for m in svc.list_measures(q="WiFi")] == ["living-01"]
    assert svc.count_measures(q="wi fi") == svc.count_measures(q="wifi") == 1
    assert svc.list_measures(q=" - ") == []  # nothing to look for finds nothing


def test_filters_paging_and_counts(svc: MeasureService, admin: User) -> None:
    assert [m.id for m in svc.list_measures(is_new=True)] == ["mobility-02", "living-02"]
    assert [m.id for m in svc.list_measures(area="living")] == ["living-01", "living-02"]
    svc.update_progress("mobility-03", user=admin, status="in_progress")
    assert [m.id for m in svc.list_measures(status="in_progress")] == ["mobility-03"]
    assert [m.id for m in svc.list_measures(limit=2, offset=1)] == ["mobility-02", "mobility-03"]
    assert svc.count_measures(area="mobility") == 3
    assert svc.count_measures(q="泊車", is_new=True) == 1


def test_get_measure_shape_and_not_found(svc: MeasureService) -> None:
    m = svc.get_measure("mobility-02")
    dumped = m.model_dump(mode="json", by_alias=True)
    assert dumped["title"] == {
        "en": "Automated parking system at the HZMB port",
        "zh-Hant": "港珠澳大橋自動泊車系統",
        "zh-Hans": "港珠澳大桥自动泊车系统",
    }
    assert dumped["target"]["date"] == "2024-03-31" and dumped["is_new"] is True
    assert svc.get_measure("mobility-01").live[0].entity_type == "OffStreetParking"
    with pytest.raises(NotFound):
        svc.get_measure("mobility-99")
    with pytest.raises(NotFound):
        svc.timeline("mobility-99")


def test_rollup_hand_computed(svc: MeasureService, admin: User) -> None:
    # mobility: 01 is the parent of 02 (weight 3) and 03 (weight 1).
    svc.set_parent("mobility-02", "mobility-01", user=admin, weight=3)
    svc.set_parent("mobility-03", "mobility-01", user=admin, weight=1)
    svc.update_progress("mobility-01", user=admin, progress=10)  # shadowed by its children
    svc.update_progress("mobility-02", user=admin, progress=40)
    svc.update_progress("mobility-03", user=admin, progress=80)
    # parent = (3*40 + 1*80) / 4 = 50
    assert svc.get_measure("mobility-01").progress == 50.0
    assert svc.get_measure("mobility-01").own_progress == 10.0
    assert svc.get_measure("mobility-01").children == ["mobility-02", "mobility-03"]
    # living: 01 (weight 1) at 100 %, 02 (weight 2) at 25 % -> (100 + 50) / 3 = 50
    svc.update_progress("living-01", user=admin, status="completed")
    svc.update_progress("living-02", user=admin, progress=25)
    svc.set_parent("living-02", None, user=admin, weight=2)
    areas = {a.id: a for a in svc.area_summaries()}
    assert areas["mobility"].progress == 50.0  # the only top-level measure is mobility-01
    assert areas["living"].progress == 50.0
    assert areas["living"].by_status["completed"] == 1
    assert areas["living"].by_status["planned"] == 1
    assert areas["mobility"].measure_count == 3 and areas["mobility"].new_count == 1
    # blueprint: top-level mobility-01 (w 1, 50), living-01 (w 1, 100), living-02 (w 2, 25)
    # = (50 + 100 + 50) / 4 = 50; make it asymmetric to catch a plain mean of areas:
    svc.update_progress("mobility-03", user=admin, progress=0)  # parent = 30
    assert svc.get_measure("mobility-01").progress == 30.0
    assert svc.area_summaries()[0].progress == 30.0
    assert svc.blueprint_progress() == pytest.approx((30 + 100 + 2 * 25) / 4)


def test_parent_rules(svc: MeasureService, admin: User) -> None:
    svc.set_parent("mobility-02", "mobility-01", user=admin)
    with pytest.raises(InvalidUpdate, match="cycle"):
        svc.set_parent("mobility-01", "mobility-02", user=admin)
    with pytest.raises(InvalidUpdate, match="own parent"):
        svc.set_parent("mobility-01", "mobility-01", user=admin)
    with pytest.raises(InvalidUpdate, match="area"):
        svc.set_parent("living-01", "mobility-01", user=admin)
    with pytest.raises(InvalidUpdate, match="weight"):
        svc.set_parent("living-01", None, user=admin, weight=-1)
    with pytest.raises(InvalidUpdate, match="no measure"):
        svc.set_parent("living-01", "living-09", user=admin)


def test_every_change_is_audited(db: Database, svc: MeasureService, admin: User) -> None:
    svc.update_progress(
        "mobility-01",
        user=admin,
        status="in_progress",
        start=dt.date(2021, 1, 1),
        end=dt.date(2024, 12, 31),
        note="contract awarded",
    )
    svc.update_progress("mobility-01", user=admin, progress=60)
    milestone = svc.add_milestone(
        "mobility-01",
        user=admin,
        date=dt.date(2022, 6, 1),
        title=Text(en="App launched", **{"zh-Hant": "應用程式推出", "zh-Hans": "应用程序推出"}),
    )
    svc.set_milestone_done(milestone.id, user=admin, done=True)
    svc.set_parent("mobility-02", "mobility-01", user=admin, weight=2)
    svc.update_progress("mobility-01", user=admin, note="just a comment")
    entries = svc.timeline("mobility-01")
    fields = [e.field for e in entries]
    # newest first
    assert fields[:4] == ["note", "milestone_done", "milestone", "progress"]
    assert set(fields[4:8]) == {"status", "progress", "start", "end"}
    assert fields[-1] == "created"
    progress = [e for e in entries if e.field == "progress"]
    assert (progress[0].old, progress[0].new) == (50.0, 60.0)
    assert (progress[1].old, progress[1].new) == (0.0, 50.0)  # the status's default
    assert progress[1].note == "contract awarded"
    start = next(e for e in entries if e.field == "start")
    assert (start.old, start.new) == (None, "2021-01-01")
    assert all(e.user == "Ada" and e.user_id == admin.id for e in entries[:-2])
    assert [(e.field, e.user) for e in entries[-2:]] == [("live", "system"), ("created", "system")]
    child = svc.timeline("mobility-02")
    assert {(e.field, e.new) for e in child} >= {("parent", "mobility-01"), ("weight", 2.0)}
    # Nothing changed -> nothing recorded.
    n = len(svc.timeline("mobility-01"))
    svc.update_progress("mobility-01", user=admin, progress=60)
    assert len(svc.timeline("mobility-01")) == n
    # The trail is append-only in the database itself.
    with pytest.raises(Exception, match="append-only"), db.write() as conn:
        conn.execute(update(t.audit).values(field="tampered"))
    with db.read() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(t.audit).where(t.audit.c.field == "tampered")
            ).scalar_one()
            == 0
        )


def test_editor_limited_to_own_department(
    db: Database, svc: MeasureService, td_editor: User, admin: User
) -> None:
    assert svc.update_progress("mobility-01", user=td_editor, progress=30).own_progress == 30
    with pytest.raises(Forbidden, match="TD"):
        svc.update_progress("living-01", user=td_editor, progress=30)
    with pytest.raises(Forbidden):
        svc.add_milestone("living-01", user=td_editor, date=dt.date(2022, 1, 1), title=_text("x"))
    assert svc.can_edit(td_editor, "mobility-02") and not svc.can_edit(td_editor, "living-02")
    epd = _user("editor", "EPD", uid=admin.id)
    assert svc.can_edit(epd, "living-02")  # one of two owners is enough
    moderator = _user("moderator", "TD", uid=admin.id)
    with pytest.raises(Forbidden, match="moderator"):
        svc.update_progress("mobility-01", user=moderator, progress=1)
    inactive = admin.model_copy(update={"active": False})
    with pytest.raises(Forbidden):
        svc.update_progress("mobility-01", user=inactive, progress=1)
    assert svc.get_measure("living-01").own_progress == 0.0  # refused means unchanged
    with db.read() as conn:
        n = conn.execute(text("SELECT count(*) FROM portal_audit WHERE measure_id='living-01'"))
        assert n.scalar_one() == 1  # only "created"


def _text(s: str) -> Text:
    return Text(en=s, **{"zh-Hant": s, "zh-Hans": s})


def test_update_validation(svc: MeasureService, admin: User) -> None:
    with pytest.raises(InvalidUpdate, match="between 0 and 100"):
        svc.update_progress("mobility-01", user=admin, progress=101)
    with pytest.raises(InvalidUpdate, match="unknown status"):
        svc.update_progress("mobility-01", user=admin, status="finished")
    with pytest.raises(InvalidUpdate, match="before the start"):
        svc.update_progress(
            "mobility-01", user=admin, start=dt.date(2022, 1, 2), end=dt.date(2022, 1, 1)
        )
    with pytest.raises(NotFound):
        svc.update_progress("mobility-77", user=admin, progress=1)
    # suspended keeps the progress reached
    svc.update_progress("mobility-01", user=admin, progress=35)
    assert svc.update_progress("mobility-01", user=admin, status="suspended").own_progress == 35


def test_statuses_and_kpis(svc: MeasureService) -> None:
    codes = [(s.code, s.default_progress) for s in svc.statuses()]
    assert codes == [
        ("planned", 0.0),
        ("in_progress", 50.0),
        ("completed", 100.0),
        ("ongoing", 100.0),
        ("suspended", None),
    ]
    assert [k.id for k in svc.kpis()] == ["mobility-k1", "living-k1"]
    wifi = svc.kpis("living")[0]
    assert (wifi.value, wifi.qualifier, wifi.as_of) == (37000.0, "over", "2020-06")
    assert svc.kpis("economy") == []


def test_real_blueprint_loads_idempotently(db: Database) -> None:
    dataset = pytest.importorskip("smartcity.portal.blueprint.dataset")
    blueprint = dataset.load_blueprint()
    first = load(db, blueprint)
    assert first.inserted["measures"] >= 130
    before = _snapshot(db)
    assert not load(db, blueprint).changed
    assert _snapshot(db) == before
    svc = MeasureService(db)
    assert svc.count_measures() == first.inserted["measures"]
    assert {a.id for a in svc.area_summaries()} == {a.id for a in blueprint.areas}
    parking = svc.list_measures(q="泊車")
    assert parking and all("泊車" in m.text.zh_hant + m.title.zh_hant for m in parking)


def test_concurrent_updates_leave_a_consistent_trail(svc: MeasureService, admin: User) -> None:
    import itertools
    from concurrent.futures import ThreadPoolExecutor

    values = [float(v) for v in range(1, 17)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda v: svc.update_progress("mobility-03", user=admin, progress=v), values))
    trail = [e for e in reversed(svc.timeline("mobility-03")) if e.field == "progress"]
    assert len(trail) == 16
    assert trail[0].old == 0.0
    for before, after in itertools.pairwise(trail):
        assert after.old == before.new  # no lost update: each edit saw the previous one
    assert svc.get_measure("mobility-03").own_progress == trail[-1].new
