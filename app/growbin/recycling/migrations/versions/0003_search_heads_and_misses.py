"""recycling search: terms in compact form for head nouns; queries nothing matched, counted

Revision ID: recycling_0003
Revises: recycling_0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "recycling_0003"
down_revision = "recycling_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Filled by the seed (normalize.compact is Python): the load digest covers the terms'
    # search forms, so the next seed reloads and fills it (repository.load_digest).
    op.add_column(
        "recycling_search_terms",
        sa.Column("compact", sa.Text(), server_default="", nullable=False),
    )
    op.alter_column("recycling_search_terms", "compact", server_default=None)
    # Created by the recycling database's owner, the role the API process logs in as: it
    # writes here without further grants.
    op.create_table(
        "recycling_search_misses",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("query", sa.String(100), nullable=False),
        sa.Column("example", sa.String(100), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_recycling_search_misses"),
    )


def downgrade() -> None:
    op.drop_table("recycling_search_misses")
    op.drop_column("recycling_search_terms", "compact")
