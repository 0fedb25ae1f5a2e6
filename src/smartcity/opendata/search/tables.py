"""The search index's tables (migration 0014): an inverted index kept in the database, so
search works alike on SQLite and PostgreSQL and changes in the same transaction as the
dataset it describes.

* ``opendata_search_tokens``: one row per (token, field, dataset): English words stemmed,
  Chinese as characters and character pairs after Traditional → Simplified folding
  (``search/text.py``). The primary key starts with the token: a term is one index range.
* ``opendata_search_facets``: one row per facet value of a dataset (organization, groups,
  tags, res_format, license_id ...), ``folded`` for case-insensitive ``field:value`` filters
  and ``value`` as written for the facet counts. A search counts its matches' values from
  the copy each dataset keeps in its search row (``opendata_search_rows.facets``).
* ``opendata_search_facet_counts``: how many index rows each (field, value) of
  ``opendata_search_facets`` has, kept by ``search/index.py`` in the same transaction
  (migration 0026): the catalogue's first page reads its facets here instead of counting
  80,000 rows. A value no dataset has any more has no row (never ``n`` = 0).
* ``opendata_search_text``: the dataset's text folded the same way, one string: phrases
  ("car park", 停車場) are checked on it after their tokens narrowed the candidates.
* ``opendata_search_postings`` (migration 0030): one row per (token, dataset), its weight
  summed over the fields: a query's words that name no field are found by joining their
  tokens' rows on the dataset (``search/engine.py``), one seek per candidate and no grouping.
* ``opendata_search_docs`` (migration 0029): each dataset's ``package_show`` dict per
  language, as JSON, less what is not the dataset's own (``catalogue/dictize.kept_package``):
  a search's page is read from here in one statement instead of built from five.
* ``opendata_search_rows`` (migration 0031): one narrow row per dataset that is not deleted,
  holding only what a search reads of its matches (who may see it, the sort keys, its facet
  values): a search builds its matches from these instead of the datasets' wide rows (three
  languages of notes, the data dictionary, extras), which PostgreSQL otherwise hashed or
  probed, 10,000 of them, for every word search.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from smartcity.opendata.catalogue.tables import ID, datasets
from smartcity.storage.schema import metadata

TOKEN = 64
VALUE = 200

search_tokens = Table(
    "opendata_search_tokens",
    metadata,
    Column("token", String(TOKEN), primary_key=True),
    Column("field", String(16), primary_key=True),
    Column(
        "dataset_id",
        String(ID),
        ForeignKey("opendata_datasets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("weight", Integer, nullable=False),
    Index("ix_opendata_search_tokens_dataset", "dataset_id"),
    # Relevance (migration 0024): a matched dataset's weight for a token in one index seek.
    Index("ix_opendata_search_tokens_score", "token", "dataset_id", "weight"),
)

search_facets = Table(
    "opendata_search_facets",
    metadata,
    Column("field", String(16), primary_key=True),
    Column("folded", String(VALUE), primary_key=True),
    Column(
        "dataset_id",
        String(ID),
        ForeignKey("opendata_datasets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("value", String(VALUE), nullable=False),
    # A match's facet values without reading the table (migration 0025); also what deleting
    # a dataset's rows seeks by.
    Index("ix_opendata_search_facets_by_dataset", "dataset_id", "field", "value"),
    # Facet counts (migration 0024): field, value and dataset from the index alone, in order.
    Index("ix_opendata_search_facets_count", "field", "value", "dataset_id"),
)

search_facet_counts = Table(
    "opendata_search_facet_counts",
    metadata,
    Column("field", String(16), primary_key=True),
    Column("value", String(VALUE), primary_key=True),
    Column("n", Integer, nullable=False),
)

search_text = Table(
    "opendata_search_text",
    metadata,
    Column(
        "dataset_id",
        String(ID),
        ForeignKey("opendata_datasets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("body", Text, nullable=False),
)

search_docs = Table(
    "opendata_search_docs",
    metadata,
    Column(
        "dataset_id",
        String(ID),
        ForeignKey("opendata_datasets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("lang", String(8), primary_key=True),
    Column("doc", Text, nullable=False),
)

search_postings = Table(
    "opendata_search_postings",
    metadata,
    Column("token", String(TOKEN), nullable=False),
    Column(
        "dataset_id",
        String(ID),
        ForeignKey("opendata_datasets.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("weight", Integer, nullable=False),
    # A token's datasets in order with their weights, from the key alone: on PostgreSQL the
    # key's index carries the weight (two words' lists merge-joined from the index: 3 ms
    # instead of 18 ms reading the table); on SQLite the rows are stored in key order.
    PrimaryKeyConstraint("token", "dataset_id", postgresql_include=["weight"]),
    Index("ix_opendata_search_postings_dataset", "dataset_id"),
    sqlite_with_rowid=False,
)

# The dataset's columns its search row copies (``opendata_search_rows``, migration 0031).
ROW_COLUMNS = (
    "owner_org",
    "state",
    "private",
    "name",
    "title_en",
    "title_tc",
    "title_sc",
    "created_at",
    "modified_at",
)

search_rows = Table(
    "opendata_search_rows",
    metadata,
    Column(
        "dataset_id",
        String(ID),
        ForeignKey("opendata_datasets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # The dataset's own columns of the same names and types, as of its last index.
    *(Column(name, datasets.c[name].type, nullable=False) for name in ROW_COLUMNS),
    # Its facet values, ``field<US>value`` entries joined by RS (``index.keep_facets``; the
    # ``OWN`` fields left out): search counts its matches' facets from these.
    Column("facets", Text, nullable=False),
    # SQLite: stored in key order, so a match is one seek rather than the key's index and
    # then the row (~8 % of a word search's statement, measured alone on 10,000 datasets).
    sqlite_with_rowid=False,
)
