"""push apps (device app_id) and outbox hardening (fan-out lease, parked jobs, push kinds)

Revision ID: 0005
Revises: 0007
Create Date: 2026-12-06 19:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0005"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = "kind IN ('message', 'clear', 'notification', 'test')"


def upgrade() -> None:
    op.add_column(
        "device_tokens",
        sa.Column(
            "app_id", sa.String(length=64), server_default=sa.text("'default'"), nullable=False
        ),
    )
    op.add_column(
        "push_jobs", sa.Column("fanout_lease_until", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "push_jobs",
        sa.Column("fanout_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("push_jobs", sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("push_jobs", sa.Column("last_error", sa.Text(), nullable=True))
    op.add_column(
        "push_jobs",
        sa.Column("recipient_ids", postgresql.ARRAY(sa.String(length=64)), nullable=True),
    )
    op.drop_constraint(op.f("ck_push_jobs_kind"), "push_jobs", type_="check")
    op.execute("UPDATE push_jobs SET kind = 'notification' WHERE kind = 'direct'")
    op.create_check_constraint(op.f("ck_push_jobs_kind"), "push_jobs", KINDS)
    op.drop_index("ix_push_jobs_pending", table_name="push_jobs")
    op.create_index(
        "ix_push_jobs_pending",
        "push_jobs",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("fanned_out_at IS NULL AND failed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_push_jobs_pending", table_name="push_jobs")
    op.create_index(
        "ix_push_jobs_pending",
        "push_jobs",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("fanned_out_at IS NULL"),
    )
    op.drop_constraint(op.f("ck_push_jobs_kind"), "push_jobs", type_="check")
    op.execute("UPDATE push_jobs SET kind = 'direct' WHERE kind <> 'message'")
    op.create_check_constraint(
        op.f("ck_push_jobs_kind"), "push_jobs", "kind IN ('message', 'direct')"
    )
    op.drop_column("push_jobs", "recipient_ids")
    op.drop_column("push_jobs", "last_error")
    op.drop_column("push_jobs", "failed_at")
    op.drop_column("push_jobs", "fanout_attempts")
    op.drop_column("push_jobs", "fanout_lease_until")
    op.drop_column("device_tokens", "app_id")
