from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, String, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.db import Base


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    title: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Sequence number of the latest message (messages.seq); bumped under the row lock by
    # every send, so unread counts are `last_seq - last_read_seq`, never a count of history.
    last_seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class Participant(Base):
    """Membership plus that member's notification settings for the conversation."""

    __tablename__ = "conversation_participants"

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    muted: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    muted_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    push_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # Read position: the seq (and id) of the latest message this member has read. Only moves
    # forward; sending moves it to the sent message (own messages are never unread).
    last_read_seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    last_read_message_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))

    __table_args__ = (Index("ix_conversation_participants_user_id", "user_id", "conversation_id"),)
