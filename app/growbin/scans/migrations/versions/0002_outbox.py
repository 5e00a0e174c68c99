"""scan outbox: tasks for the workers, written with the scan that needs them

Revision ID: scans_0002
Revises: scans_0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "scans_0002"
down_revision = "scans_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scan_outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("task", sa.String(128), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("task_id", sa.String(128), nullable=False),
        sa.Column("args", postgresql.JSONB(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_scan_outbox"),
    )
    op.create_index(
        "ix_scan_outbox_pending",
        "scan_outbox",
        ["id"],
        postgresql_where=sa.text("sent_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_scan_outbox_pending", table_name="scan_outbox")
    op.drop_table("scan_outbox")
