"""The durable push outbox.

A `PushJob` is written in the same transaction as the message it announces (or by
`/devices/test` and `/internal/notify`). Fan-out turns it into one `PushDelivery` per
target device with a single INSERT ... SELECT, inside the transaction that holds the
job's row lock (`FOR UPDATE SKIP LOCKED`): a crash rolls it back and frees the job for
any instance. Deliveries are then claimed in batches under a lease (`lease_until`), sent,
and their outcome recorded; an expired lease lets any instance take over the work of one
that died. The (job, device) primary key means a device is never scheduled twice for one job.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.db import Base
from backend.app.messenger.push.vocabulary import DeliveryStatus, Priority, PushKind, sql_in


class PushJob(Base):
    __tablename__ = "push_jobs"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # a PushKind
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    sender_id: Mapped[str | None] = mapped_column(String(64))
    target_user_id: Mapped[str | None] = mapped_column(String(64))
    # Kinds pushed to a set of users (notifications, clear-on-read) list them here.
    recipient_ids: Mapped[list[str] | None] = mapped_column(ARRAY(String(64)))
    # The notification-center notification a `notification` job delivers (admin counts).
    notification_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    priority: Mapped[str] = mapped_column(String(8), server_default=text("'high'"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    fanned_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Fan-out runs under a lease (no row lock across the presence read); a job whose fan-out
    # keeps failing is parked (`failed_at`) instead of blocking the sweep.
    fanout_lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fanout_attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    # Clear-on-read jobs: the read move's range of message positions (from, to]. A reply's
    # message job: the range its sender passed, until its fan-out queues their clear.
    read_from_seq: Mapped[int | None] = mapped_column(BigInteger)
    read_to_seq: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint(sql_in("kind", PushKind), name="kind"),
        CheckConstraint(sql_in("priority", Priority), name="priority"),
        Index(
            "ix_push_jobs_pending",
            "created_at",
            postgresql_where=text("fanned_out_at IS NULL AND failed_at IS NULL"),
        ),
        Index(
            "ix_push_jobs_notification_id",
            "notification_id",
            postgresql_where=text("notification_id IS NOT NULL"),
        ),
        # Clear-on-read looks up a reader's clear jobs of a conversation on every read and
        # reply; without it a large push backlog turned that into a scan of push_jobs.
        Index(
            "ix_push_jobs_clear_target",
            "target_user_id",
            "conversation_id",
            postgresql_where=text("kind = 'clear'"),
        ),
    )


class PushDelivery(Base):
    __tablename__ = "push_deliveries"

    job_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("push_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("device_tokens.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(24), server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The recipient's unread total at fan-out (message pushes); sent as the app badge.
    badge: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint(sql_in("status", DeliveryStatus), name="status"),
        Index(
            "ix_push_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        # Deleting a device (pruning) cascades here; keep that lookup indexed.
        Index("ix_push_deliveries_device_id", "device_id"),
        Index("ix_push_deliveries_finished_at", "finished_at"),
    )


class PushStatsHourly(Base):
    """Finished deliveries per hour, provider, kind and outcome: rolled up from `push_deliveries`
    in the same transaction that deletes them, so statistics outlive the raw rows."""

    __tablename__ = "push_stats_hourly"

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(24), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class PushNotificationOutcome(Base):
    """Per notification, the outcomes of its pruned deliveries (admin history stays right)."""

    __tablename__ = "push_notification_outcomes"

    notification_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(24), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
