"""Badges (each push delivery keeps the recipient's unread total at fan-out) and the read
range of clear-on-read jobs.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: deliveries of kinds without a badge (test pushes) and rows from before.
    op.add_column("push_deliveries", sa.Column("badge", sa.Integer(), nullable=True))
    # Clear-on-read jobs remember the read move's range of message positions (from, to].
    op.add_column("push_jobs", sa.Column("read_from_seq", sa.BigInteger(), nullable=True))
    op.add_column("push_jobs", sa.Column("read_to_seq", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("push_jobs", "read_to_seq")
    op.drop_column("push_jobs", "read_from_seq")
    op.drop_column("push_deliveries", "badge")
