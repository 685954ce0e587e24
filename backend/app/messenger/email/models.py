from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.db import Base
from backend.app.messenger.email.vocabulary import EmailKind, EmailStatus


def _one_of(column: str, values: type[EmailKind] | type[EmailStatus]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Email(Base):
    """The durable email queue: rendered once at enqueue time, sent by any instance.

    A pending row is due when `next_attempt_at` has passed; claiming it moves
    `next_attempt_at` one lease ahead, so a sender that dies leaves it due again later.
    `tries` counts claims (drives the backoff); `soft_failures` counts the server's
    temporary refusals of this email (bounded by EMAIL_MAX_ATTEMPTS). An unreachable
    server counts against no email: they wait for it, however long it is down.
    """

    __tablename__ = "emails"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(64))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(Text)
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # The notification-center notification an email of kind `notification` delivers (admin counts).
    notification_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    tries: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    soft_failures: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(_one_of("kind", EmailKind), name="kind"),
        CheckConstraint(_one_of("status", EmailStatus), name="status"),
        Index("ix_emails_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index(
            "ix_emails_notification_id",
            "notification_id",
            postgresql_where=text("notification_id IS NOT NULL"),
        ),
    )
