"""Export -> import round trips (CSV and JSON), all-or-nothing imports, the flat-row parser."""

from __future__ import annotations

import datetime as dt

import pytest
from argon2 import PasswordHasher
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from smartcity.portal import tables as t
from smartcity.portal.blueprint.model import Text
from smartcity.portal.measures import csvio
from smartcity.portal.measures.importer import import_records
from smartcity.portal.measures.loader import load
from smartcity.portal.measures.sample import sample_blueprint
from smartcity.portal.measures.service import MeasureService
from smartcity.portal.users.service import UserService
from smartcity.storage.engine import Database

# Cheap argon2 parameters: the real ones cost ~1 s per hash on the test machine.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def _t(s: str) -> Text:
    return Text(en=s, **{"zh-Hant": s + "（繁）", "zh-Hans": s + "（简）"})


@pytest.fixture
def svc(db: Database) -> MeasureService:
    load(db, sample_blueprint())
    svc = MeasureService(db)
    admin = UserService(db, hasher=FAST).create("admin", "correct horse battery", "admin")
    svc.update_progress(
        "mobility-02",
        user=admin,
        status="in_progress",
        progress=33.3,
        start=dt.date(2021, 3, 1),
        end=dt.date(2023, 12, 31),
    )
    svc.set_parent("mobility-02", "mobility-01", user=admin, weight=2.5)
    svc.add_milestone(
        "mobility-02", user=admin, date=dt.date(2022, 1, 5), title=_t('Tender, "phase" 1')
    )
    svc.add_milestone(
        "mobility-02",
        user=admin,
        date=dt.date(2021, 7, 1),
        title=_t("Trial"),
        description=_t("Line one\nline two, with comma"),
        done=True,
    )
    svc.update_progress("living-02", user=admin, status="completed")
    return svc


def _export(svc: MeasureService, fmt: str) -> str | bytes:
    measures = svc.list_measures()
    return csvio.to_csv(measures) if fmt == "csv" else csvio.to_json(measures)


def _read(data: str | bytes, fmt: str) -> list[tuple[int, dict[str, object]]]:
    if fmt == "csv":
        assert isinstance(data, str)
        return csvio.read_csv(data)
    return csvio.read_json(data)


def _state(db: Database) -> dict[str, list[str]]:
    with db.read() as conn:
        return {
            tbl.name: sorted(
                str({k: v for k, v in r._mapping.items() if k not in ("id", "updated_at")})
                for r in conn.execute(select(tbl))
            )
            for tbl in (t.measures, t.progress, t.milestones, t.live_links)
        }


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_round_trip_into_a_fresh_blueprint(db: Database, svc: MeasureService, fmt: str) -> None:
    exported = _export(svc, fmt)
    state = _state(db)
    # Throw the progress away: a fresh load of the same blueprint, then import the file.
    with db.write() as conn:
        for tbl in (t.audit, t.milestones, t.live_links, t.progress, t.measures):
            conn.execute(tbl.delete())
    load(db, sample_blueprint())
    assert _state(db) != state
    report = import_records(db, _read(exported, fmt))
    assert report.counts["updated"] == 2  # mobility-02, living-02
    assert _state(db) == state
    assert _export(svc, fmt) == exported
    # Importing the same file again changes nothing and records nothing.
    with db.read() as conn:
        n_audit = len(conn.execute(select(t.audit)).all())
    assert import_records(db, _read(exported, fmt)).counts["unchanged"] == 5
    with db.read() as conn:
        assert len(conn.execute(select(t.audit)).all()) == n_audit


def test_import_restores_and_audits(db: Database, svc: MeasureService) -> None:
    exported = csvio.to_csv(svc.list_measures())
    admin = UserService(db, hasher=FAST).get_by_username("admin")
    assert admin is not None
    svc.update_progress("living-02", user=admin, status="suspended", progress=10)
    report = import_records(db, csvio.read_csv(exported))
    assert report.counts == {"inserted": 0, "updated": 1, "unchanged": 4}
    m = svc.get_measure("living-02")
    assert (m.status, m.own_progress) == ("completed", 100.0)
    latest = svc.timeline("living-02")[:2]
    assert {(e.field, e.new, e.user, e.note) for e in latest} == {
        ("status", "completed", "system", "import"),
        ("progress", 100.0, "system", "import"),
    }


def test_import_inserts_new_measure_with_parent_later_in_file(
    db: Database, svc: MeasureService
) -> None:
    rows = [csvio.to_record(m) for m in svc.list_measures(area="living")]
    child = dict(rows[0], id="living-05", parent="living-06", progress=None, status="ongoing")
    parent = dict(rows[1], id="living-06", milestones=[], live=[])
    report = import_records(db, [(1, child), (2, parent)])
    assert report.counts["inserted"] == 2
    new = svc.get_measure("living-05")
    assert (new.parent, new.own_progress, new.order) == ("living-06", 100.0, 3)
    assert svc.get_measure("living-06").progress == 100.0  # rolled up from its child


