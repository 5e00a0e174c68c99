"""drop-off points with a GiST-indexed geography column

Revision ID: locations_0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "locations_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Created by the postgresql role as superuser in production; IF NOT EXISTS needs no
    # privilege when it is already there.
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "drop_off_points",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("categories", postgresql.ARRAY(sa.String(32)), nullable=False),
        sa.Column("opening_hours", sa.String(200), nullable=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_drop_off_points"),
        sa.UniqueConstraint("name", "address", name="uq_drop_off_points_name_address"),
        sa.CheckConstraint("cardinality(categories) > 0", name="ck_drop_off_points_has_category"),
    )
    op.execute("ALTER TABLE drop_off_points ADD COLUMN location geography(Point, 4326) NOT NULL")
    op.create_index(
        "ix_drop_off_points_location", "drop_off_points", ["location"], postgresql_using="gist"
    )
    op.create_index(
        "ix_drop_off_points_categories", "drop_off_points", ["categories"], postgresql_using="gin"
    )


def downgrade() -> None:
    op.drop_index("ix_drop_off_points_categories", table_name="drop_off_points")
    op.drop_index("ix_drop_off_points_location", table_name="drop_off_points")
    op.drop_table("drop_off_points")
