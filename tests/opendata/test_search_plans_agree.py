"""The search plans find the same datasets in the same order: PostgreSQL flags each of a
query's tokens in one grouped pass (``_Compiler.words``) and SQLite looks each one up alone;
on both, words that only narrow (a top-level AND, no fields) join their tokens' postings
(``engine._conjunction``), which must answer as the general plan does.
Hypothesis writes queries from a small vocabulary with AND, OR, NOT, ``-``, parentheses,
phrases and fields, and the same catalogue on both backends must answer each one alike —
count, page order and facets. A dataset that has none of a query's tokens has no row in the
grouped pass, which is where NOT and OR could go wrong."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import PG_URL, _drop_pg_database, _pg_database

from smartcity.config import OpenDataSettings
from smartcity.opendata.catalogue.access import NO_AUTH
from smartcity.opendata.catalogue.organisations import GROUP, ORGANIZATION
from smartcity.opendata.errors import SearchQueryError
from smartcity.opendata.languages import DEFAULT
from smartcity.opendata.runtime import build_opendata
from smartcity.opendata.search import engine
from smartcity.storage import migrate
from smartcity.storage.engine import Database

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs SMARTCITY_TEST_POSTGRES_URL")

DATASETS: list[dict[str, Any]] = [
    {"name": "car-parks", "title": "Car park vacancy", "notes": "Public car parks, each minute.",
     "tags": ["parking"], "org": "td", "fmt": ["CSV", "JSON"]},
    {"name": "bus-stops", "title": "Bus stop locations", "notes": "Where buses stop; parked "
     "vehicles are not included.", "tags": ["bus", "transport"], "org": "td", "fmt": ["CSV"]},
    {"name": "air-quality", "title": "Air quality health index", "notes": "Hourly readings; a "
     "park near the station is not a car park.", "tags": ["air"], "org": "epd", "fmt": ["XML"]},
    {"name": "rain", "title": "Hourly rainfall", "notes": "Rain gauges at each station.",
     "tags": ["rain", "weather"], "org": "hko", "fmt": ["JSON"]},
    {"name": "bus-arrivals", "title": "Bus arrival times 巴士到站", "notes": "Every bus stop, "
     "each minute.", "tags": ["bus"], "org": "td", "fmt": ["API"]},
    {"name": "car-parks-zh", "title": "停車場空置車位", "notes": "停車場 parking in Chinese.",
     "tags": ["parking"], "org": "td", "fmt": ["CSV"]},
    {"name": "noise", "title": "Road traffic noise", "notes": "Noise near roads and stations.",
     "tags": ["noise"], "org": "epd", "fmt": ["XLSX"]},
    # Two datasets whose order for "bus station" is decided by the sum of both words' weights:
    # by either word alone it would be the other way round for one of them.
    {"name": "timetables", "title": "Bus bus timetables", "notes": "By station.",
     "tags": [], "org": "td", "fmt": ["CSV"]},
    {"name": "station-map", "title": "Station map", "notes": "Bus routes.",
     "tags": [], "org": "td", "fmt": ["CSV"]},
]  # fmt: skip
WORDS = ["car", "park", "parking", "bus", "stop", "station", "air", "hourly", "rain", "minute",
         "the", "停車", "巴士", "noise", "road", "zebra"]  # fmt: skip
FIELDS = ["", "", "", "title:", "notes:", "tags:"]
FACETS = ["organization", "tags", "res_format"]


def _seed(db: Database, data_dir: Path) -> None:
    migrate.upgrade(db)
    od = build_opendata(db, OpenDataSettings(data_dir=data_dir))
    od.organisations.seed_licences()
    for org in ("td", "epd", "hko"):
        od.organisations.create(ORGANIZATION, NO_AUTH, DEFAULT, "", {"name": org, "title": org})
    od.organisations.create(GROUP, NO_AUTH, DEFAULT, "", {"name": "city", "title": "City"})
    for d in DATASETS:
        od.catalogue.package_create(
            NO_AUTH,
            DEFAULT,
            "",
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, d["name"])),  # alike on both
                "name": d["name"],
                "owner_org": d["org"],
                "title": d["title"],
                "notes": d["notes"],
                "tags": [{"name": tag} for tag in d["tags"]],
                "groups": [{"name": "city"}],
                "resources": [
                    {"url": f"https://example.org/{d['name']}.{f.lower()}", "format": f}
                    for f in d["fmt"]
                ],
            },
        )


@pytest.fixture(scope="module")
def both() -> Iterator[tuple[Database, Database]]:
    name = f"smartcity_plans_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        lite = Database(f"sqlite:///{Path(tmp) / 'plans.db'}")
        pg = Database(_pg_database(name))
        try:
            with pg.write() as conn:
                conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
            _seed(lite, Path(tmp) / "lite")
            _seed(pg, Path(tmp) / "pg")
            yield lite, pg
        finally:
            lite.dispose()
            pg.dispose()
            _drop_pg_database(name)


def _term() -> st.SearchStrategy[str]:
    word = st.sampled_from(WORDS)
    phrase = st.lists(word, min_size=2, max_size=3).map(lambda ws: '"' + " ".join(ws) + '"')
    return st.tuples(st.sampled_from(FIELDS), st.one_of(word, word, phrase)).map("".join)


queries = st.recursive(
    _term(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(" ".join),
        st.lists(inner, min_size=2, max_size=3).map(" AND ".join),
        st.lists(inner, min_size=2, max_size=3).map(" OR ".join),
        inner.map(lambda q: f"NOT {q}"),
        inner.map(lambda q: f"-{q}" if not q.startswith(("-", "NOT", "(")) else f"-({q})"),
        inner.map(lambda q: f"({q})"),
        st.tuples(inner, inner).map(lambda qs: f"{qs[0]} NOT ({qs[1]})"),
    ),
    max_leaves=6,
)


def _answer(db: Database, q: str, fq: list[str] | None = None) -> tuple[Any, ...] | str:
    request = engine.SearchRequest(q=q, fq=fq or [], rows=len(DATASETS), facet_fields=FACETS)
    with db.read() as conn:
        try:
            found = engine.search(conn, request, NO_AUTH)
        except SearchQueryError as error:
            return f"refused: {error}"
    return found.count, found.ids, found.facets


def _paged(db: Database, q: str, rows: int) -> list[str]:
    """Every match, a page of ``rows`` at a time."""
    ids: list[str] = []
    with db.read() as conn:
        for start in range(0, len(DATASETS), rows):
            request = engine.SearchRequest(q=q, rows=rows, start=start)
            ids += engine.search(conn, request, NO_AUTH).ids
    return ids


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(q=queries)
def test_both_plans_answer_alike(both: tuple[Database, Database], q: str) -> None:
    lite, pg = both
    answer = _answer(lite, q)
    assert _answer(pg, q) == answer, q
    if not isinstance(answer, str):  # pages tile the one long page, in order
        for db in both:
            assert _paged(db, q, 2) == answer[1], q


def test_the_grouped_pass_keeps_datasets_without_any_token(both: tuple[Database, Database]) -> None:
    """A NOT of words none of whose tokens a dataset has still finds that dataset."""
    for db in both:
        assert _answer(db, "NOT zebra")[0] == len(DATASETS)
        # All but bus-stops and bus-arrivals, which have "bus" and lack "station".
        assert _answer(db, "station OR NOT bus")[0] == len(DATASETS) - 2


def test_relevance_is_the_sum_of_every_word(both: tuple[Database, Database]) -> None:
    timetables, station_map = (str(uuid.uuid5(uuid.NAMESPACE_URL, n)) for n in
                               ("timetables", "station-map"))  # fmt: skip
    for db in both:
        for q in ("bus station", "station bus"):
            for plan in (engine._conjunction, lambda _trees: None):
                with mock.patch.object(engine, "_conjunction", plan):
                    found = _answer(db, q)
                assert not isinstance(found, str)
                ids = [i for i in found[1] if i in (timetables, station_map)]
                assert ids == [timetables, station_map], q


# Words that only narrow: plain terms and phrases, ANDed, with or without a filter.
conjunctions = st.tuples(
    st.lists(
        st.tuples(st.sampled_from(["", "", "+"]), _term().filter(lambda t: ":" not in t)).map(
            "".join
        ),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from([" ", " AND "]),
    st.sampled_from([[], ["organization:td"], ["res_format:CSV", "tags:bus"], ["-tags:air"]]),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=conjunctions)
def test_joined_postings_answer_as_the_general_plan(
    both: tuple[Database, Database], query: tuple[list[str], str, list[str]]
) -> None:
    terms, joiner, fq = query
    q = joiner.join(terms)
    for db in both:
        joined = _answer(db, q, fq)
        with mock.patch.object(engine, "_conjunction", return_value=None):
            assert _answer(db, q, fq) == joined, (q, fq)


def test_only_narrowing_words_are_joined() -> None:
    """Words under OR or NOT, or in a field, keep the general plan."""
    from smartcity.opendata.search import query as ql

    def plan(q: str, *fq: str) -> Any:
        return engine._conjunction([ql.parse(q), *(ql.parse(f) for f in fq)])

    words, others = plan("parking vacancy", "organization:td")
    assert [w.value for w in words] == ["parking", "vacancy"] and len(others) == 1
    assert plan('"car park" AND bus') is not None
    for general in ("parking OR bus", "parking -bus", "title:parking", "NOT parking", "*:*"):
        assert plan(general) is None, general
    assert plan("organization:td") is None  # no words: nothing to join


def test_a_query_of_many_words_is_answered(both: tuple[Database, Database]) -> None:
    """More words than SQLite joins tables (64) take the general plan, and answer alike."""
    q = " ".join(f"word{i}" for i in range(80))
    for db in both:
        assert _answer(db, q) == (0, [], {f: [] for f in FACETS})
        assert _answer(db, f"{q} OR bus")[0] == 4


def test_a_kept_statement_answers_for_its_own_words(both: tuple[Database, Database]) -> None:
    """A public search of plain words reuses its statement, built once per shape with the
    words and the page as parameters: each search answers for its own words and page, as the
    general plan does, and never with an earlier search's."""
    answers: dict[str, Any] = {}
    for db in both:
        for q in ("car park", "bus station", "air hourly", "car park", "zebra road"):
            kept = _answer(db, q)
            with mock.patch.object(engine, "_conjunction", return_value=None):
                assert _answer(db, q) == kept, q
            assert answers.setdefault(q, kept) == kept, q  # the same on both backends
            if not isinstance(kept, str):
                assert _paged(db, q, 2) == kept[1], q
    assert len({str(a) for a in answers.values()}) == len(answers)  # all different