def test_bad_rows_are_reported_and_nothing_is_applied(db: Database, svc: MeasureService) -> None:
    text = csvio.to_csv(svc.list_measures())
    lines = text.split("\r\n")
    header = lines[0].split(",")
    assert header[header.index("progress")] == "progress"
    bad = [
        lines[0],
        lines[1].replace(",planned,0.0,", ",planned,150,", 1),  # row 2: progress too high
        lines[2],  # row 3: ok, but changed below
        lines[3].replace("mobility-s2", "living-s1", 1),  # row 4: strategy of another area
        lines[4].replace(",planned,", ",finished,", 1),  # row 5: unknown status
        lines[5].replace("living-02,living", "living-02,mobility", 1),  # row 6: bad strategy area
    ]
    bad[2] = bad[2].replace(",in_progress,33.3,", ",completed,100.0,", 1)  # a valid change
    before = _state(db)
    with pytest.raises(csvio.ImportFailed) as info:
        import_records(db, csvio.read_csv("\r\n".join(bad) + "\r\n"))
    found = {(e.row, e.column) for e in info.value.errors}
    assert found == {(2, "progress"), (4, "strategy"), (5, "status"), (6, "strategy")}
    assert "less than or equal to 100" in str(info.value)
    assert _state(db) == before  # the valid row 3 was not applied either


def test_structural_errors(db: Database, svc: MeasureService) -> None:
    rows = [csvio.to_record(m) for m in svc.list_measures(area="mobility")]
    cycle = [(1, dict(rows[0], parent="mobility-02")), (2, rows[1])]
    with pytest.raises(csvio.ImportFailed, match="cycle"):
        import_records(db, cycle)
    dup = [(1, rows[0]), (2, rows[0])]
    with pytest.raises(csvio.ImportFailed, match="also on row 1"):
        import_records(db, dup)
    missing_text = dict(rows[2])
    del missing_text["title/zh-Hans"]
    with pytest.raises(csvio.ImportFailed) as info:
        import_records(db, [(7, missing_text), (8, dict(rows[1], end_date="2020-01-01"))])
    assert {(e.row, e.column) for e in info.value.errors} == {
        (7, "title/zh-Hans"),
        (8, "end_date"),
    }
    with pytest.raises(csvio.ImportFailed, match="unknown column"):
        csvio.read_csv("id,area,strategy,status,colour\r\n")
    with pytest.raises(csvio.ImportFailed, match="required column"):
        csvio.read_csv("id,area\r\n")
    with pytest.raises(csvio.ImportFailed, match="not valid JSON"):
        csvio.read_csv("id,area,strategy,status,target\r\nx,mobility,s,planned,{oops\r\n")
    with pytest.raises(csvio.ImportFailed, match="array of objects"):
        csvio.read_json(b'{"id": 1}')


texts = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40
).filter(lambda s: s.strip() == s and s.strip())


@settings(max_examples=150, deadline=None)
@given(
    title=texts,
    body=st.text(min_size=1, max_size=60).filter(lambda s: "\r" not in s and s.strip() == s and s),
    progress=st.floats(0, 100, allow_nan=False),
    weight=st.floats(0, 1000, allow_nan=False),
    owners=st.lists(st.from_regex(r"[A-Z]{2,6}", fullmatch=True), max_size=3),
    is_new=st.booleans(),
)
def test_flat_row_parser_round_trips(
    title: str, body: str, progress: float, weight: float, owners: list[str], is_new: bool
) -> None:
    rec = {c: None for c in csvio.COLUMNS} | {
        "id": "living-42",
        "area": "living",
        "strategy": "living-s3",
        "is_new": is_new,
        "title/en": title,
        "title/zh-Hant": title,
        "title/zh-Hans": title,
        "text/en": body,
        "text/zh-Hant": body,
        "text/zh-Hans": body,
        "owners": owners,
        "status": "planned",
        "progress": progress,
        "weight": weight,
        "milestones": [],
        "live": [],
    }
    header = ",".join(csvio.COLUMNS)
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([csvio._cell(c, rec[c]) for c in csvio.COLUMNS])
    ((number, parsed),) = csvio.read_csv(header + "\r\n" + out.getvalue())
    row, errors = csvio.validate(number, parsed)
    assert errors == [] and row is not None
    assert (row.title.en, row.text.zh_hans, row.is_new) == (title, body, is_new)
    assert (row.progress, row.weight, row.owners) == (progress, weight, owners)
