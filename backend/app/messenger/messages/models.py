from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.db import Base


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    sender_id: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    # Position in its conversation (1, 2, ...), taken from conversations.last_seq at send time.
    seq: Mapped[int] = mapped_column(BigInteger)
    client_msg_id: Mapped[str | None] = mapped_column(String(128))
    # clock_timestamp(), not now(): two messages of one transaction still get an order.
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )

    __table_args__ = (
        # Idempotent sends: one message per (sender, client_msg_id); NULLs never collide.
        UniqueConstraint("sender_id", "client_msg_id", name="uq_messages_sender_client_msg_id"),
        # A read position's message id <-> seq, and no seq used twice in a conversation.
        Index("uq_messages_conversation_seq", "conversation_id", "seq", unique=True),
        # History pages: newest first within a conversation.
        Index(
            "ix_messages_conversation_created",
            "conversation_id",
            text("created_at DESC"),
            text("id DESC"),
        ),
    )
