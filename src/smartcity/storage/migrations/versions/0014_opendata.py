"""Open data portal: organisations, groups, licences, users and memberships, datasets,
resources, tags, the audit trail, and the search index (smartcity.opendata).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")
ID = 36
NAME = 100


# The licences as first shipped (catalogue/reference.py); `opendata seed` keeps them in step.
LICENCES = [
    ("datagovhk-terms", "DATA.GOV.HK Terms and Conditions of Use", "DATA.GOV.HK 使用條款及細則",
     "DATA.GOV.HK 使用条款及细则", "https://data.gov.hk/en/terms-and-conditions", True),
    ("cc-by", "Creative Commons Attribution 4.0", "創用 CC 姓名標示 4.0", "知识共享署名 4.0",
     "https://creativecommons.org/licenses/by/4.0/", True),
    ("cc-zero", "Creative Commons CC0 1.0 (public domain dedication)",
     "創用 CC0 1.0（公眾領域貢獻宣告）", "知识共享 CC0 1.0（公有领域贡献）",
     "https://creativecommons.org/publicdomain/zero/1.0/", True),
    ("odc-by", "Open Data Commons Attribution License", "開放數據共享署名許可",
     "开放数据共享署名许可", "https://opendatacommons.org/licenses/by/", True),
    ("other-open", "Other (Open)", "其他（開放）", "其他（开放）", "", True),
    ("other-closed", "Other (Not Open)", "其他（非開放）", "其他（非开放）", "", False),
    ("notspecified", "License not specified", "未指明許可", "未指明许可", "", False),
]  # fmt: skip


def _dataset_fk() -> sa.Column[str]:
    return sa.Column(
        "dataset_id",
        sa.String(ID),
        sa.ForeignKey("opendata_datasets.id", ondelete="CASCADE"),
        primary_key=True,
    )


def _named(table: str, *extra: sa.Column[object]) -> None:
    op.create_table(
        table,
        sa.Column("id", sa.String(ID), primary_key=True),
        sa.Column("name", sa.String(NAME), nullable=False, unique=True),
        sa.Column("title", Json, nullable=False),
        sa.Column("description", Json, nullable=False),
        sa.Column("image_url", sa.Text, nullable=False),
        *extra,
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("modified_at", sa.BigInteger, nullable=False),
    )


def upgrade() -> None:
    _named("opendata_organisations")
    _named("opendata_groups", sa.Column("ord", sa.Integer, nullable=False))
    licences = op.create_table(
        "opendata_licences",
        sa.Column("id", sa.String(NAME), primary_key=True),
        sa.Column("title", Json, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("is_open", sa.Boolean, nullable=False),
        sa.Column("ord", sa.Integer, nullable=False),
    )
    op.bulk_insert(
        licences,
        [
            {
                "id": lid,
                "title": {"en": en, "zh-Hant": tc, "zh-Hans": sc},
                "url": url,
                "is_open": is_open,
                "ord": n,
            }
            for n, (lid, en, tc, sc, url, is_open) in enumerate(LICENCES, 1)
        ],
    )
    op.create_table(
        "opendata_users",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("sysadmin", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "opendata_members",
        sa.Column(
            "organisation_id",
            sa.String(ID),
            sa.ForeignKey("opendata_organisations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user_name", sa.String(255), primary_key=True),
        sa.Column("capacity", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_opendata_members_user", "opendata_members", ["user_name"])
    op.create_table(
        "opendata_datasets",
        sa.Column("id", sa.String(ID), primary_key=True),
        sa.Column("name", sa.String(NAME), nullable=False, unique=True),
        sa.Column(
            "owner_org",
            sa.String(ID),
            sa.ForeignKey("opendata_organisations.id"),
            nullable=False,
        ),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("private", sa.Boolean, nullable=False),
        sa.Column("title", Json, nullable=False),
        sa.Column("title_en", sa.String(500), nullable=False),
        sa.Column("title_tc", sa.String(500), nullable=False),
        sa.Column("title_sc", sa.String(500), nullable=False),
        sa.Column("notes", Json, nullable=False),
        sa.Column("license_id", sa.String(NAME), nullable=True),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("version", sa.String(100), nullable=True),
        sa.Column("author", sa.String(255), nullable=True),
        sa.Column("author_email", sa.String(255), nullable=True),
        sa.Column("maintainer", sa.String(255), nullable=True),
        sa.Column("maintainer_email", sa.String(255), nullable=True),
        sa.Column("frequency", sa.String(32), nullable=True),
        sa.Column("temporal_start", sa.String(32), nullable=True),
        sa.Column("temporal_end", sa.String(32), nullable=True),
        sa.Column("spatial", Json, nullable=True),
        sa.Column("spatial_label", Json, nullable=False),
        sa.Column("data_dictionary", Json, nullable=False),
        sa.Column("extras", Json, nullable=False),
        sa.Column("creator", sa.String(255), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("modified_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_opendata_datasets_org", "opendata_datasets", ["owner_org", "state"])
    op.create_index(
        "ix_opendata_datasets_modified", "opendata_datasets", ["state", "private", "modified_at"]
    )
    op.create_table(
        "opendata_resources",
        sa.Column("id", sa.String(ID), primary_key=True),
        sa.Column(
            "dataset_id",
            sa.String(ID),
            sa.ForeignKey("opendata_datasets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("name", Json, nullable=False),
        sa.Column("description", Json, nullable=False),
        sa.Column("format", sa.String(100), nullable=False),
        sa.Column("mimetype", sa.String(255), nullable=True),
        sa.Column("size", sa.BigInteger, nullable=True),
        sa.Column("hash", sa.String(255), nullable=True),
        sa.Column("language", Json, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("modified_at", sa.BigInteger, nullable=False),
        sa.Column("data_modified_at", sa.BigInteger, nullable=True),
    )
    op.create_index(
        "ix_opendata_resources_dataset", "opendata_resources", ["dataset_id", "position"]
    )
    op.create_table(
        "opendata_tags",
        sa.Column("id", sa.String(ID), primary_key=True),
        sa.Column("name", sa.String(NAME), nullable=False, unique=True),
    )
    op.create_table(
        "opendata_dataset_tags",
        _dataset_fk(),
        sa.Column("tag_id", sa.String(ID), sa.ForeignKey("opendata_tags.id"), primary_key=True),
    )
    op.create_index("ix_opendata_dataset_tags_tag", "opendata_dataset_tags", ["tag_id"])
    op.create_table(
        "opendata_dataset_groups",
        _dataset_fk(),
        sa.Column(
            "group_id",
            sa.String(ID),
            sa.ForeignKey("opendata_groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index("ix_opendata_dataset_groups_group", "opendata_dataset_groups", ["group_id"])
    op.create_table(
        "opendata_activity",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(16), nullable=False),
        sa.Column("object_id", sa.String(ID), nullable=False),
        sa.Column("dataset_id", sa.String(ID), nullable=True),
        sa.Column("data", Json, nullable=True),
    )
    op.create_index("ix_opendata_activity_object", "opendata_activity", ["object_id", "at"])
    op.create_index("ix_opendata_activity_dataset", "opendata_activity", ["dataset_id", "at"])
    # The search index (smartcity.opendata.search.tables).
    op.create_table(
        "opendata_search_tokens",
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("field", sa.String(16), primary_key=True),
        _dataset_fk(),
        sa.Column("weight", sa.Integer, nullable=False),
    )
    op.create_index("ix_opendata_search_tokens_dataset", "opendata_search_tokens", ["dataset_id"])
    op.create_table(
        "opendata_search_facets",
        sa.Column("field", sa.String(16), primary_key=True),
        sa.Column("folded", sa.String(200), primary_key=True),
        _dataset_fk(),
        sa.Column("value", sa.String(200), nullable=False),
    )
    op.create_index("ix_opendata_search_facets_dataset", "opendata_search_facets", ["dataset_id"])
    op.create_table(
        "opendata_search_text",
        _dataset_fk(),
        sa.Column("body", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "opendata_search_text",
        "opendata_search_facets",
        "opendata_search_tokens",
        "opendata_activity",
        "opendata_dataset_groups",
        "opendata_dataset_tags",
        "opendata_tags",
        "opendata_resources",
        "opendata_datasets",
        "opendata_members",
        "opendata_users",
        "opendata_licences",
        "opendata_groups",
        "opendata_organisations",
    ):
        op.drop_table(table)
