"""A search's page is read from the package dicts the index keeps (``opendata_search_docs``,
migration 0029) and finished with what is not the dataset's own. Through every kind of
change — to a dataset, its resources, tags and groups, its organisation and groups, its
DataStore tables, its state — each dataset's page entry stays exactly what ``package_show``
builds from the rows, in every language and for any site address, on both backends."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from tests.opendata.helpers import Act, trilingual
from typer.testing import CliRunner

from smartcity.cli.main import app as cli
from smartcity.opendata.catalogue import tables as t
from smartcity.opendata.catalogue.access import ANONYMOUS
from smartcity.opendata.catalogue.service import CatalogueService
from smartcity.opendata.languages import LANGS
from smartcity.opendata.search import engine, index
from smartcity.opendata.search.tables import (
    search_docs,
    search_facet_counts,
    search_facets,
    search_rows,
    search_text,
    search_tokens,
)
from smartcity.storage.engine import Database


def _check(db: Database, catalogue: CatalogueService) -> None:
    with db.read() as conn:
        ids = list(conn.execute(select(t.datasets.c.id)).scalars())
        live = [
            r.id
            for r in conn.execute(select(t.datasets.c.id).where(t.datasets.c.state != "deleted"))
        ]
        for lang in LANGS:
            # Every dataset that is not deleted has its kept dicts: the test reads them,
            # not the fallback to the rows.
            assert set(index.kept_docs(conn, ids, lang)) == set(live)
            for base_url in ("http://testserver", "https://data.example.hk/portal"):
                view = catalogue.view(conn, lang, base_url)
                kept = catalogue.found_packages(conn, live, view)
                assert kept == catalogue.packages(conn, live, view), (lang, base_url)
                assert [p["id"] for p in kept] == live
            # A search reads its page's kept dicts with the page, in its language: the same
            # texts (a word search and a filtered one: both build the search statement).
            named = {
                r.id: r.name
                for r in conn.execute(
                    select(t.datasets.c.id, t.datasets.c.name).where(
                        t.datasets.c.state == "active", t.datasets.c.private.is_(False)
                    )
                )
            }
            public, word = set(named), min(named.values(), default="").split("-")[0]
            for fq in (["metadata_modified:[* TO *]"], ["metadata_modified:[* TO *]", word]):
                request = engine.SearchRequest(fq=fq, rows=1000, lang=lang)
                found = engine.search(conn, request, ANONYMOUS)
                assert found.ids and set(found.ids) <= public
                assert found.docs is not None and set(found.docs) == set(found.ids)
                assert found.docs == index.kept_docs(conn, found.ids, lang)
                assert found.docs_in(lang) == found.docs
                other = next(other for other in LANGS if other != lang)
                assert found.docs_in(other) is None  # read again in the reader's language
        # Their search rows (0031), which searches build their matches from, are copies of
        # the datasets' own columns; a deleted dataset has none.
        D, R = t.datasets, search_rows
        own = {
            r.id: tuple(r._mapping[c] for c in index.ROW_COLUMNS)
            for r in conn.execute(select(D).where(D.c.state != "deleted"))
        }
        copies = {
            r.dataset_id: tuple(r._mapping[c] for c in index.ROW_COLUMNS)
            for r in conn.execute(select(R))
        }
        assert copies == own


def _upload(client: TestClient, dataset: str, name: str, rid: str | None = None) -> Any:
    action = "resource_update" if rid else "resource_create"
    data = {"id": rid} if rid else {"package_id": dataset, "name": "Spaces"}
    body = b"district,spaces\nCentral,12\n"
    response = client.post(
        f"/api/3/action/{action}", data=data, files={"upload": (name, body, "text/csv")}
    )
    assert response.status_code == 200, response.text
    return response.json()["result"]


def test_a_page_from_kept_dicts_is_package_show(
    db: Database, act: Act, od_client: TestClient, transport: dict[str, Any]
) -> None:
    catalogue: CatalogueService = od_client.app.state.opendata.catalogue  # type: ignore[attr-defined]
    act(
        "package_create",
        name="air-quality",
        owner_org="epd",
        title_translated=trilingual("Air quality", "空氣質素", "空气质素"),
        notes_translated=trilingual("Hourly AQHI", "每小時空氣質素", "每小时空气质素"),
        tags=[{"name": "air"}, {"name": "health"}],
        groups=[{"name": "environment"}, {"name": "transport"}],
        license_id="cc-by",
        spatial_label_translated=trilingual("Hong Kong", "香港", "香港"),
        data_dictionary=[
            {
                "name": "aqhi",
                "type": "int",
                "description_translated": trilingual("AQHI", "指數", "指数"),
            }
        ],
        extras=[{"key": "source", "value": "EPD"}],
        resources=[
            {"url": "/ngsi-ld/v1/entities?type=AirQualityObserved", "kind": "hub-query"},
            {"url": "https://example.org/aqhi.json", "format": "JSON"},
        ],
    )
    act("package_create", name="hidden", owner_org="td", title="Hidden", private=True)
    _check(db, catalogue)

    # The dataset's own rows change: fields, tags, groups, resources (an upload too).
    act("package_patch", id="car-park-vacancy", tags=[{"name": "parking"}], license_id="cc-zero")
    act("package_patch", id="air-quality", groups=[{"name": "transport"}])
    uploaded = _upload(od_client, "car-park-vacancy", "spaces.csv")
    link = transport["resources"][0]["id"]
    act("resource_patch", id=link, format="XLSX", name="Vacancy (Excel)")
    _check(db, catalogue)

    # What is not the dataset's own changes without it: its organisation and groups,
    # a DataStore table on one of its resources.
    act(
        "organization_patch",
        id="td",
        description_translated=trilingual("Roads", "道路", "道路"),
        image_url="https://example.org/td.png",
    )
    act("group_patch", id="transport", title="Transport and logistics", name="transport-2")
    act(
        "datastore_create",
        resource_id=link,
        fields=[{"id": "spaces", "type": "int"}],
        records=[{"spaces": 3}],
    )
    _check(db, catalogue)
    act("datastore_delete", resource_id=link)
    act("group_delete", id="environment")
    _check(db, catalogue)

    # States: deleted, restored, a resource gone, an upload replaced.
    act("resource_delete", id=link)
    _upload(od_client, "car-park-vacancy", "spaces-2.csv", rid=uploaded["id"])
    act("package_delete", id="hidden")
    act("package_patch", id="air-quality", state="draft")
    _check(db, catalogue)
    act("package_patch", id="hidden", state="active")
    _check(db, catalogue)


def test_a_dataset_without_a_kept_dict_is_built_from_its_rows(
    db: Database, act: Act, od_client: TestClient, transport: dict[str, Any]
) -> None:
    """A catalogue migrated to 0029 has no kept dicts until its datasets are next written:
    searches show them as before."""
    with db.write() as conn:
        conn.execute(delete(search_docs))
    found = act("package_search", q="vacancy")["result"]["results"]
    assert found == [act("package_show", id="car-park-vacancy")["result"]]


def test_reindex_writes_the_kept_dicts_of_every_dataset(
    db: Database, act: Act, transport: dict[str, Any]
) -> None:
    """``smartcity opendata reindex``, run after upgrading to 0029, keeps every dataset's
    dicts; the search index stays what the writes themselves left."""
    with db.read() as conn:
        before = {table.name: _rows(conn, table) for table in INDEX_TABLES}
    with db.write() as conn:
        conn.execute(delete(search_docs))
    result = CliRunner().invoke(cli, ["opendata", "reindex", "--database", db.url])
    assert result.exit_code == 0, result.output
    assert "reindexed 1 dataset\n" in result.output
    with db.read() as conn:
        assert {table.name: _rows(conn, table) for table in INDEX_TABLES} == before


INDEX_TABLES = (
    search_docs,
    search_tokens,
    search_facets,
    search_facet_counts,
    search_text,
    search_rows,
)


def _rows(conn: Any, table: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in conn.execute(select(table)))
