"""``DataStore``: create, write, delete and describe resources' tables, with CKAN's access
rules (a resource's table is seen by whoever may see its dataset; written by the dataset's
organisation's editors and admins) and CKAN's errors.

Every change to a table happens in one transaction with its registry row, so a write that
fails (a bad record, a duplicate key, a load that breaks off) leaves the table as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Connection, Executable, Table, and_, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from smartcity.opendata.catalogue import repository as repo
from smartcity.opendata.catalogue import tables as t
from smartcity.opendata.catalogue.access import Principal
from smartcity.opendata.datastore import physical
from smartcity.opendata.datastore.fields import (
    BadValue,
    Field,
    canonical_type,
    check_field_id,
    to_python,
)
from smartcity.opendata.datastore.tables import datastore_tables, loads
from smartcity.opendata.errors import NotFound, ValidationFailed
from smartcity.storage import bulk
from smartcity.storage.engine import Database

MAX_RECORDS = 100_000  # per datastore_create / datastore_upsert call; files load by the CLI


@dataclass(frozen=True)
class Registered:
    resource_id: str
    table: Table
    fields: list[Field]
    primary_key: list[str]
    indexes: list[str]

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.id == name), None)


def parse_fields(raw: Any) -> list[Field]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValidationFailed.one("fields", "must be a list of {id, type} objects")
    fields: list[Field] = []
    errors: list[str] = []
    seen: set[str] = set()
    for position, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            errors.append(f"field {position}: needs an id (a string)")
            continue
        name = item["id"]
        problem = check_field_id(name)
        if problem is not None:
            errors.append(problem)
            continue
        # SQLite's column names ignore case: two fields differing only in case would collide.
        if name.lower() in seen:
            errors.append(f"field id {name!r} is given twice (ids are compared ignoring case)")
            continue
        seen.add(name.lower())
        type_name = canonical_type(item.get("type") or "text")
        if type_name is None:
            errors.append(
                f"field {name!r}: unknown type {item.get('type')!r}; use text, int, float, "
                "bool, date, timestamp or json"
            )
            continue
        info = item.get("info")
        fields.append(Field(name, type_name, info if isinstance(info, dict) else None))
    if errors:
        raise ValidationFailed({"fields": errors})
    return fields


def name_list(value: Any, what: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValidationFailed.one(what, "must be a field id or a list of field ids")


def coerce_record(
    fields: Sequence[Field], record: Any, position: int, *, allow_id: bool = False
) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValidationFailed.one("records", f"record {position} is not an object")
    by_id = {f.id: f for f in fields}
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == physical.ROW_ID and allow_id:
            try:
                out[key] = to_python("int", value)
            except BadValue as exc:
                raise ValidationFailed.one("records", f"record {position}: _id {exc}") from None
            continue
        found = by_id.get(key)
        if found is None:
            raise ValidationFailed.one(
                "records", f"record {position}: there is no field {key!r} (datastore_info)"
            )
        try:
            out[key] = to_python(found.type, value)
        except BadValue as exc:
            raise ValidationFailed.one(
                "records", f"record {position}, field {key!r}: {exc}"
            ) from None
    return out


class _DryRun(Exception):
    def __init__(self, written: int) -> None:
        super().__init__(written)
        self.written = written


class DataStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- access -------------------------------------------------------------------------------

    def resource(self, conn: Connection, p: Principal, resource_id: str, *, write: bool) -> Any:
        """The resource's row, if the principal may see (and, to write, edit) its dataset."""
        row = conn.execute(
            select(t.resources.c.id, t.datasets.c.owner_org, t.datasets.c.state)
            .add_columns(t.datasets.c.private, t.datasets.c.name)
            .join(t.datasets, t.datasets.c.id == t.resources.c.dataset_id)
            .where(t.resources.c.id == resource_id)
        ).first()
        if row is None or not p.may_see(row.owner_org, row.state, row.private):
            raise NotFound(f"there is no resource {resource_id!r} (or it is not visible to you)")
        if write:
            p.require(row.owner_org, "editor", f"change the DataStore of dataset {row.name}")
        return row

    def registered(self, conn: Connection, resource_id: str) -> Registered | None:
        row = conn.execute(
            select(datastore_tables).where(datastore_tables.c.resource_id == resource_id)
        ).first()
        if row is None:
            return None
        fields = [Field(f["id"], f["type"], f.get("info")) for f in row.fields]
        return Registered(
            resource_id,
            physical.build(row.table_name, fields),
            fields,
            list(row.primary_key),
            list(row.indexes),
        )

    def tables_among(self, conn: Connection, resource_ids: Sequence[str]) -> set[str]:
        """The resources among these that have a table (the catalogue's ``datastore_active``)."""
        ids = list(dict.fromkeys(resource_ids))
        if not ids:
            return set()

        # Built once, the ids bound as one parameter (``repo.by_keys``): every search page
        # asks this of its results' resources.
        def build(dialect: str) -> Executable:
            column = datastore_tables.c.resource_id
            return select(column).where(bulk.among_param(column, "keys", dialect))

        return set(repo.by_keys(conn, "datastore tables among", build, ids).scalars())

    def require_table(self, conn: Connection, resource_id: str) -> Registered:
        found = self.registered(conn, resource_id)
        if found is None:
            raise NotFound(
                f"resource {resource_id!r} has no DataStore table: create one with "
                "datastore_create or upload a CSV, TSV, XLSX or JSON file"
            )
        return found

    def readable(self, p: Principal, resource_id: str) -> Registered:
        with self.db.read() as conn:
            self.resource(conn, p, resource_id, write=False)
            return self.require_table(conn, resource_id)

    # -- writes -------------------------------------------------------------------------------

    def define(
        self,
        conn: Connection,
        resource_id: str,
        fields: list[Field],
        primary_key: list[str] | None,
        indexes: list[str] | None,
        *,
        replace: bool = False,
    ) -> Registered:
        """Create the resource's table, or (``replace`` False) add the new fields to the one
        it has; ``replace`` drops the old table first (a new file's load)."""
        current = self.registered(conn, resource_id)
        if current is not None and replace:
            physical.drop(conn, current.table.name)
            conn.execute(
                delete(datastore_tables).where(datastore_tables.c.resource_id == resource_id)
            )
            current = None
        now = repo.now_us()
        if current is None:
            if not fields:
                raise ValidationFailed.one("fields", "a new DataStore table needs fields")
            pk, ix = primary_key or [], indexes or []
            self._check_keys(fields, pk, ix)
            table = physical.build(physical.table_name(resource_id), fields)
            physical.create(conn, table, pk, ix)
            conn.execute(
                insert(datastore_tables).values(
                    resource_id=resource_id,
                    table_name=table.name,
                    fields=[f.as_dict() for f in fields],
                    primary_key=pk,
                    indexes=ix,
                    created_at=now,
                    modified_at=now,
                )
            )
            return Registered(resource_id, table, fields, pk, ix)
        merged = list(current.fields)
        for field in fields:
            known = current.field(field.id)
            if known is None:
                if any(f.id.lower() == field.id.lower() for f in merged):
                    raise ValidationFailed.one(
                        "fields", f"field {field.id!r} exists in another case"
                    )
                physical.add_column(conn, current.table, field)
                merged.append(field)
            elif known.type != field.type:
                raise ValidationFailed.one(
                    "fields",
                    f"field {field.id!r} is {known.type}, not {field.type}: delete the table "
                    "(datastore_delete) to change its type",
                )
            elif field.info is not None:
                merged[merged.index(known)] = Field(known.id, known.type, field.info)
        pk = current.primary_key if primary_key is None else primary_key
        ix = current.indexes if indexes is None else indexes
        self._check_keys(merged, pk, ix)
        table = physical.build(current.table.name, merged)
        physical.set_indexes(
            conn, table, pk, ix, previous_pk=current.primary_key, previous_indexes=current.indexes
        )
        conn.execute(
            update(datastore_tables)
            .where(datastore_tables.c.resource_id == resource_id)
            .values(
                fields=[f.as_dict() for f in merged], primary_key=pk, indexes=ix, modified_at=now
            )
        )
        return Registered(resource_id, table, merged, pk, ix)

    @staticmethod
    def _check_keys(fields: Sequence[Field], pk: Sequence[str], ix: Sequence[str]) -> None:
        ids = {f.id for f in fields}
        for what, names in (("primary_key", pk), ("indexes", ix)):
            unknown = [n for n in names if n not in ids]
            if unknown:
                raise ValidationFailed.one(what, f"there is no field {unknown[0]!r}")

    def create(
        self,
        p: Principal,
        resource_id: str,
        fields: list[Field],
        primary_key: list[str] | None,
        indexes: list[str] | None,
        records: list[Any],
    ) -> dict[str, Any]:
        with self.db.write() as conn:
            self.resource(conn, p, resource_id, write=True)
            if not fields and records and self.registered(conn, resource_id) is None:
                fields = guess_fields(records)
            found = self.define(conn, resource_id, fields, primary_key, indexes)
            self._write(conn, found, records, "insert")
        return {
            "resource_id": resource_id,
            "fields": [f.as_dict() for f in found.fields],
            "primary_key": found.primary_key,
            "indexes": found.indexes,
            "method": "insert",
        }

    def upsert(
        self, p: Principal, resource_id: str, records: list[Any], method: str, *, dry_run: bool
    ) -> dict[str, Any]:
        if method not in ("upsert", "insert", "update"):
            raise ValidationFailed.one("method", "must be upsert, insert or update")
        try:
            with self.db.write() as conn:
                self.resource(conn, p, resource_id, write=True)
                found = self.require_table(conn, resource_id)
                written = self._write(conn, found, records, method)
                if dry_run:
                    raise _DryRun(written)  # the transaction rolls back
        except _DryRun as done:
            written = done.written
        return {
            "resource_id": resource_id,
            "method": method,
            "records_written": written,
            "dry_run": dry_run,
        }

    def _write(self, conn: Connection, found: Registered, records: list[Any], method: str) -> int:
        if len(records) > MAX_RECORDS:
            raise ValidationFailed.one(
                "records",
                f"at most {MAX_RECORDS} records per call: send more in several calls, or load "
                "a file (smartcity opendata datastore load)",
            )
        rows = [
            coerce_record(found.fields, r, i, allow_id=method != "insert")
            for i, r in enumerate(records)
        ]
        if not rows:
            return 0
        keys = found.primary_key
        table = found.table
        try:
            if method == "insert":
                # the bulk path (COPY on PostgreSQL): a missing field is NULL, as in an INSERT
                names = [f.id for f in found.fields]
                return physical.insert_rows(
                    conn, table, found.fields, ([row.get(n) for n in names] for row in rows)
                )
            for position, row in enumerate(rows):
                by = keys if all(k in row for k in keys) and keys else [physical.ROW_ID]
                if any(k not in row or row[k] is None for k in by):
                    raise ValidationFailed.one(
                        "records",
                        f"record {position}: {method} needs the primary key "
                        f"({', '.join(keys) or '_id'}) in every record",
                    )
                where = and_(*(table.c[k] == row[k] for k in by))
                changes = {k: v for k, v in row.items() if k not in by}
                if method == "update":
                    if changes:
                        hit = conn.execute(update(table).where(where).values(**changes)).rowcount
                    else:
                        hit = conn.execute(
                            select(func.count()).select_from(table).where(where)
                        ).scalar_one()
                    if not hit:
                        raise ValidationFailed.one(
                            "records", f"record {position}: key {[row[k] for k in by]} not found"
                        )
                    continue
                if by == [physical.ROW_ID] and keys:
                    raise ValidationFailed.one(
                        "records", f"record {position}: upsert needs {', '.join(keys)}"
                    )
                if by == [physical.ROW_ID]:
                    updated = conn.execute(update(table).where(where).values(**changes))
                    if updated.rowcount == 0:
                        conn.execute(insert(table).values(**row))
                    continue
                dialect_insert = (
                    postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
                )
                stmt = dialect_insert(table).values(**row)
                stmt = (
                    stmt.on_conflict_do_update(
                        index_elements=[table.c[k] for k in by], set_=changes
                    )
                    if changes
                    else stmt.on_conflict_do_nothing(index_elements=[table.c[k] for k in by])
                )
                conn.execute(stmt)
        except (IntegrityError, sqlite3.IntegrityError, psycopg.IntegrityError) as exc:
            detail = getattr(exc, "orig", None) or exc
            raise ValidationFailed.one(
                "records",
                f"a record repeats a primary key ({', '.join(keys)}) or breaks a "
                f"constraint: {str(detail).splitlines()[0]}",
            ) from None
        return len(rows)

    def delete(
        self, p: Principal, resource_id: str, filters: dict[str, Any] | None
    ) -> dict[str, Any]:
        from smartcity.opendata.datastore.search import filter_clauses

        with self.db.write() as conn:
            self.resource(conn, p, resource_id, write=True)
            found = self.require_table(conn, resource_id)
            if filters is None:
                self.drop(conn, [resource_id])
                return {"resource_id": resource_id}
            result = conn.execute(
                delete(found.table).where(and_(True, *filter_clauses(found, filters)))
            )
            return {
                "resource_id": resource_id,
                "filters": filters,
                "deleted_count": result.rowcount,
            }

    def drop(self, conn: Connection, resource_ids: Sequence[str]) -> None:
        """Drop the tables of these resources (in the caller's transaction)."""
        for resource_id in resource_ids:
            found = self.registered(conn, resource_id)
            if found is not None:
                physical.drop(conn, found.table.name)
                conn.execute(
                    delete(datastore_tables).where(datastore_tables.c.resource_id == resource_id)
                )

    def info(self, p: Principal, resource_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            self.resource(conn, p, resource_id, write=False)
            load = conn.execute(select(loads).where(loads.c.resource_id == resource_id)).first()
            found = self.registered(conn, resource_id)
            if found is None and load is None:
                self.require_table(conn, resource_id)
            count = (
                conn.execute(select(func.count()).select_from(found.table)).scalar_one()
                if found is not None
                else 0
            )
        out: dict[str, Any] = {
            "meta": {
                "id": resource_id,
                "count": count,
                "table_type": "BASE TABLE",
                "aliases": [],
                "datastore_active": found is not None,
            },
            "fields": [f.as_dict() for f in found.fields] if found else [],
            "primary_key": found.primary_key if found else [],
            "indexes": found.indexes if found else [],
        }
        if load is not None:
            out["meta"]["load"] = {
                "state": load.state,
                "message": load.message,
                "encoding": load.encoding,
                "rows_loaded": load.rows_loaded,
                "bad_row_count": load.bad_row_count,
                "bad_rows": load.bad_rows,
            }
        return out


def guess_fields(records: list[Any]) -> list[Field]:
    """Fields for records sent without ``fields`` (CKAN's guess from the values' JSON types)."""
    kinds: dict[str, str] = {}
    for record in records[:1000]:
        if not isinstance(record, dict):
            continue
        for key, value in record.items():
            if value is None:
                kinds.setdefault(key, "")
                continue
            kind = (
                "bool"
                if isinstance(value, bool)
                else "int"
                if isinstance(value, int)
                else "float"
                if isinstance(value, float)
                else "json"
                if isinstance(value, dict | list)
                else "text"
            )
            previous = kinds.get(key) or kind
            if {previous, kind} == {"int", "float"}:
                kind = "float"
            elif previous != kind:
                kind = "text"
            kinds[key] = kind
    return parse_fields([{"id": k, "type": v or "text"} for k, v in kinds.items()])
