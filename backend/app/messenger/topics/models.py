from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.db import Base


class TopicSubscription(Base):
    """A user's subscription to a topic. Topics exist while someone subscribes to them."""

    __tablename__ = "topic_subscriptions"

    topic: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    # (topic, user_id) is the primary key: a topic's subscribers in user-id order (keyset).
    __table_args__ = (Index("ix_topic_subscriptions_user_id", "user_id", "topic"),)
