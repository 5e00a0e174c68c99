"""recycling knowledge base: categories, items, trigram-indexed search terms

Revision ID: recycling_0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "recycling_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # pg_trgm is a trusted extension: the database owner may create it without superuser.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "recycling_categories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("name_ko", sa.String(100), nullable=False),
        sa.Column("name_en", sa.String(100), nullable=False),
        sa.Column("aliases", postgresql.ARRAY(sa.String(80)), nullable=False),
        sa.Column("summary_ko", sa.Text(), nullable=False),
        sa.Column("summary_en", sa.Text(), nullable=False),
        sa.Column("steps", postgresql.JSONB(), nullable=False),
        sa.Column("not_accepted", postgresql.JSONB(), nullable=False),
        sa.Column("notes", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recycling_categories"),
        sa.UniqueConstraint("slug", name="uq_recycling_categories_slug"),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["recycling_categories.id"],
            name="fk_recycling_categories_parent_id_recycling_categories",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "recycling_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("name_ko", sa.String(100), nullable=False),
        sa.Column("name_en", sa.String(100), nullable=False),
        sa.Column("aliases", postgresql.ARRAY(sa.String(80)), nullable=False),
        sa.Column("steps", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recycling_items"),
        sa.UniqueConstraint("slug", name="uq_recycling_items_slug"),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["recycling_categories.id"],
            name="fk_recycling_items_category_id_recycling_categories",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_recycling_items_category_id", "recycling_items", ["category_id"])
    op.create_table(
        "recycling_search_terms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("term", sa.String(100), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recycling_search_terms"),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["recycling_items.id"],
            name="fk_recycling_search_terms_item_id_recycling_items",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["recycling_categories.id"],
            name="fk_recycling_search_terms_category_id_recycling_categories",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "num_nonnulls(item_id, category_id) = 1",
            name="ck_recycling_search_terms_one_subject",
        ),
    )
    op.create_index("ix_recycling_search_terms_item_id", "recycling_search_terms", ["item_id"])
    op.create_index(
        "ix_recycling_search_terms_category_id", "recycling_search_terms", ["category_id"]
    )
    op.create_index(
        "ix_recycling_search_terms_key_trgm",
        "recycling_search_terms",
        ["key"],
        postgresql_using="gin",
        postgresql_ops={"key": "gin_trgm_ops"},
    )
    op.create_table(
        "recycling_catalog_state",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("category_count", sa.Integer(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column(
            "loaded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_recycling_catalog_state"),
        sa.CheckConstraint("id = 1", name="ck_recycling_catalog_state_single_row"),
    )


def downgrade() -> None:
    op.drop_table("recycling_catalog_state")
    op.drop_index("ix_recycling_search_terms_key_trgm", table_name="recycling_search_terms")
    op.drop_index("ix_recycling_search_terms_category_id", table_name="recycling_search_terms")
    op.drop_index("ix_recycling_search_terms_item_id", table_name="recycling_search_terms")
    op.drop_table("recycling_search_terms")
    op.drop_index("ix_recycling_items_category_id", table_name="recycling_items")
    op.drop_table("recycling_items")
    op.drop_table("recycling_categories")
    # pg_trgm stays: other objects in the database may use it.
