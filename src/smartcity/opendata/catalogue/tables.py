"""The catalogue's tables (migration 0014), on the shared ``storage.schema.metadata``.

Design notes:

* Ids are CKAN's: UUID strings, kept when a client supplies one (``ckanapi load`` moves a
  catalogue between instances with its ids); names are CKAN's URL slugs, unique per table.
* Texts in three languages are JSON objects ``{"en", "zh-Hant", "zh-Hans"}``; a dataset's
  titles also have a column per language, for sorting by title in the reader's language.
* A dataset's state is ``active``, ``draft`` or ``deleted`` (CKAN's soft delete), and
  ``private`` hides it from everyone but its organisation's members: every read filters
  on both (``catalogue/access.py``).
* Resources reference their dataset with ON DELETE CASCADE; ``kind`` is what the resource
  is (``upload``, ``link``, ``api``, ``hub-query``), ``url`` the link, or the file name of an
  upload kept under the data directory (``catalogue/uploads.py``).
* Members are the platform's API keys by name: a key created with ``smartcity keys create
  NAME`` acts as the user NAME, whose role in each organisation (admin, editor, member) is
  in ``opendata_members``; sysadmins are in ``opendata_users``.
* ``opendata_activity`` is the audit trail, append-only: one row per change, with who, what
  and the object as it was afterwards.
* Times are microseconds since the epoch, as in the hub's tables. Later slices (DataStore,
  archive, harvesting) reference datasets and resources by id from tables of their own.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from smartcity.storage.schema import Id, Json, metadata

ID = 36  # a UUID's text
NAME = 100  # CKAN's longest name

organisations = Table(
    "opendata_organisations",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(NAME), nullable=False, unique=True),
    Column("title", Json, nullable=False),
    Column("description", Json, nullable=False),
    Column("image_url", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("modified_at", BigInteger, nullable=False),
)

groups = Table(
    "opendata_groups",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(NAME), nullable=False, unique=True),
    Column("title", Json, nullable=False),
    Column("description", Json, nullable=False),
    Column("image_url", Text, nullable=False),
    Column("ord", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("modified_at", BigInteger, nullable=False),
)

licences = Table(
    "opendata_licences",
    metadata,
    Column("id", String(NAME), primary_key=True),
    Column("title", Json, nullable=False),
    Column("url", Text, nullable=False),
    Column("is_open", Boolean, nullable=False),
    Column("ord", Integer, nullable=False),
)

users = Table(
    "opendata_users",
    metadata,
    Column("name", String(255), primary_key=True),  # an API key's name
    Column("sysadmin", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

members = Table(
    "opendata_members",
    metadata,
    Column(
        "organisation_id",
        String(ID),
        ForeignKey("opendata_organisations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_name", String(255), primary_key=True),
    Column("capacity", String(16), nullable=False),  # admin, editor, member
    Column("created_at", BigInteger, nullable=False),
    Index("ix_opendata_members_user", "user_name"),
)

datasets = Table(
    "opendata_datasets",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(NAME), nullable=False, unique=True),
    Column("owner_org", String(ID), ForeignKey("opendata_organisations.id"), nullable=False),
    Column("state", String(16), nullable=False),  # active, draft, deleted
    Column("private", Boolean, nullable=False),
    Column("title", Json, nullable=False),
    Column("title_en", String(500), nullable=False),  # sort keys, one per language
    Column("title_tc", String(500), nullable=False),
    Column("title_sc", String(500), nullable=False),
    Column("notes", Json, nullable=False),
    Column("license_id", String(NAME), nullable=True),
    Column("url", Text, nullable=True),
    Column("version", String(100), nullable=True),
    Column("author", String(255), nullable=True),
    Column("author_email", String(255), nullable=True),
    Column("maintainer", String(255), nullable=True),
    Column("maintainer_email", String(255), nullable=True),
    Column("frequency", String(32), nullable=True),
    Column("temporal_start", String(32), nullable=True),
    Column("temporal_end", String(32), nullable=True),
    Column("spatial", Json, nullable=True),  # a GeoJSON geometry
    Column("spatial_label", Json, nullable=False),
    Column("data_dictionary", Json, nullable=False),
    Column("extras", Json, nullable=False),  # CKAN's free key/value pairs
    Column("creator", String(255), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("modified_at", BigInteger, nullable=False),
    Index("ix_opendata_datasets_org", "owner_org", "state"),
    Index("ix_opendata_datasets_modified", "state", "private", "modified_at"),
)

resources = Table(
    "opendata_resources",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column(
        "dataset_id",
        String(ID),
        ForeignKey("opendata_datasets.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("position", Integer, nullable=False),
    Column("kind", String(16), nullable=False),  # upload, link, api, hub-query, live
    Column("url", Text, nullable=False),
    Column("name", Json, nullable=False),
    Column("description", Json, nullable=False),
    Column("format", String(100), nullable=False),
    Column("mimetype", String(255), nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("hash", String(255), nullable=True),
    Column("language", Json, nullable=False),  # languages of the content, e.g. ["en"]
    Column("created_at", BigInteger, nullable=False),
    Column("modified_at", BigInteger, nullable=False),  # the metadata
    Column("data_modified_at", BigInteger, nullable=True),  # the content (CKAN last_modified)
    Index("ix_opendata_resources_dataset", "dataset_id", "position"),
)

tags = Table(
    "opendata_tags",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(NAME), nullable=False, unique=True),
)

dataset_tags = Table(
    "opendata_dataset_tags",
    metadata,
    Column(
        "dataset_id",
        String(ID),
        ForeignKey("opendata_datasets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("tag_id", String(ID), ForeignKey("opendata_tags.id"), primary_key=True),
    Index("ix_opendata_dataset_tags_tag", "tag_id"),
)

dataset_groups = Table(
    "opendata_dataset_groups",
    metadata,
    Column(
        "dataset_id",
        String(ID),
        ForeignKey("opendata_datasets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "group_id",
        String(ID),
        ForeignKey("opendata_groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Index("ix_opendata_dataset_groups_group", "group_id"),
)

activity = Table(
    "opendata_activity",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(255), nullable=False),  # the key's name, or "anonymous (--no-auth)"
    Column("action", String(64), nullable=False),  # the CKAN action, e.g. package_update
    Column("object_type", String(16), nullable=False),  # dataset, resource, organization...
    Column("object_id", String(ID), nullable=False),
    Column("dataset_id", String(ID), nullable=True),  # the dataset a change concerns
    Column("data", Json, nullable=True),  # the object afterwards (None when purged)
    Index("ix_opendata_activity_object", "object_id", "at"),
    Index("ix_opendata_activity_dataset", "dataset_id", "at"),
)
