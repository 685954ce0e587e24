"""Tables of the notification center.

`notifications`: one row per accepted request (the durable work item). The background loop
materialises its recipients in bounded batches, keyset-ordered by user id; `cursor_user_id`
is the last user id materialised, written in the same transaction as the batch, so a crash
at any point neither loses nor repeats a recipient.

`notification_recipients`: one row per (notification, user): the record the push and email
integrations work from and the admin counts read (`push_status` / `email_status` are NULL
when the channel was not requested).

`notification_inbox`: the in-app entries (channel `in_app`), what `GET /notifications` lists.
"""

from __future__ import annotations

import uuid
from datetime import datetime

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
from backend.app.messenger.notifications.vocabulary import (
    EmailStatus,
    NotificationStatus,
    Priority,
    PushStatus,
    TargetKind,
    sql_in,
)


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(8))
    action_url: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    channels: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    target_kind: Mapped[str] = mapped_column(String(16))
    target_user_ids: Mapped[list[str] | None] = mapped_column(ARRAY(String(64)))
    target_topic: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    # What the first 202 said ("queued" or "scheduled"): an idempotent repeat says it again.
    accepted_status: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    send_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the last batch was written: due notifications take turns batch by batch (oldest
    # progress first), so a big broadcast does not hold up a small send behind it.
    progressed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cursor_user_id: Mapped[str | None] = mapped_column(String(64))
    recipient_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))

    __table_args__ = (
        CheckConstraint(sql_in("priority", Priority), name="priority"),
        CheckConstraint(sql_in("target_kind", TargetKind), name="target_kind"),
        CheckConstraint(sql_in("status", NotificationStatus), name="status"),
        CheckConstraint(
            "(target_kind = 'user_ids') = (target_user_ids IS NOT NULL)"
            " AND (target_kind = 'topic') = (target_topic IS NOT NULL)",
            name="target",
        ),
        # The loop's claim: unfinished work by due time.
        Index(
            "ix_notifications_due",
            "send_at",
            postgresql_where=text("status IN ('scheduled', 'queued', 'sending')"),
        ),
        # Admin history, newest first.
        Index("ix_notifications_created_at_id", "created_at", "id"),
    )


class NotificationRecipient(Base):
    __tablename__ = "notification_recipients"

    notification_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("notifications.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    push_status: Mapped[str | None] = mapped_column(String(16))
    email_status: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (
        CheckConstraint(sql_in("push_status", PushStatus), name="push_status"),
        CheckConstraint(sql_in("email_status", EmailStatus), name="email_status"),
    )


class InboxEntry(Base):
    __tablename__ = "notification_inbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    notification_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("notifications.id", ondelete="CASCADE")
    )
    user_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # One entry per recipient, whatever happens (the last line of defence against repeats).
        Index("uq_notification_inbox_notification_user", "notification_id", "user_id", unique=True),
        # A user's inbox, newest first (keyset on id), and their unread entries.
        Index("ix_notification_inbox_user_id_id", "user_id", "id"),
        Index("ix_notification_inbox_unread", "user_id", postgresql_where=text("read_at IS NULL")),
        # Retention.
        Index("ix_notification_inbox_created_at", "created_at"),
    )
