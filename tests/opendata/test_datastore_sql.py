"""datastore_search_sql (both backends): one read-only SELECT over DataStore tables named
by resource id; writes, other tables, several statements, unknown functions refused; a
time limit and a row cap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.opendata.helpers import Act, make_act, open_settings

from smartcity.app import create_app
from smartcity.storage.engine import Database


@pytest.fixture
def sql_act(db: Database, tmp_path: Path) -> Iterator[Act]:
    settings = open_settings(
        db,
        tmp_path,
        auth=False,
        datastore_sql=True,
        datastore_sql_timeout_s=0.3,
        datastore_sql_row_cap=5,
    )
    with TestClient(create_app(settings)) as client:
        yield make_act(client)


@pytest.fixture
def rid(sql_act: Act) -> str:
    sql_act("organization_create", name="td", title="TD")
    sql_act("package_create", name="car-parks", owner_org="td")
    created = sql_act(
        "datastore_create",
        resource={"package_id": "car-parks"},
        fields=[{"id": "district", "type": "text"}, {"id": "spaces", "type": "int"}],
        records=[{"district": f"d{i % 3}", "spaces": i} for i in range(20)],
    )
    return str(created["result"]["resource_id"])


def refused(sql_act: Act, sql: str) -> str:
    error = sql_act("datastore_search_sql", 409, sql=sql)["error"]
    assert error["__type"] == "Validation Error"
    return str(error["sql"][0])


def test_a_select_over_datastore_tables(sql_act: Act, rid: str) -> None:
    result = sql_act(
        "datastore_search_sql",
        sql=f"SELECT district, sum(spaces) AS total FROM \"{rid}\" WHERE district LIKE 'd%' "
        "GROUP BY district ORDER BY district",
    )["result"]
    assert result["records"] == [
        {"district": "d0", "total": 63},
        {"district": "d1", "total": 70},
        {"district": "d2", "total": 57},
    ]
    assert [f["id"] for f in result["fields"]] == ["district", "total"]
    capped = sql_act("datastore_search_sql", sql=f'SELECT * FROM "{rid}"')["result"]
    assert len(capped["records"]) == 5 and capped["records_truncated"] is True


def test_writes_other_tables_and_several_statements_are_refused(sql_act: Act, rid: str) -> None:
    assert "only SELECT" in refused(sql_act, f'DELETE FROM "{rid}"')
    assert "exactly one" in refused(sql_act, f'SELECT 1 FROM "{rid}"; DROP TABLE "{rid}"')
    assert "INTO" in refused(sql_act, f'SELECT * INTO stolen FROM "{rid}"')
    for other in ("opendata_datasets", "sqlite_master", "pg_tables", "api_keys"):
        error = sql_act("datastore_search_sql", 404, sql=f"SELECT * FROM {other}")
        assert error["error"]["__type"] == "Not Found Error"
    assert "resource id" in refused(sql_act, "SELECT * FROM pg_catalog.pg_tables")
    assert "not allowed" in refused(sql_act, f"SELECT pg_read_file('/etc/passwd') FROM \"{rid}\"")
    assert "not allowed" in refused(sql_act, "SELECT load_extension('x')")
    assert "DELETE" in refused(
        sql_act, f'WITH x AS (DELETE FROM "{rid}" RETURNING *) SELECT * FROM x'
    )
    assert "not allowed" in refused(sql_act, "SELECT set_config('a.b', 'c', false)")
    assert "not allowed" in refused(sql_act, f'SELECT * FROM "{rid}" FOR UPDATE')
    sub = f'SELECT * FROM "{rid}" WHERE spaces IN (SELECT 1 FROM opendata_users)'
    assert sql_act("datastore_search_sql", 404, sql=sub)["error"]["__type"] == "Not Found Error"
    # and the table is untouched
    count = sql_act("datastore_search_sql", sql=f'SELECT count(*) AS n FROM "{rid}"')
    assert count["result"]["records"] == [{"n": 20}]


def test_a_long_query_is_stopped(sql_act: Act, rid: str) -> None:
    endless = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    )
    assert "longer than 0.3 s" in refused(sql_act, endless)
    heavy = f'SELECT count(*) FROM "{rid}" a, "{rid}" b, "{rid}" c, "{rid}" d, "{rid}" e, "{rid}" f'
    assert "longer than" in refused(sql_act, heavy)
