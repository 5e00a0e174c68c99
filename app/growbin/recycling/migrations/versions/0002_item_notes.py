"""recycling items: notes where districts differ

Revision ID: recycling_0002
Revises: recycling_0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "recycling_0002"
down_revision = "recycling_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The seed replaces every row, so existing items only need a value until the next seed.
    op.add_column(
        "recycling_items",
        sa.Column(
            "notes", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False
        ),
    )
    op.alter_column("recycling_items", "notes", server_default=None)


def downgrade() -> None:
    op.drop_column("recycling_items", "notes")
