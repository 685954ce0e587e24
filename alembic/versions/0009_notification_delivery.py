"""notification delivery: push jobs and emails name their notification; push statistics outlive raw rows

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 20:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "push_jobs", sa.Column("notification_id", postgresql.UUID(as_uuid=True), nullable=True)
    )
    op.create_index(
        "ix_push_jobs_notification_id",
        "push_jobs",
        ["notification_id"],
        postgresql_where=sa.text("notification_id IS NOT NULL"),
    )
    op.add_column(
        "emails", sa.Column("notification_id", postgresql.UUID(as_uuid=True), nullable=True)
    )
    op.create_index(
        "ix_emails_notification_id",
        "emails",
        ["notification_id"],
        postgresql_where=sa.text("notification_id IS NOT NULL"),
    )
    op.create_table(
        "push_stats_hourly",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "provider", "kind", "outcome"),
    )
    op.create_table(
        "push_notification_outcomes",
        sa.Column("notification_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("notification_id", "outcome"),
    )


def downgrade() -> None:
    op.drop_table("push_notification_outcomes")
    op.drop_table("push_stats_hourly")
    op.drop_index("ix_emails_notification_id", table_name="emails")
    op.drop_column("emails", "notification_id")
    op.drop_index("ix_push_jobs_notification_id", table_name="push_jobs")
    op.drop_column("push_jobs", "notification_id")
