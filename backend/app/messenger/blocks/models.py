from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.db import Base


class Block(Base):
    """`blocker_id` blocked `blocked_id`. One row per pair; unblocking deletes it."""

    __tablename__ = "user_blocks"

    blocker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    blocked_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        # "Who blocked this sender?" (push fan-out, adding participants) reads by blocked_id.
        Index("ix_user_blocks_blocked_id", "blocked_id", "blocker_id"),
        CheckConstraint("blocker_id <> blocked_id", name="not_self"),
    )
